import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncLicensesAction } from '../src/domain/sync-lifecycle.js';
import type { VppToken } from '../src/domain/vpp-token.js';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import { tenantA, tenantB, testConfig } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { seedTokens } from './helpers/seed-tokens.js';

// The vppTokens list and get answer from kept bytes while the database is unchanged (see
// storage/change-stamp.ts). Over a real socket on a database file: whoever writes — the API, this
// process outside the routes, or another process on the same file — the very next read shows it.

const base = '/beta/deviceAppManagement/vppTokens';
const failedList = `${base}?$filter=lastSyncStatus eq 'failed'&$top=2`;

let dir: string;
let file: string;
let server: RunningServer;
let auth: { a: string; b: string };
let tokensA: VppToken[];
let tokensB: VppToken[];

async function get(path: string, authorization: string, headers: Record<string, string> = {}) {
  const response = await request(`${server.url}${encodeURI(path)}`, {
    headers: { authorization, ...headers },
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text, json: () => JSON.parse(text) };
}

/** Runs SQL in a separate OS process on the same database file, as another vppd replica would. */
/**
 * Another vppd process writing: the change and its event (what every write path of vppd appends, in
 * the same transaction; storage/event-store.ts) commit together on the same database file.
 */
function writeFromAnotherProcess(
  statement: string,
  event: { readonly tenantId: string; readonly tokenId: string; readonly type: string },
  ...parameters: string[]
): void {
  const script = `const Database = require('better-sqlite3');
const [file, statement, tenantId, tokenId, type, ...parameters] = process.argv.slice(1);
const db = new Database(file, { timeout: 5000 });
const changes = db.transaction(() => {
  const n = db.prepare(statement).run(...parameters).changes;
  db.prepare("insert into events (tenant_id, token_id, type, payload, created_at) values (?, ?, ?, '{}', ?)")
    .run(tenantId, tokenId, type, new Date().toISOString());
  return n;
})();
db.close();
if (changes !== 1) { console.error('changed ' + changes + ' rows'); process.exit(1); }`;
  execFileSync(
    process.execPath,
    ['-e', script, file, statement, event.tenantId, event.tokenId, event.type, ...parameters],
    { cwd: process.cwd() },
  );
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vppd-read-cache-'));
  file = join(dir, 'vppd.db');
  server = await startServer(testConfig({ port: '0', host: '127.0.0.1', database: `sqlite:${file}` }));
  const now = new Date();
  auth = {
    a: `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite], now })}`,
    b: `Bearer ${await mintToken({ tenantId: tenantB, roles: [roles.readWrite], now })}`,
  };
  const failedEvery = (i: number) => (i % 2 === 0 ? { lastSyncStatus: 'failed' as const } : undefined);
  tokensA = await seedTokens(server.context.tokens, { tenantId: tenantA, count: 6, changes: failedEvery });
  tokensB = await seedTokens(server.context.tokens, { tenantId: tenantB, count: 4, changes: failedEvery });
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const displayNames = (body: { value: { displayName: string }[] }) => body.value.map((t) => t.displayName);

describe('vppTokens reads from kept bytes', () => {
  it('answers a repeated list and get with the same bytes and headers', async () => {
    const target = tokensA[2] as VppToken;
    for (const path of [failedList, `${base}/${target.id}`, `${base}/${target.id}?$select=displayName`]) {
      const first = await get(path, auth.a);
      const second = await get(path, auth.a);
      expect(first.status, first.text).toBe(200);
      expect(second.text).toBe(first.text);
      expect(second.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(first.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(second.headers['request-id']).not.toBe(first.headers['request-id']);
    }
    const list = (await get(failedList, auth.a)).json();
    expect(list['@odata.context']).toBe(`${server.url}/beta/$metadata#deviceAppManagement/vppTokens`);
    expect(list['@odata.nextLink']).toContain('$skiptoken=');
    expect(list.value.map((t: { id: string }) => t.id)).toEqual([tokensA[0]?.id, tokensA[2]?.id]);
  });

  it('shows a PATCH made through the API on the next read', async () => {
    const target = tokensA[0] as VppToken;
    await get(`${base}/${target.id}`, auth.a);
    await get(failedList, auth.a);
    const patch = await request(`${server.url}${base}/${target.id}`, {
      method: 'PATCH',
      headers: { authorization: auth.a, 'content-type': 'application/json' },
      body: JSON.stringify({ displayName: 'renamed through the API' }),
    });
    await patch.body.dump();
    expect(patch.statusCode).toBe(204);
    expect((await get(`${base}/${target.id}`, auth.a)).json().displayName).toBe('renamed through the API');
    expect(displayNames((await get(failedList, auth.a)).json())[0]).toBe('renamed through the API');
  });

  it('shows a write made in this process outside the routes (the sync engine’s path) on the next read', async () => {
    const target = tokensA[2] as VppToken;
    await get(`${base}/${target.id}`, auth.a);
    await get(failedList, auth.a);
    await server.context.tokens.update(tenantA, target.id, { lastSyncStatus: 'completed' });
    const at = new Date('2026-03-01T06:00:00.000Z');
    await server.context.tokens.replaceActionResults(tenantA, target.id, [
      { actionName: syncLicensesAction, actionState: 'done', startDateTime: at, lastUpdatedDateTime: at },
    ]);
    const entity = (await get(`${base}/${target.id}`, auth.a)).json();
    expect(entity.lastSyncStatus).toBe('completed');
    expect(entity.tokenActionResults).toHaveLength(1);
    expect(entity.tokenActionResults[0].actionState).toBe('done');
    const ids = (await get(failedList, auth.a)).json().value.map((t: { id: string }) => t.id);
    expect(ids).not.toContain(target.id);
    expect(ids).toEqual([tokensA[0]?.id, tokensA[4]?.id]);
  });

  it('shows a commit by another process on the same database file on the next read', async () => {
    const target = tokensA[4] as VppToken;
    const before = (await get(`${base}/${target.id}`, auth.a)).json();
    expect(before.displayName).not.toBe('renamed by another process');
    await get(failedList, auth.a);
    writeFromAnotherProcess(
      'update vpp_tokens set display_name = ? where tenant_id = ? and id = ?',
      { tenantId: tenantA, tokenId: target.id, type: 'tokenUpdated' },
      'renamed by another process',
      tenantA,
      target.id,
    );
    expect((await get(`${base}/${target.id}`, auth.a)).json().displayName).toBe('renamed by another process');
    expect(displayNames((await get(failedList, auth.a)).json())).toContain('renamed by another process');

    writeFromAnotherProcess(
      'delete from vpp_tokens where tenant_id = ? and id = ?',
      { tenantId: tenantA, tokenId: target.id, type: 'tokenDeleted' },
      tenantA,
      target.id,
    );
    const gone = await get(`${base}/${target.id}`, auth.a);
    expect(gone.status).toBe(404);
    expect(gone.json().error.code).toBe('ResourceNotFound');
    const ids = (await get(failedList, auth.a)).json().value.map((t: { id: string }) => t.id);
    expect(ids).not.toContain(target.id);
  });

  it('never answers one tenant with bytes kept for another', async () => {
    const a = (await get(failedList, auth.a)).json();
    const b = (await get(failedList, auth.b)).json();
    const idsOf = (tokens: VppToken[]) => new Set(tokens.map((t) => t.id));
    expect(b.value.length).toBeGreaterThan(0);
    for (const item of b.value) expect(idsOf(tokensB).has(item.id)).toBe(true);
    for (const item of a.value) expect(idsOf(tokensA).has(item.id)).toBe(true);
    // A's id through B's bearer is a 404 even right after A read it.
    const aId = tokensA[1]?.id as string;
    expect((await get(`${base}/${aId}`, auth.a)).status).toBe(200);
    expect((await get(`${base}/${aId}`, auth.b)).status).toBe(404);
  });

  it('still authenticates every request for a URL whose bytes are kept', async () => {
    const path = `${base}/${tokensA[1]?.id}`;
    expect((await get(path, auth.a)).status).toBe(200);
    const anonymous = await request(`${server.url}${path}`);
    await anonymous.body.dump();
    expect(anonymous.statusCode).toBe(401);
    const expired = `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite], expiresIn: -3600 })}`;
    expect((await get(path, expired)).status).toBe(401);
    const noPermission = `Bearer ${await mintToken({ tenantId: tenantA, roles: ['User.Read.All'] })}`;
    expect((await get(path, noPermission)).status).toBe(403);
  });

  it('builds links from each request’s own host', async () => {
    const path = `${base}?$top=1`;
    const direct = (await get(path, auth.a)).json();
    const proxied = (await get(path, auth.a, { host: 'vppd.example.test:8443' })).json();
    expect(direct['@odata.nextLink'].startsWith(server.url)).toBe(true);
    expect(proxied['@odata.context']).toBe(
      'http://vppd.example.test:8443/beta/$metadata#deviceAppManagement/vppTokens',
    );
    expect(proxied['@odata.nextLink'].startsWith('http://vppd.example.test:8443/beta/')).toBe(true);
    expect(proxied.value).toEqual(direct.value);
  });
});
