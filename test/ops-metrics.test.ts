import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppleClient } from '../src/apple/apple-client.js';
import { InProcessRateLimiter } from '../src/apple/rate-limiter.js';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { type AppContext, createContext } from '../src/context.js';
import { createMetrics } from '../src/ops/metrics.js';
import { buildApp } from '../src/server/app.js';
import { createFakeClock } from './helpers/fake-clock.js';
import { tenantA, testConfig } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { tokensPath } from './helpers/sync-harness.js';

// /metrics over a real socket after real syncs against the Apple simulator (the context's own Apple
// client, so its observer hook is what counts the requests); per-token gauges read from the database,
// so a second "process" on the same database file reports the same truth.

let sim: AppleSim;
let dir: string;
let database: string;
const clock = createFakeClock();
const silent = pino({ level: 'silent' });
let first: { context: AppContext; app: FastifyInstance; url: string };
let auth: string;
const ids: { small: string; revoked: string } = { small: '', revoked: '' };

async function start(overrides: { metricsToken?: string; metricsAppLicenses?: string } = {}) {
  const context = await createContext(testConfig({ appleUrl: sim.baseUrl, database, ...overrides }), {
    clock: clock.now,
    logger: silent,
    random: () => 0.5,
    sync: { pollMs: 20, heartbeatMs: 50 },
  });
  const app = buildApp(context);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { context, app, url: `http://127.0.0.1:${port}` };
}

async function stop(server: { context: AppContext; app: FastifyInstance }) {
  await server.app.close();
  await server.context.dispose();
}

