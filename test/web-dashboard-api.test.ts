import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoTenantId } from '../src/config.js';
import { vppTokenState, vppTokenSyncStatus } from '../src/domain/enums.js';
import { createTestApp, type TestApp } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { buildSToken } from './helpers/stoken-builder.js';

// The dashboard's server side over real sockets: the page and its files, the token table, the live
// event stream, the sync history and the demo session.

let t: TestApp;
let base: string;

beforeAll(async () => {
  t = await createTestApp();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const address = t.app.server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(async () => {
  await t.close();
});

async function createToken(auth: string, displayName: string): Promise<string> {
  const response = await fetch(`${base}/beta/deviceAppManagement/vppTokens`, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify({ token: buildSToken({ orgName: `${displayName} org` }), displayName }),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { id: string }).id;
}

/** Reads server-sent events from a fetch body; `next()` resolves with the next event's data. */
function eventReader(body: ReadableStream<Uint8Array>) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  return {
    async next(): Promise<{ event: string; data: unknown }> {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined) return { event, data: JSON.parse(data) };
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        buffer += value;
      }
    },
    cancel: () => reader.cancel(),
  };
}

describe('the page and its files', () => {
  it('serves the page at / with a strict content security policy, and its files with ETags', async () => {
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/dashboard/app.js"></script>');
    for (const [path, type] of [
      ['/dashboard/app.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/app.css', 'text/css; charset=utf-8'],
    ] as const) {
      const file = await fetch(`${base}${path}`);
      expect(file.status).toBe(200);
      expect(file.headers.get('content-type')).toBe(type);
      const etag = file.headers.get('etag');
      expect(etag).toMatch(/^"[\w-]{22}"$/);
      const again = await fetch(`${base}${path}`, { headers: { 'if-none-match': etag ?? '' } });
      expect(again.status).toBe(304);
    }
  });

  it('serves the words of both languages, the enum descriptions being the domain’s', async () => {
    const strings = (await (await fetch(`${base}/dashboard/strings.json`)).json()) as Record<
      'en' | 'ru',
      {
        ui: Record<string, string>;
        status: Record<string, { label: string; description: string }>;
        state: Record<string, { label: string; description: string }>;
        failure: Record<string, string>;
      }
    >;
    for (const lang of ['en', 'ru'] as const) {
      expect(Object.keys(strings[lang].status)).toEqual([...vppTokenSyncStatus.names]);
      expect(Object.keys(strings[lang].state)).toEqual([...vppTokenState.names]);
      for (const member of vppTokenSyncStatus.members) {
        expect(strings[lang].status[member.name]?.description).toBe(member.description[lang]);
      }
      expect(strings[lang].ui.syncNow).toBeTruthy();
    }
    // Russian that says what the value means (Microsoft's published Russian text for this enum is wrong).
    expect(strings.ru.status.failed?.description).toBe('Последняя синхронизация завершилась с ошибкой.');
    expect(strings.ru.status.completed?.label).toBe('Завершена');
    expect(strings.ru.ui.syncNow).toBe('Синхронизировать');
  });

  it('answers an unknown method with 405 and an unknown file with a Graph 404', async () => {
    expect((await fetch(`${base}/`, { method: 'POST' })).status).toBe(405);
    const missing = await fetch(`${base}/dashboard/nope.js`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('ResourceNotFound');
  });
});

describe('the token table and the live stream', () => {
  it('needs a bearer token and shows only the caller’s tenant', async () => {
    expect((await fetch(`${base}/vppd/v1/dashboard/tokens`)).status).toBe(401);
    expect((await fetch(`${base}/vppd/v1/events`)).status).toBe(401);
    const mine = await createToken(t.auth.a, 'Tenant A token');
    const theirs = await createToken(t.auth.b, 'Tenant B token');
    type Table = { value: { id: string; lastSyncStatus: string; state: string; sync: unknown }[] };
    const read = async () =>
      (await (
        await fetch(`${base}/vppd/v1/dashboard/tokens`, { headers: { authorization: t.auth.a } })
      ).json()) as Table;
    const table = await read();
    const ids = table.value.map((row) => row.id);
    expect(ids).toContain(mine);
    expect(ids).not.toContain(theirs);
    expect(table.value.find((r) => r.id === mine)).toMatchObject({
      state: 'unknown',
      lastSyncStatus: 'none',
      sync: null,
    });
    // syncLicenses: inProgress at once, the job queued for a worker (this app runs none).
    const sync = await fetch(`${base}/beta/deviceAppManagement/vppTokens/${mine}/syncLicenses`, {
      method: 'POST',
      headers: { authorization: t.auth.a },
    });
    expect(sync.status).toBe(200);
    expect((await read()).value.find((r) => r.id === mine)).toMatchObject({
      lastSyncStatus: 'inProgress',
      sync: { job: 'queued', phase: null, pages: 0, records: 0 },
    });
  });

  it('streams the snapshot, then a change committed through the API, without the client asking', async () => {
    const id = await createToken(t.auth.a, 'Live token');
    const response = await fetch(`${base}/vppd/v1/events`, {
      headers: { authorization: t.auth.a, accept: 'text/event-stream' },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const events = eventReader(response.body as ReadableStream<Uint8Array>);
    const first = await events.next();
    expect(first.event).toBe('snapshot');
    const snapshot = first.data as { tokens: { id: string; displayName: string }[] };
    expect(snapshot.tokens.find((row) => row.id === id)?.displayName).toBe('Live token');

    const patch = await fetch(`${base}/beta/deviceAppManagement/vppTokens/${id}`, {
      method: 'PATCH',
      headers: { authorization: t.auth.a, 'content-type': 'application/json' },
      body: JSON.stringify({ displayName: 'Renamed live token' }),
    });
    expect(patch.status).toBe(204);
    const next = await events.next();
    expect(next.event).toBe('upsert');
    const upserted = (next.data as { tokens: { id: string; displayName: string }[] }).tokens;
    expect(upserted.map((row) => [row.id, row.displayName])).toEqual([[id, 'Renamed live token']]);

    const deleted = await fetch(`${base}/beta/deviceAppManagement/vppTokens/${id}`, {
      method: 'DELETE',
      headers: { authorization: t.auth.a },
    });
    expect(deleted.status).toBe(204);
    expect(await events.next()).toEqual({ event: 'remove', data: { type: 'remove', ids: [id] } });
    await events.cancel();
  });
});

describe('a stream outliving its token', () => {
  it('ends once the bearer token that opened it is no longer accepted; reconnecting is refused', async () => {
    const shortLived = await mintToken({
      tenantId: 'aaaaaaaa-1111-4111-8111-111111111111',
      roles: [roles.read],
      now: t.clock.now(),
      expiresIn: 1,
    });
    const authorization = `Bearer ${shortLived}`;
    const response = await fetch(`${base}/vppd/v1/events`, { headers: { authorization } });
    expect(response.status).toBe(200);
    const events = eventReader(response.body as ReadableStream<Uint8Array>);
    expect((await events.next()).event).toBe('snapshot');
    // Past `exp` and the authenticator's clock tolerance, by the server's clock.
    t.clock.advance(10 * 60_000);
    const started = Date.now();
    await expect(events.next()).rejects.toThrow(/stream ended/);
    expect(Date.now() - started).toBeLessThan(5000);
    const again = await fetch(`${base}/vppd/v1/events`, { headers: { authorization } });
    expect(again.status).toBe(401);
    await again.body?.cancel();
  });
});

describe('the sync history', () => {
  it('lists runs newest first with counts, and rejects a bad top', async () => {
    const id = await createToken(t.auth.a, 'History token');
    const path = `${base}/vppd/v1/tokens/${id}/syncs`;
    const empty = await fetch(path, { headers: { authorization: t.auth.a } });
    expect(empty.status).toBe(200);
    expect(await empty.json()).toEqual({ tokenId: id, value: [] });
    for (const top of ['0', '101', 'abc', '1.5']) {
      const bad = await fetch(`${path}?top=${top}`, { headers: { authorization: t.auth.a } });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: { message: string } }).error.message).toContain('top must be');
    }
    const otherTenant = await fetch(path, { headers: { authorization: t.auth.b } });
    expect(otherTenant.status).toBe(404);
  });
});

