import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startAppleSim } from '../src/apple-sim/apple-sim.js';
import type { RunningServer } from '../src/server/start-server.js';
import { apiCaller, readWriteBearer, startServing, until } from './helpers/serving.js';
import { createPostgresDatabase, storageEngines } from './helpers/storage-engines.js';

// License alerts read the event log after a durable cursor instead of every snapshot each tick: with
// two tokens, a sync of one makes the next scan read that token's asset rows and not the other's; a
// scan with no new event reads nothing; a restart keeps the cursor (no full pass again). Rows read are
// counted by the alert subsystem itself (`alerts.licenses.reads`), not timed.

const dir = mkdtempSync(join(tmpdir(), 'vppd-license-cursor-'));
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe.each(storageEngines)('license alerts by the event log (%s)', (kind) => {
  it('evaluate only the tokens an event names, and keep their place across a restart', async () => {
    const sim = await startAppleSim({
      seed: `license-cursor-${kind}`,
      locations: [
        { id: 'one', name: 'One', orgName: 'Org', countryCode: 'US', assets: 9, assignments: 40, users: 10 },
        { id: 'two', name: 'Two', orgName: 'Org', countryCode: 'US', assets: 14, assignments: 40, users: 10 },
      ],
      rateLimit: false,
    });
    cleanups.push(() => sim.close());
    const database = kind === 'postgres' ? await createPostgresDatabase() : `sqlite:${join(dir, 'c.db')}`;
    const start = () =>
      startServing({
        sim,
        database,
        // The alert loop's own scans stay out of the way: the test scans by hand.
        options: { alerts: { scanMs: 3_600_000, deliverMs: 3_600_000 } },
      });
    let server: RunningServer = await start();
    cleanups.push(() => server.close());
    const api = apiCaller(() => server.url, await readWriteBearer());
    const synced = async (tokenId: string, runs: number) =>
      until(`sync ${runs} of ${tokenId}`, async () => {
        const r = await api('GET', `/vppd/v1/tokens/${tokenId}/syncs`);
        const done = (r.body.value as { outcome?: string; status?: string }[]).filter(
          (run) => (run.outcome ?? run.status) === 'completed',
        );
        return done.length >= runs ? done : undefined;
      });
    const ids: string[] = [];
    for (const location of ['one', 'two']) {
      const created = await api('POST', '/beta/deviceAppManagement/vppTokens', {
        token: sim.tokenFor(location),
      });
      expect(created.status).toBe(201);
      ids.push(created.body.id as string);
    }
    const [one, two] = ids as [string, string];
    await synced(one, 1);
    await synced(two, 1);
    const assetsOf = async (tokenId: string) =>
      Number(
        (
          await server.context.db
            .selectFrom('license_snapshots')
            .select('asset_count')
            .where('token_id', '=', tokenId)
            .executeTakeFirstOrThrow()
        ).asset_count,
      );
    const [assetsOne, assetsTwo] = [await assetsOf(one), await assetsOf(two)];
    expect(assetsOne).not.toBe(assetsTwo);

    // Whatever the first scans saw (the first pass reads every snapshot once), the log is then caught up.
    await server.context.alerts.scanOnce();
    const licenses = server.context.alerts.licenses;
    const caughtUp = licenses.reads;
    await server.context.alerts.scanOnce();
    expect(licenses.reads).toEqual(caughtUp);

    // A sync of token one: the next scan reads its asset rows, never token two's.
    expect((await api('POST', `/beta/deviceAppManagement/vppTokens/${one}/syncLicenses`)).status).toBe(200);
    await synced(one, 2);
    await server.context.alerts.scanOnce();
    expect(licenses.reads).toEqual({
      tokens: caughtUp.tokens + 1,
      assetRows: caughtUp.assetRows + assetsOne,
    });

    // A restart: the cursor is where it was, so the new process reads nothing for old events.
    await server.close();
    server = await start();
    await server.context.alerts.scanOnce();
    expect(server.context.alerts.licenses.reads).toEqual({ tokens: 0, assetRows: 0 });
    // And a sync of token two after it reads token two only.
    expect((await api('POST', `/beta/deviceAppManagement/vppTokens/${two}/syncLicenses`)).status).toBe(200);
    await synced(two, 2);
    await server.context.alerts.scanOnce();
    expect(server.context.alerts.licenses.reads).toEqual({ tokens: 1, assetRows: assetsTwo });
  }, 90_000);
});
