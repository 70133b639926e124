import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AlertPayload } from '../src/alerts/alert-events.js';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import type { RunningServer } from '../src/server/start-server.js';
import { alertWebhooksPath } from '../src/vppd-api/alerts-routes.js';
import { apiCaller, freePort, readWriteBearer, startServing, until } from './helpers/serving.js';
import { createPostgresDatabase, storageEngines } from './helpers/storage-engines.js';

// License alerts in serving processes on both engines: counts moved by Apple's ASSET_COUNT
// notifications (refunds, a purchase) cross the 10 % default, reach 0 and come back; each crossing
// reaches the webhook once, also across a restart and after a full sync that re-reads the same counts.

const dir = mkdtempSync(join(tmpdir(), 'vppd-license-alerts-'));
const received: AlertPayload[] = [];
const receiver = createHttpServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (c: Buffer) => chunks.push(c));
  request.on('end', () => {
    received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as AlertPayload);
    response.end();
  });
});
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  receiver.closeAllConnections();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

describe.each(storageEngines)('license alerts (%s)', (kind) => {
  it('fire once per crossing, across a restart and a full sync', async () => {
    if (!receiver.listening) await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const sim: AppleSim = await startAppleSim({
      seed: `license-alerts-${kind}`,
      locations: [
        { id: 'loc', name: 'Loc', orgName: 'Org', countryCode: 'US', assets: 10, assignments: 80, users: 20 },
      ],
      rateLimit: false,
      notifications: { allowHttp: true, retryDelaysMs: [10, 10], duplicateEvery: 0 },
    });
    cleanups.push(() => sim.close());
    const database =
      kind === 'postgres' ? await createPostgresDatabase() : `sqlite:${join(dir, 'alerts.db')}`;
    const port = await freePort();
    const start = () =>
      startServing({
        sim,
        database,
        settings: { port: String(port), publicUrl: `http://127.0.0.1:${port}`, webhookAllow: '127.0.0.1' },
        options: {
          alerts: { scanMs: 30, deliverMs: 20 },
          notifications: { registrationTickMs: 30, processorPollMs: 30 },
        },
      });
    let server: RunningServer = await start();
    cleanups.push(() => server.close());
    const api = apiCaller(() => server.url, await readWriteBearer());
    const hook = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/${kind}`;
    expect(
      (
        await api('POST', alertWebhooksPath, {
          url: hook,
          events: ['licensesLow', 'licensesExhausted', 'licensesAvailable'],
        })
      ).status,
    ).toBe(201);
    const created = await api('POST', '/beta/deviceAppManagement/vppTokens', {
      token: sim.tokenFor('loc'),
      displayName: 'Alerts',
    });
    const tokenId = created.body.id as string;
    await until('the registration', async () => {
      const s = await api('GET', `/vppd/v1/tokens/${tokenId}/notifications`);
      return s.body.status === 'registered' ? s : undefined;
    });

    const assets = (
      (await (
        await fetch(`${sim.baseUrl}/assets`, { headers: { authorization: `Bearer ${sim.tokenFor('loc')}` } })
      ).json()) as {
        assets: {
          adamId: string;
          pricingParam: string;
          totalCount: number;
          assignedCount: number;
          availableCount: number;
        }[];
      }
    ).assets;
    const asset = assets.find(
      (a) =>
        a.totalCount !== 2147483647 &&
        a.assignedCount >= 9 &&
        a.availableCount > Math.floor(a.assignedCount / 9),
    )!;
    expect(asset).toBeDefined();
    // A refund lowers the total too: `left` available is at most 10 % of (assigned + left).
    const left = Math.floor(asset.assignedCount / 9);
    const ref = { adamId: asset.adamId, pricingParam: asset.pricingParam };
    const mine = () =>
      received.filter(
        (p) =>
          p.tokenId === tokenId &&
          p.data.adamId === asset.adamId &&
          p.data.pricingParam === asset.pricingParam,
      );
    const ofType = (type: string) => mine().filter((p) => p.type === type);

    // Down to the threshold: licensesLow.
    sim.refund('loc', { ...ref, count: asset.availableCount - left });
    const low = await until('licensesLow', async () => ofType('licensesLow')[0]);
    expect(low.text).toMatch(/running low on licenses/);
    expect(low.text).toContain('"Alerts"');
    // Down to 0 with licenses assigned: licensesExhausted.
    sim.refund('loc', { ...ref, count: left });
    const exhausted = await until('licensesExhausted', async () => ofType('licensesExhausted')[0]);
    expect(exhausted.data).toMatchObject({ availableLicenseCount: 0, usedLicenseCount: asset.assignedCount });

    // A per-app threshold (a count) that the app is already at: it fires at the next scan.
    const other = assets.find(
      (a) =>
        a.adamId !== asset.adamId &&
        a.totalCount !== 2147483647 &&
        a.availableCount > a.totalCount / 10 &&
        !assets.some((b) => b.adamId === a.adamId && b.pricingParam !== a.pricingParam),
    )!;
    const put = await api('PUT', `/vppd/v1/tokens/${tokenId}/license-alerts`, {
      threshold: { percent: 10 },
      apps: { [other.adamId]: { count: other.availableCount } },
    });
    expect(put.status).toBe(200);
    expect((await api('GET', `/vppd/v1/tokens/${tokenId}/license-alerts`)).body).toEqual({
      threshold: { percent: 10 },
      apps: { [other.adamId]: { count: other.availableCount } },
    });
    const otherLow = await until('licensesLow under the app threshold', async () =>
      received.find((p) => p.type === 'licensesLow' && p.data.adamId === other.adamId),
    );
    expect(otherLow.text).toContain(`alert at ${other.availableCount})`);
    const bad = await api('PUT', `/vppd/v1/tokens/${tokenId}/license-alerts`, {
      threshold: { percent: 150 },
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/percent/);
    expect((await api('GET', `/vppd/v1/tokens/${tokenId}/license-alerts`)).body.apps).toEqual({
      [other.adamId]: { count: other.availableCount },
    });

    // A restart: nothing fires again for crossings already alerted.
    await server.close();
    server = await start();
    await server.context.alerts.scanOnce();

    // Licenses bought again: licensesAvailable.
    sim.purchase('loc', { ...ref, count: 4 });
    const available = await until('licensesAvailable', async () => ofType('licensesAvailable')[0]);
    expect(available.text).toMatch(/has licenses again: 4 of/);

    // A full sync re-reads the same counts: nothing new.
    expect((await api('POST', `/beta/deviceAppManagement/vppTokens/${tokenId}/syncLicenses`)).status).toBe(
      200,
    );
    await until('the sync', async () => {
      const t = await api('GET', `/beta/deviceAppManagement/vppTokens/${tokenId}`);
      return t.body.lastSyncStatus === 'completed' ? t : undefined;
    });
    expect((await server.context.alerts.scanOnce()).queued).toBe(0);
    await server.context.alerts.deliverDue();
    expect(mine().map((p) => p.type)).toEqual(['licensesLow', 'licensesExhausted', 'licensesAvailable']);
  }, 90_000);
});
