import { pino } from 'pino';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { startAppleSim } from '../src/apple-sim/apple-sim.js';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import type { NotificationRegistration } from '../src/storage/apple-notification-store.js';
import { tenantA, testConfig } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { storageEngines, testDatabaseUrl } from './helpers/storage-engines.js';

// An ASSET_COUNT notification placed against the read of Apple's assets that the snapshot's counts came
// from, on both engines, in a serving process: received before the sync began, it is already counted
// (superseded, nothing added); received while the counts were read, it is applied and a licenseCounts
// refresh makes them exact; received after, it is applied. While a sync of the token runs, it waits.
// In every case the snapshot ends with Apple's count. The notifications are stored by the test with the
// time they were received (the simulator's own deliveries would land at a time the test cannot pick),
// and the processor is drained by hand.

const running: { close(): Promise<void> }[] = [];
afterAll(async () => {
  for (const r of running.reverse()) await r.close();
});

function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  return vi.waitFor(
    async () => {
      const value = await probe();
      if (value === undefined) throw new Error(`timed out waiting for ${what}`);
      return value;
    },
    { timeout: timeoutMs, interval: 20 },
  );
}

describe.each(storageEngines)('late ASSET_COUNT deltas (%s)', (kind) => {
  it('never count a change twice: before, during and after a sync the counts end exact', async () => {
    const sim = await startAppleSim({
      seed: `late-counts-${kind}`,
      locations: [
        { id: 'loc', name: 'Loc', orgName: 'Org', countryCode: 'US', assets: 12, assignments: 60, users: 20 },
      ],
      rateLimit: false,
    });
    running.push(sim);
    const server: RunningServer = await startServer(
      testConfig({ appleUrl: sim.baseUrl, port: '0', database: await testDatabaseUrl(kind) }),
      {
        runSync: true,
        syncOnTokenWrite: true,
        logger: pino({ level: 'silent' }),
        sync: { pollMs: 20, heartbeatMs: 50 },
        // The processor runs when the test drains it.
        notifications: { processorPollMs: 3_600_000 },
      },
    );
    running.push(server);
    const auth = `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite] })}`;
    const api = async (method: string, path: string) => {
      const response = await fetch(`${server.url}${path}`, { method, headers: { authorization: auth } });
      const text = await response.text();
      return {
        status: response.status,
        body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>,
      };
    };
    const created = await fetch(`${server.url}/beta/deviceAppManagement/vppTokens`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify({ token: sim.tokenFor('loc') }),
    });
    const tokenId = ((await created.json()) as { id: string }).id;
    const db = server.context.db;
    const runs = async () =>
      db
        .selectFrom('sync_runs')
        .select(['id', 'started_at', 'outcome'])
        .where('token_id', '=', tokenId)
        .orderBy('started_at')
        .execute();
    const completedRuns = (n: number) =>
      until(`${n} completed syncs`, async () => {
        const done = (await runs()).filter((r) => r.outcome === 'completed');
        const jobs = await db.selectFrom('sync_jobs').select('id').where('token_id', '=', tokenId).execute();
        return done.length >= n && jobs.length === 0 ? done : undefined;
      });
    await completedRuns(1);
    const noJobs = () =>
      until('no job of the token', async () =>
        (await db.selectFrom('sync_jobs').select('id').where('token_id', '=', tokenId).execute()).length === 0
          ? true
          : undefined,
      );

    const appleAssets = async () =>
      (
        (await (
          await fetch(`${sim.baseUrl}/assets`, {
            headers: { authorization: `Bearer ${sim.tokenFor('loc')}` },
          })
        ).json()) as { assets: { adamId: string; pricingParam: string; totalCount: number }[] }
      ).assets;
    const asset = (await appleAssets()).find((a) => a.totalCount !== 2147483647 && a.totalCount > 0)!;
    const ref = { adamId: asset.adamId, pricingParam: asset.pricingParam };
    const appleTotal = async () =>
      (await appleAssets()).find((a) => a.adamId === ref.adamId && a.pricingParam === ref.pricingParam)!
        .totalCount;
    const ourTotal = async () =>
      Number(
        (
          await db
            .selectFrom('license_snapshots as s')
            .innerJoin('license_assets as a', 'a.run_id', 's.run_id')
            .select('a.total_count')
            .where('s.token_id', '=', tokenId)
            .where('a.adam_id', '=', ref.adamId)
            .where('a.pricing_param', '=', ref.pricingParam)
            .executeTakeFirstOrThrow()
        ).total_count,
      );
    const snapshot = () =>
      db
        .selectFrom('license_snapshots')
        .select(['run_id', 'committed_at'])
        .where('token_id', '=', tokenId)
        .executeTakeFirstOrThrow();
    const registration: NotificationRegistration = {
      id: 'late',
      tenantId: tenantA,
      tokenId,
      locationUid: 'loc',
      authTokenHash: '',
      status: 'registered',
    };
    const store = server.context.notifications.store;
    const processor = server.context.notifications.processor;
    const receive = (id: string, countDelta: number, at: Date) =>
      store.recordNotification(
        registration,
        { notificationId: id, notificationType: 'ASSET_COUNT', payload: { ...ref, countDelta } },
        at,
      );
    const outcome = async (id: string) =>
      (
        await db
          .selectFrom('apple_notifications')
          .select('outcome')
          .where('notification_id', '=', id)
          .executeTakeFirstOrThrow()
      ).outcome;
    const sync = async (n: number) => {
      expect((await api('POST', `/beta/deviceAppManagement/vppTokens/${tokenId}/syncLicenses`)).status).toBe(
        200,
      );
      return completedRuns(n);
    };

    // Before: Apple's change and its notification, then a sync reads the new count; the notification,
    // processed after that sync, is already counted.
    sim.purchase('loc', { ...ref, count: 3 });
    // Received a few seconds before the sync is asked for: a worker's claim records the run's start
    // from the clock it read when its claim began, which under load can precede a notification
    // received just before the request, and would rightly make this one "during".
    await receive('before', 3, new Date(Date.now() - 5_000));
    await sync(2);
    expect(await processor.drain()).toMatchObject({ superseded: 1, applied: 0 });
    expect(await outcome('before')).toMatch(/^superseded: /);
    expect(await ourTotal()).toBe(await appleTotal());

    // During, with a read that did see the change: received between the run's start and the commit.
    sim.purchase('loc', { ...ref, count: 4 });
    const done = await sync(3);
    const current = done.at(-1)!;
    expect((await snapshot()).run_id).toBe(current.id);
    const during = new Date(new Date(current.started_at).getTime() + 1);
    expect(during.getTime()).toBeLessThanOrEqual(new Date((await snapshot()).committed_at).getTime());
    await receive('during-seen', 4, during);
    expect(await processor.drain()).toMatchObject({ applied: 1 });
    expect(await outcome('during-seen')).toBe('applied: counts re-read (received while they were read)');
    // The refresh the processor queued (a licenseCounts job) brings Apple's count back.
    const exact = await appleTotal();
    await until('the counts refresh', async () => ((await ourTotal()) === exact ? true : undefined));
    await noJobs();

    // During, with a read that missed it: the change happens after the read, the notification is
    // dated inside the (refresh's) read window. Applied, then re-read: exact again.
    const refreshed = await db
      .withTables<{ license_snapshots: { counts_read_started_at: string | null; token_id: string } }>()
      .selectFrom('license_snapshots')
      .select('counts_read_started_at')
      .where('token_id', '=', tokenId)
      .executeTakeFirstOrThrow();
    expect(refreshed.counts_read_started_at).not.toBeNull();
    sim.purchase('loc', { ...ref, count: 5 });
    await receive('during-missed', 5, new Date(new Date(refreshed.counts_read_started_at!).getTime() + 1));
    expect(await processor.drain()).toMatchObject({ applied: 1 });
    const exactAgain = await appleTotal();
    expect(exactAgain).toBe(exact + 5);
    await until('the second refresh', async () => ((await ourTotal()) === exactAgain ? true : undefined));
    await noJobs();

    // After: applied once, no refresh needed.
    sim.purchase('loc', { ...ref, count: 2 });
    await receive('after', 2, new Date());
    expect(await processor.drain()).toMatchObject({ applied: 1 });
    expect(await outcome('after')).toBe('applied');
    expect(await ourTotal()).toBe(await appleTotal());

    // While a sync of the token runs, a notification waits for it (its read may or may not see it).
    sim.faults.latency('loc', 1000);
    expect((await api('POST', `/beta/deviceAppManagement/vppTokens/${tokenId}/syncLicenses`)).status).toBe(
      200,
    );
    await until('the sync to run', async () =>
      (
        await db
          .selectFrom('sync_jobs')
          .select('lease_owner')
          .where('token_id', '=', tokenId)
          .executeTakeFirst()
      )?.lease_owner
        ? true
        : undefined,
    );
    sim.purchase('loc', { ...ref, count: 1 });
    await receive('while-syncing', 1, new Date());
    expect(await processor.drain()).toMatchObject({ applied: 0 });
    expect(await outcome('while-syncing')).toBeNull();
    sim.faults.latency('loc', 0);
    await completedRuns(4);
    await processor.drain();
    expect(await outcome('while-syncing')).toMatch(/^(superseded: |applied)/);
    const last = await appleTotal();
    await until('exact counts after the sync', async () => ((await ourTotal()) === last ? true : undefined));
  }, 90_000);
});