describe('the demo session', () => {
  it('is not offered outside demo mode', async () => {
    const response = await fetch(`${base}/dashboard/session`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.json()).toEqual({ demo: false });
  });

  it('in demo mode gives a loopback page a working token for the demo tenant, and nobody else', async () => {
    const demo = await createTestApp({ settings: { demo: true } });
    try {
      const local = await demo.app.inject({ url: '/dashboard/session', headers: { host: '127.0.0.1:8080' } });
      const body = local.json() as { demo: boolean; tenantId: string; accessToken: string };
      expect(body).toMatchObject({ demo: true, tenantId: demoTenantId });
      const table = await demo.app.inject({
        url: '/vppd/v1/dashboard/tokens',
        headers: { authorization: `Bearer ${body.accessToken}` },
      });
      expect(table.statusCode).toBe(200);
      // A page served under another name (DNS rebinding) gets nothing.
      const rebound = await demo.app.inject({
        url: '/dashboard/session',
        headers: { host: 'attacker.example:8080' },
      });
      expect(rebound.json()).toEqual({ demo: false });
    } finally {
      await demo.close();
    }
  });
});

describe('closing the server', () => {
  it('ends open event streams, so close does not wait for them', async () => {
    const other = await createTestApp();
    await other.app.listen({ host: '127.0.0.1', port: 0 });
    const address = other.app.server.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const response = await fetch(`${url}/vppd/v1/events`, { headers: { authorization: other.auth.a } });
    const events = eventReader(response.body as ReadableStream<Uint8Array>);
    expect((await events.next()).event).toBe('snapshot');
    await other.close();
    await expect(events.next()).rejects.toThrow(/stream ended|terminated/);
  });
});