/** The value of one sample line, or undefined when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const inside = line.slice(name.length + 1, line.lastIndexOf('}'));
    const parts = inside.split(',');
    if (wanted.every((w) => parts.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

beforeAll(async () => {
  sim = await startAppleSim({ seed: 'ops-metrics', rateLimit: false, pageSize: 100 });
  dir = await mkdtemp(join(tmpdir(), 'vppd-metrics-'));
  database = `sqlite:${join(dir, 'vppd.db')}`;
  first = await start();
  auth = `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite], now: clock.now(), expiresIn: 86_400 })}`;
  for (const location of ['small', 'revoked'] as const) {
    const response = await fetch(`${first.url}${tokensPath}`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify({ token: sim.tokenFor(location) }),
    });
    expect(response.status).toBe(201);
    ids[location] = ((await response.json()) as { id: string }).id;
    await fetch(`${first.url}${tokensPath}/${ids[location]}/syncLicenses`, {
      method: 'POST',
      headers: { authorization: auth },
    });
  }
  const worker = await first.context.sync.createWorker();
  await worker.poll();
  await worker.idle();
  await first.context.alerts.scanOnce();
});

afterAll(async () => {
  await stop(first);
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});

describe('GET /metrics', () => {
  it('per-token status (one-hot over the four members), state, last success and expiry, by tenant and token id', async () => {
    const response = await fetch(`${first.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    const statuses = { none: 0, inProgress: 0, completed: 1, failed: 0 };
    for (const [status, value] of Object.entries(statuses)) {
      expect(
        sample(text, 'vppd_token_sync_status', { tenant_id: tenantA, token_id: ids.small, status }),
      ).toBe(value);
    }
    expect(sample(text, 'vppd_token_sync_status', { token_id: ids.revoked, status: 'failed' })).toBe(1);
    expect(sample(text, 'vppd_token_sync_status', { token_id: ids.revoked, status: 'completed' })).toBe(0);
    expect(sample(text, 'vppd_token_state', { token_id: ids.small, state: 'valid' })).toBe(1);
    expect(sample(text, 'vppd_token_state', { token_id: ids.small, state: 'invalid' })).toBe(0);
    expect(sample(text, 'vppd_token_state', { token_id: ids.revoked, state: 'invalid' })).toBe(1);
    expect(sample(text, 'vppd_token_last_successful_sync_timestamp_seconds', { token_id: ids.small })).toBe(
      clock.now().getTime() / 1000,
    );
    // Never synced successfully: no series rather than year 1.
    expect(
      sample(text, 'vppd_token_last_successful_sync_timestamp_seconds', { token_id: ids.revoked }),
    ).toBeUndefined();
    const token = (await (
      await fetch(`${first.url}${tokensPath}/${ids.small}`, { headers: { authorization: auth } })
    ).json()) as { expirationDateTime: string };
    expect(sample(text, 'vppd_token_expiration_timestamp_seconds', { token_id: ids.small })).toBe(
      Date.parse(token.expirationDateTime) / 1000,
    );
    expect(text).not.toContain(sim.tokenFor('small'));
  });

  it('sync durations by outcome, Apple requests by endpoint/status/errorNumber, HTTP requests by route', async () => {
    const text = await (await fetch(`${first.url}/metrics`)).text();
    expect(sample(text, 'vppd_sync_duration_seconds_count', { outcome: 'completed' })).toBe(1);
    expect(sample(text, 'vppd_sync_duration_seconds_count', { outcome: 'failed' })).toBe(1);
    expect(
      sample(text, 'vppd_apple_requests_total', {
        endpoint: 'GET /assets',
        status: '200',
        error_number: 'none',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(text, 'vppd_apple_requests_total', {
        endpoint: 'GET /client/config',
        status: '401',
        error_number: '9625',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sample(text, 'vppd_http_requests_total', {
        method: 'POST',
        route: '/beta/deviceAppManagement/vppTokens',
        status: '201',
      }),
    ).toBe(2);
    expect(
      sample(text, 'vppd_http_request_duration_seconds_count', {
        method: 'POST',
        route: '/beta/deviceAppManagement/vppTokens/:id/syncLicenses',
      }),
    ).toBe(2);
  });

  it('another process on the same database reports the same per-token truth', async () => {
    const second = await start();
    try {
      const text = await (await fetch(`${second.url}/metrics`)).text();
      expect(sample(text, 'vppd_token_sync_status', { token_id: ids.small, status: 'completed' })).toBe(1);
      expect(sample(text, 'vppd_token_sync_status', { token_id: ids.revoked, status: 'failed' })).toBe(1);
      // Process-local histograms start empty in a process that ran nothing.
      expect(sample(text, 'vppd_sync_duration_seconds_count', { outcome: 'completed' })).toBeUndefined();
    } finally {
      await stop(second);
    }
  });

  it('is loopback-only without VPPD_METRICS_TOKEN, and needs the bearer token when it is set', async () => {
    const remote = await first.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '10.1.2.3' });
    expect(remote.statusCode).toBe(403);
    expect(remote.json().error.code).toBe('Forbidden');
    const guarded = await start({ metricsToken: 'metrics-token-0123456789' });
    try {
      expect((await fetch(`${guarded.url}/metrics`)).status).toBe(401);
      const wrong = await fetch(`${guarded.url}/metrics`, {
        headers: { authorization: 'Bearer metrics-token-012345678X' },
      });
      expect(wrong.status).toBe(401);
      const ok = await guarded.app.inject({
        method: 'GET',
        url: '/metrics',
        remoteAddress: '10.1.2.3',
        headers: { authorization: 'Bearer metrics-token-0123456789' },
      });
      expect(ok.statusCode).toBe(200);
      expect(ok.body).toContain('vppd_token_sync_status');
    } finally {
      await stop(guarded);
    }
  });
});

describe('license series', () => {
  it('per-token totals (unlimited apps left out) and, opted in, per-app series under a cap', async () => {
    const assets = (
      (await (
        await fetch(`${sim.baseUrl}/assets`, {
          headers: { authorization: `Bearer ${sim.tokenFor('small')}` },
        })
      ).json()) as { assets: { totalCount: number; assignedCount: number; availableCount: number }[] }
    ).assets.filter((a) => a.totalCount !== 2147483647);
    const sum = (key: 'totalCount' | 'assignedCount' | 'availableCount') =>
      assets.reduce((n, a) => n + a[key], 0);
    const text = await (await fetch(`${first.url}/metrics`)).text();
    expect(sample(text, 'vppd_token_licenses', { token_id: ids.small, kind: 'total' })).toBe(
      sum('totalCount'),
    );
    expect(sample(text, 'vppd_token_licenses', { token_id: ids.small, kind: 'assigned' })).toBe(
      sum('assignedCount'),
    );
    expect(sample(text, 'vppd_token_licenses', { token_id: ids.small, kind: 'available' })).toBe(
      sum('availableCount'),
    );
    // The revoked token has no snapshot: no series. Per-app series are off by default.
    expect(sample(text, 'vppd_token_licenses', { token_id: ids.revoked, kind: 'total' })).toBeUndefined();
    expect(text).not.toContain('vppd_app_licenses{');

    const capped = await start({ metricsAppLicenses: '3' });
    try {
      const appText = await (await fetch(`${capped.url}/metrics`)).text();
      const lines = appText.split('\n').filter((l) => l.startsWith('vppd_app_licenses{'));
      expect(lines).toHaveLength(9); // 3 apps x total, assigned, available
      const mostAssigned = Math.max(...assets.map((a) => a.assignedCount));
      expect(lines.some((l) => l.includes('kind="assigned"') && l.endsWith(` ${mostAssigned}`))).toBe(true);
      expect(appText).toContain(`vppd_app_licenses_omitted ${assets.length - 3}`);
    } finally {
      await stop(capped);
    }
  });
});

describe('Apple rate-limit waits', () => {
  it('counts each request that waited for the per-location limit and the time waited', async () => {
    const metrics = createMetrics({ db: first.context.db, clock: clock.now });
    let now = 1_000_000;
    const sleep = async (ms: number) => {
      now += ms;
    };
    const apple = createAppleClient({
      baseUrl: sim.baseUrl,
      now: () => now,
      sleep,
      rateLimiter: new InProcessRateLimiter({ now: () => now, sleep, windowMs: 1000 }),
      observer: metrics.apple,
    });
    try {
      // service/config says 15 per second; 20 calls one after another at one fake instant: the 16th
      // waits for the window (1 s), after which the next four fit in the new window.
      for (let i = 0; i < 20; i++) await apple.getClientConfig(sim.tokenFor('small'));
    } finally {
      await apple.close();
    }
    const text = await metrics.registry.metrics();
    expect(sample(text, 'vppd_apple_rate_limit_waits_total', { endpoint: 'GET /client/config' })).toBe(1);
    expect(
      sample(text, 'vppd_apple_rate_limit_wait_seconds_total', { endpoint: 'GET /client/config' }),
    ).toBeCloseTo(1, 1);
    expect(
      sample(text, 'vppd_apple_requests_total', {
        endpoint: 'GET /client/config',
        status: '200',
        error_number: 'none',
      }),
    ).toBe(20);
  });
});
