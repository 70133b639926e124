import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import type { RunningServer } from '../src/server/start-server.js';
import { createTestApp, tenantA } from './helpers/graph-test-app.js';
import { apiCaller, freePort, readWriteBearer, startServing, until } from './helpers/serving.js';
import { storageEngines, testDatabaseUrl } from './helpers/storage-engines.js';

// Registration and the receiver in a serving process (startServer with runSync, short loop periods),
// on both engines: Apple's 9728 surfaced as a reason, re-registration after a renewal (the old token
// then refused), notifications that do not fit the snapshot requesting a sync instead of changing
// counts, and nothing registered without VPPD_PUBLIC_URL.

const running: { close(): Promise<void> }[] = [];
afterAll(async () => {
  for (const r of running.reverse()) await r.close();
});

async function startSim(seed: string): Promise<AppleSim> {
  const sim = await startAppleSim({
    seed,
    locations: [
      {
        id: 'loc',
        name: 'Loc',
        orgName: 'Org',
        countryCode: 'US',
        assets: 12,
        assignments: 60,
        users: 20,
        tokens: 2,
      },
    ],
    rateLimit: false,
    notifications: { allowHttp: true, retryDelaysMs: [10, 10], duplicateEvery: 0 },
  });
  running.push(sim);
  return sim;
}

async function startVppd(
  kind: (typeof storageEngines)[number],
  sim: AppleSim,
  publicUrl: string,
  port: number,
) {
  const server = await startServing({
    sim,
    database: await testDatabaseUrl(kind),
    settings: { port: String(port), publicUrl },
    options: {
      logger: pino({ level: process.env.DEBUG_NOTIFY ? 'error' : 'silent' }),
      notifications: { registrationTickMs: 30, processorPollMs: 30 },
    },
  });
  running.push(server);
  return server;
}

async function call(server: RunningServer, method: string, path: string, body?: unknown) {
  return apiCaller(() => server.url, await readWriteBearer())(method, path, body);
}

async function addToken(server: RunningServer, sim: AppleSim): Promise<string> {
  const created = await call(server, 'POST', '/beta/deviceAppManagement/vppTokens', {
    token: sim.tokenFor('loc'),
  });
  expect(created.status).toBe(201);
  return created.body.id as string;
}

async function appleConfig(sim: AppleSim): Promise<Record<string, unknown>> {
  const response = await fetch(`${sim.baseUrl}/client/config`, {
    headers: { authorization: `Bearer ${sim.tokenFor('loc')}` },
  });
  return (await response.json()) as Record<string, unknown>;
}

