import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { vppAppId } from '../src/graph/vpp-app-presenter.js';
import { mintToken, roles, testJwtSecret } from './helpers/jwt.js';
import { cleanEnv, type ServeProcess, startServeProcess } from './helpers/serve-process.js';

// Apple's notifications end to end, over real sockets: `vppd serve` (its own process, SQLite) with
// VPPD_PUBLIC_URL registers the simulator's location after the first sync, the simulator delivers its
// TEST_NOTIFICATION and, after a purchase, an ASSET_COUNT that Graph's totalLicenseCount shows without
// any sync. Duplicates and out-of-order deliveries change nothing twice; a wrong notification token is
// refused and logged without any secret. A license operation ends by Apple's ASSET_MANAGEMENT
// notification before the worker's first eventStatus poll would be due (5 s): Apple sees no poll.

const dir = mkdtempSync(join(tmpdir(), 'vppd-notify-'));
const tenantId = 'notify-tenant';
const key = Buffer.alloc(32, 9).toString('base64');
let sim: AppleSim;
let vppd: ServeProcess;
let bearer: string;
let publicUrl: string;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls `probe` until it answers something other than undefined (conditions, never fixed sleeps). */
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function graph(path: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${vppd.url}/beta/${path}`, { headers: { authorization: bearer } });
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

async function appleConfig(): Promise<Record<string, unknown>> {
  const response = await fetch(`${sim.baseUrl}/client/config`, {
    headers: { authorization: `Bearer ${sim.tokenFor('live')}` },
  });
  return (await response.json()) as Record<string, unknown>;
}

beforeAll(async () => {
  sim = await startAppleSim({
    seed: 'notify-process',
    locations: [
      {
        id: 'live',
        name: 'Live School',
        orgName: 'Live District',
        countryCode: 'US',
        assets: 30,
        assignments: 300,
        users: 60,
      },
    ],
    rateLimit: false,
    // Events complete (and notify) 100 ms after they are sent: well before vppd's first poll at 5 s.
    eventDelayMs: 100,
    // vppd listens on plain HTTP here; retries a few ms apart; duplicates only where the test sends them.
    notifications: { allowHttp: true, retryDelaysMs: [20, 20], duplicateEvery: 0 },
  });
  const port = await freePort();
  publicUrl = `http://127.0.0.1:${port}`;
  vppd = await startServeProcess(
    [
      '--port',
      String(port),
      '--database',
      `sqlite:${join(dir, 'vppd.db')}`,
      '--apple-url',
      sim.baseUrl,
      '--public-url',
      publicUrl,
    ],
    {
      env: cleanEnv({
        VPPD_ENCRYPTION_KEY: key,
        VPPD_JWT_SECRET: testJwtSecret,
        VPPD_LOG_LEVEL: 'info',
        VPPD_SHUTDOWN_GRACE: '0s',
      }),
      cwd: dir,
    },
  );
  bearer = `Bearer ${await mintToken({ tenantId, roles: [roles.readWrite] })}`;
}, 60_000);

