// VPPD_GRAPH_THROTTLING=intune over HTTP: 429 TooManyRequests with Retry-After per app and per tenant,
// a fake clock to cross windows, the metric, and $batch steps counted one by one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp, tenantA, tenantB } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';

let t: TestApp;
const bearerFor = async (tenantId: string, appid: string) =>
  `Bearer ${await mintToken({ tenantId, roles: [roles.readWrite], now: t.clock.now(), extra: { appid } })}`;

beforeAll(async () => {
  t = await createTestApp({ settings: { graphThrottling: 'intune' } });
});
afterAll(async () => {
  await t.close();
});

const missing = '/beta/deviceAppManagement/vppTokens/00000000-0000-0000-0000-000000000000';
const del = (authorization: string) =>
  t.app.inject({ method: 'DELETE', url: missing, headers: { authorization } });

async function statuses(
  n: number,
  send: () => Promise<{ statusCode: number }>,
): Promise<Map<number, number>> {
  const seen = new Map<number, number>();
  for (let i = 0; i < n; i += 1) {
    const { statusCode } = await send();
    seen.set(statusCode, (seen.get(statusCode) ?? 0) + 1);
  }
  return seen;
}

describe('Graph throttling (VPPD_GRAPH_THROTTLING=intune)', () => {
  it('per app: the 101st write in 20 s is a 429 with Retry-After; reads go on; a new window resets', async () => {
    const app1 = await bearerFor(tenantA, 'app-one');
    expect(await statuses(100, () => del(app1))).toEqual(new Map([[404, 100]]));
    t.clock.advance(5_000);
    const refused = await del(app1);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('15');
    const error = refused.json().error;
    expect(error.code).toBe('TooManyRequests');
    expect(error.message).toMatch(/write requests from this application/);
    expect(error.innerError['request-id']).toBeTypeOf('string');
    const read = await t.app.inject({
      method: 'GET',
      url: '/beta/deviceAppManagement/vppTokens',
      headers: { authorization: app1 },
    });
    expect(read.statusCode).toBe(200);
    t.clock.advance(15_000);
    expect((await del(app1)).statusCode).toBe(404);
  });

  it('per tenant: 200 writes across apps, then 429 for a third app; another tenant is unaffected', async () => {
    t.clock.advance(20_000);
    const [a, b, c] = await Promise.all(['app-a', 'app-b', 'app-c'].map((id) => bearerFor(tenantA, id)));
    expect(await statuses(100, () => del(a as string))).toEqual(new Map([[404, 100]]));
    expect(await statuses(100, () => del(b as string))).toEqual(new Map([[404, 100]]));
    const refused = await del(c as string);
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error.message).toMatch(/write requests from this tenant/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect((await del(await bearerFor(tenantB, 'app-a'))).statusCode).toBe(404);
  });

  it('counts each $batch step; the metric counts refusals by scope and kind', async () => {
    t.clock.advance(20_000);
    const app = await bearerFor(tenantA, 'batcher');
    expect(await statuses(95, () => del(app))).toEqual(new Map([[404, 95]]));
    const batch = await t.app.inject({
      method: 'POST',
      url: '/beta/$batch',
      headers: { authorization: app },
      payload: {
        requests: Array.from({ length: 10 }, (_, i) => ({
          id: String(i),
          method: 'DELETE',
          url: '/deviceAppManagement/vppTokens/00000000-0000-0000-0000-000000000000',
        })),
      },
    });
    expect(batch.statusCode).toBe(200);
    const steps = batch.json().responses as { status: number; headers: Record<string, string> }[];
    expect(steps.map((s) => s.status)).toEqual([404, 404, 404, 404, 404, 429, 429, 429, 429, 429]);
    expect(steps[5]?.headers['Retry-After']).toBe('20');
    const text = await t.context.metrics.registry.metrics();
    expect(text).toMatch(/vppd_http_throttled_total\{scope="app",kind="write"\} 6/);
    expect(text).toMatch(/vppd_http_throttled_total\{scope="tenant",kind="write"\} 1/);
  });
});

describe('Graph throttling is off by default', () => {
  it('lets 150 writes of one app through', async () => {
    const plain = await createTestApp();
    try {
      const authorization = `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite], now: plain.clock.now(), extra: { appid: 'x' } })}`;
      const seen = new Map<number, number>();
      for (let i = 0; i < 150; i += 1) {
        const { statusCode } = await plain.app.inject({
          method: 'DELETE',
          url: missing,
          headers: { authorization },
        });
        seen.set(statusCode, (seen.get(statusCode) ?? 0) + 1);
      }
      expect(seen).toEqual(new Map([[404, 150]]));
    } finally {
      await plain.close();
    }
  });
});