describe.each(storageEngines)('Apple notifications in a serving process (%s)', (kind) => {
  it('keeps Apple’s 9728 as a reason the operator can read when the URL is unreachable', async () => {
    const sim = await startSim(`notify-9728-${kind}`);
    const deadPort = await freePort();
    const server = await startVppd(kind, sim, `http://127.0.0.1:${deadPort}/vppd`, 0);
    const id = await addToken(server, sim);
    const status = await until('the failed registration', async () => {
      const s = await call(server, 'GET', `/vppd/v1/tokens/${id}/notifications`);
      return s.body.status === 'failed' ? s.body : undefined;
    });
    expect(status.appleErrorNumber).toBe(9728);
    expect(status.failureReason).toContain(`http://127.0.0.1:${deadPort}/vppd/apple/notifications/`);
    expect(status.failureReason).toMatch(/test notification/);
    expect(status.failureReason).toMatch(/VPPD_PUBLIC_URL/);
    // Apple kept no configuration, and the token itself stays healthy.
    expect((await appleConfig(sim)).notificationUrl).toBeUndefined();
    const token = await call(server, 'GET', `/beta/deviceAppManagement/vppTokens/${id}`);
    expect(token.body).toMatchObject({ state: 'valid', lastSyncStatus: 'completed' });
  }, 30_000);

  it('re-registers after a renewal, refuses the old token, and syncs when a delta does not fit', async () => {
    const sim = await startSim(`notify-renew-${kind}`);
    const port = await freePort();
    const server = await startVppd(kind, sim, `http://127.0.0.1:${port}`, port);
    const id = await addToken(server, sim);
    const first = await until('the registration', async () => {
      const c = await appleConfig(sim);
      return typeof c.notificationAuthToken === 'string' ? c : undefined;
    });

    // Renewing the sToken (the location's second token file) registers again with a new bearer token
    // at the same URL.
    const renewed = await call(server, 'PATCH', `/beta/deviceAppManagement/vppTokens/${id}`, {
      token: sim.tokenFor('loc', 1),
    });
    expect(renewed.status).toBe(204);
    const second = await until('the re-registration', async () => {
      const c = await appleConfig(sim);
      return c.notificationAuthToken !== first.notificationAuthToken ? c : undefined;
    });
    expect(second.notificationUrl).toBe(first.notificationUrl);
    const deliver = (token: unknown, notificationId: string, notification: Record<string, unknown>) =>
      fetch(second.notificationUrl as string, {
        method: 'POST',
        headers: { authorization: `Bearer ${token as string}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          notificationId,
          notificationType: 'ASSET_COUNT',
          uId: second.uId,
          notification,
        }),
      });
    expect(
      (
        await deliver(first.notificationAuthToken, 'old', {
          adamId: '1',
          pricingParam: 'STDQ',
          countDelta: 1,
        })
      ).status,
    ).toBe(401);

    // Settle: the renewal's sync has finished.
    await until('the renewal sync', async () => {
      const t = await call(server, 'GET', `/beta/deviceAppManagement/vppTokens/${id}`);
      return t.body.lastSyncStatus === 'completed' ? t : undefined;
    });
    const runsBefore = ((await call(server, 'GET', `/vppd/v1/tokens/${id}/syncs`)).body.value as unknown[])
      .length;
    // An asset the snapshot does not hold: counts stay, a sync is requested (trigger `notification`).
    expect(
      (
        await deliver(second.notificationAuthToken, 'unknown-asset', {
          adamId: '999999999',
          pricingParam: 'STDQ',
          countDelta: 4,
        })
      ).status,
    ).toBe(204);
    const runs = await until('the sync a notification requested', async () => {
      const r = (await call(server, 'GET', `/vppd/v1/tokens/${id}/syncs`)).body.value as {
        trigger: string;
        outcome: string;
      }[];
      return r.length > runsBefore && r[0]?.outcome === 'completed' ? r : undefined;
    });
    expect(runs[0]?.trigger).toBe('notification');

    // A malformed envelope is a 400 and stores nothing.
    const bad = await fetch(second.notificationUrl as string, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${second.notificationAuthToken as string}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ notificationType: 'ASSET_COUNT' }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/notificationId/);

    // Two processes registering one token at once: only one claims it until its claim is stale.
    const { store } = server.context.notifications;
    const current = (await store.registrationOf(tenantA, id))!;
    const claim = { ...current, status: 'pending' as const };
    const at = new Date();
    expect(await store.claimRegistration(claim, at, 60_000)).toBe(true);
    expect(await store.claimRegistration(claim, at, 60_000)).toBe(false);
    expect(await store.claimRegistration(claim, new Date(at.getTime() + 61_000), 60_000)).toBe(true);
  }, 60_000);
});

describe('without VPPD_PUBLIC_URL', () => {
  it('registers nothing and says so', async () => {
    const app = await createTestApp();
    running.push(app);
    const created = await app.app.inject({
      method: 'POST',
      url: '/beta/deviceAppManagement/vppTokens',
      headers: { authorization: app.auth.a, 'content-type': 'application/json' },
      payload: { token: (await startSim('notify-none')).tokenFor('loc') },
    });
    expect(created.statusCode).toBe(201);
    const status = await app.app.inject({
      method: 'GET',
      url: `/vppd/v1/tokens/${created.json().id as string}/notifications`,
      headers: { authorization: app.auth.a },
    });
    expect(status.json()).toMatchObject({ status: 'notConfigured', notificationUrl: null });
    expect(app.context.notifications.registrar).toBeUndefined();
  });
});