afterAll(async () => {
  await vppd?.stop('SIGKILL');
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Apple notifications (vppd serve process + simulator)', () => {
  let tokenId: string;
  let appId: string;
  let asset: { adamId: string; pricingParam: string; totalCount: number };
  let syncRuns: number;

  it('registers the location after the first sync, and answers Apple’s test notification', async () => {
    const created = await fetch(`${vppd.url}/beta/deviceAppManagement/vppTokens`, {
      method: 'POST',
      headers: { authorization: bearer, 'content-type': 'application/json' },
      body: JSON.stringify({ token: sim.tokenFor('live'), displayName: 'Live' }),
    });
    expect(created.status).toBe(201);
    tokenId = ((await created.json()) as { id: string }).id;
    await until('the first sync', async () => {
      const token = await graph(`deviceAppManagement/vppTokens/${tokenId}`);
      return token.lastSyncStatus === 'completed' ? token : undefined;
    });

    const config = await until('the registration at Apple', async () => {
      const c = await appleConfig();
      return typeof c.notificationUrl === 'string' ? c : undefined;
    });
    expect(config.notificationUrl).toMatch(new RegExp(`^${publicUrl}/apple/notifications/[0-9a-f-]{36}$`));
    expect(config.subscribedNotificationTypes).toEqual(['ASSET_MANAGEMENT', 'ASSET_COUNT']);
    const test = sim.notifications().find((n) => n.notificationType === 'TEST_NOTIFICATION');
    expect(test).toMatchObject({ status: 'delivered', attempts: 1, lastResult: '204' });

    const status = await fetch(`${vppd.url}/vppd/v1/tokens/${tokenId}/notifications`, {
      headers: { authorization: bearer },
    });
    const body = (await status.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      status: 'registered',
      notificationUrl: config.notificationUrl,
      failureReason: null,
    });
    expect(JSON.stringify(body)).not.toContain(config.notificationAuthToken as string);
  }, 60_000);

  it('shows a purchase in iosVppApp.totalLicenseCount without a sync', async () => {
    const assets = (
      (await (
        await fetch(`${sim.baseUrl}/assets`, { headers: { authorization: `Bearer ${sim.tokenFor('live')}` } })
      ).json()) as {
        assets: { adamId: string; pricingParam: string; productType: string; totalCount: number }[];
      }
    ).assets;
    asset = assets.find((a) => a.productType === 'App' && a.totalCount !== 2147483647)!;
    appId = vppAppId({ tokenId, adamId: asset.adamId, pricingParam: asset.pricingParam });
    expect((await graph(`deviceAppManagement/mobileApps/${appId}`)).totalLicenseCount).toBe(asset.totalCount);
    syncRuns = (
      (await (
        await fetch(`${vppd.url}/vppd/v1/tokens/${tokenId}/syncs`, { headers: { authorization: bearer } })
      ).json()) as { value: unknown[] }
    ).value.length;
    sim.resetRequestCounts();

    sim.purchase('live', { adamId: asset.adamId, pricingParam: asset.pricingParam, count: 5 });
    const app = await until('the purchase on Graph', async () => {
      const a = await graph(`deviceAppManagement/mobileApps/${appId}`);
      return a.totalLicenseCount === asset.totalCount + 5 ? a : undefined;
    });
    expect(app.totalLicenseCount).toBe(asset.totalCount + 5);
    // The dashboard's utilization reads the same snapshot: the token's total moved by 5 as well.
    const utilization = (await (
      await fetch(`${vppd.url}/vppd/v1/licenses/utilization`, { headers: { authorization: bearer } })
    ).json()) as { tokens: { tokenId: string; total: number }[] };
    const limitedTotal = assets
      .filter((a) => a.totalCount !== 2147483647)
      .reduce((n, a) => n + a.totalCount, 0);
    expect(utilization.tokens).toEqual([expect.objectContaining({ tokenId, total: limitedTotal + 5 })]);
    // No sync ran: vppd did not call Apple at all, and the history has no new run.
    expect(sim.requestCounts().live ?? {}).toEqual({});
    const runs = (
      (await (
        await fetch(`${vppd.url}/vppd/v1/tokens/${tokenId}/syncs`, { headers: { authorization: bearer } })
      ).json()) as { value: unknown[] }
    ).value;
    expect(runs).toHaveLength(syncRuns);
  }, 30_000);

  it('applies duplicates once and out-of-order deliveries each once', async () => {
    const config = await appleConfig();
    const url = config.notificationUrl as string;
    const auth = `Bearer ${config.notificationAuthToken as string}`;
    const deliver = (notificationId: string, countDelta: number) =>
      fetch(url, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: JSON.stringify({
          notificationId,
          notificationType: 'ASSET_COUNT',
          uId: config.uId,
          notification: { adamId: asset.adamId, pricingParam: asset.pricingParam, countDelta },
        }),
      });
    // The simulator's own purchase notification, delivered again: acknowledged, not applied again.
    const purchase = sim.notifications().find((n) => n.notificationType === 'ASSET_COUNT')!;
    expect((await deliver(purchase.notificationId, 5)).status).toBe(204);
    // Two later changes arriving in the wrong order, the second one twice.
    expect((await deliver('later-2', -1)).status).toBe(204);
    expect((await deliver('later-1', 3)).status).toBe(204);
    expect((await deliver('later-2', -1)).status).toBe(204);
    const expected = asset.totalCount + 5 + 3 - 1;
    await until('both deltas', async () => {
      const a = await graph(`deviceAppManagement/mobileApps/${appId}`);
      return a.totalLicenseCount === expected ? a : undefined;
    });
    // Nothing else is pending: a further read still shows exactly the sum of distinct notifications.
    await new Promise((resolve) => setImmediate(resolve));
    expect((await graph(`deviceAppManagement/mobileApps/${appId}`)).totalLicenseCount).toBe(expected);
  });

  it('refuses a wrong notification token and logs it without secrets', async () => {
    const config = await appleConfig();
    const realToken = config.notificationAuthToken as string;
    const wrong = 'wrong-token-9f8e7d6c5b4a';
    const refused = await fetch(config.notificationUrl as string, {
      method: 'POST',
      headers: { authorization: `Bearer ${wrong}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        notificationId: 'evil',
        notificationType: 'ASSET_COUNT',
        notification: { adamId: asset.adamId, pricingParam: asset.pricingParam, countDelta: 1000 },
      }),
    });
    expect(refused.status).toBe(401);
    const error = (await refused.json()) as { error: { code: string; message: string } };
    expect(error.error.code).toBe('InvalidAuthenticationToken');
    const missing = await fetch(`${publicUrl}/apple/notifications/00000000-0000-4000-8000-000000000000`, {
      method: 'POST',
      headers: { authorization: `Bearer ${realToken}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(missing.status).toBe(401);
    const logs = await until('the refusal in the log', async () =>
      vppd.stdout().includes('"reason":"wrong notification token"') ? vppd.stdout() : undefined,
    );
    expect(logs).toContain('Apple notification refused');
    expect(logs).not.toContain(wrong);
    expect(logs).not.toContain(realToken);
    expect((await graph(`deviceAppManagement/mobileApps/${appId}`)).totalLicenseCount).toBe(
      asset.totalCount + 7,
    );
  });

  it('ends a license operation from Apple’s ASSET_MANAGEMENT, without polling the event', async () => {
    sim.resetRequestCounts();
    const posted = await fetch(`${vppd.url}/vppd/v1/tokens/${tokenId}/associations`, {
      method: 'POST',
      headers: { authorization: bearer, 'content-type': 'application/json' },
      body: JSON.stringify({
        assets: [{ adamId: asset.adamId, pricingParam: asset.pricingParam }],
        serialNumbers: ['PROCESS00001', 'PROCESS00002'],
      }),
    });
    expect(posted.status).toBe(202);
    const operationId = ((await posted.json()) as { id: string }).id;
    const done = await until('the operation to end', async () => {
      const response = await fetch(`${vppd.url}/vppd/v1/operations/${operationId}`, {
        headers: { authorization: bearer },
      });
      const op = (await response.json()) as Record<string, unknown>;
      return op.status === 'pending' || op.status === 'running' ? undefined : op;
    });
    expect(done).toMatchObject({ status: 'completed', completedCount: 2, failedCount: 0 });
    const notified = sim.notifications().filter((n) => n.notificationType === 'ASSET_MANAGEMENT');
    expect(notified).toEqual([
      expect.objectContaining({
        status: 'delivered',
        notification: expect.objectContaining({ type: 'ASSOCIATE', result: 'SUCCESS' }),
      }),
    ]);
    // The batch's poll count is 0: vppd never asked Apple for the event's status.
    const calls = sim.requestCounts().live ?? {};
    expect(calls['POST assets/associate']).toBe(1);
    expect(calls['GET assets/eventStatus']).toBeUndefined();
    expect(calls['GET status']).toBeUndefined();
  }, 30_000);
});
