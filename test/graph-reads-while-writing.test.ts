import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sql } from 'kysely';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VppToken } from '../src/domain/vpp-token.js';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import { createStorageEngine } from '../src/storage/open-database.js';
import { tenantA, testConfig } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { seedTokens } from './helpers/seed-tokens.js';

// On a SQLite file the request thread's writes run on one connection, one transaction at a time,
// and a transaction that waits for another connection's write lock (the sync thread committing a
// snapshot, another process) held every query queued behind it. Graph's reads and the tenant change
// stamp go through a read connection of their own (StorageEngine.reads): they answer from the latest
// commit while such a write waits, and show the write as soon as it committed.

const base = '/beta/deviceAppManagement/vppTokens';

let dir: string;
let file: string;
let server: RunningServer;
let authorization: string;
let tokens: VppToken[];

async function get(path: string) {
  const response = await request(`${server.url}${encodeURI(path)}`, { headers: { authorization } });
  const text = await response.body.text();
  return { status: response.statusCode, json: () => JSON.parse(text) as Record<string, unknown> };
}

/** Tracks whether a promise settled, without changing how it settles. */
function watch<T>(promise: Promise<T>) {
  const state = { settled: false };
  promise.then(
    () => (state.settled = true),
    () => (state.settled = true),
  );
  return state;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vppd-reads-while-writing-'));
  file = join(dir, 'vppd.db');
  server = await startServer(testConfig({ port: '0', host: '127.0.0.1', database: `sqlite:${file}` }));
  authorization = `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite], now: new Date() })}`;
  tokens = await seedTokens(server.context.tokens, { tenantId: tenantA, count: 3 });
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('Graph reads while a write of the same process waits for the write lock', () => {
  it('answers get and list from the latest commit at once, and shows the write right after it commits', async () => {
    const token = tokens[0] as VppToken;
    // Fill the read cache, so the stamp must move for the rename to show.
    expect((await get(`${base}/${token.id}`)).json().displayName).toBe(token.displayName);
    // Another connection to the file holds the write lock, as the sync thread does while it commits.
    const other = new Database(file, { timeout: 0 });
    other.exec('begin immediate');
    let rename: Promise<unknown> | undefined;
    try {
      // The rename a PATCH makes: its transaction waits (on timers) for the lock.
      rename = server.context.tokens.update(tenantA, token.id, { displayName: 'Renamed while locked' });
      const renaming = watch(rename);
      // Queued behind it on the writing connection: this read cannot run before the rename ends.
      const writerRead = watch(server.context.storage.db.selectFrom('vpp_tokens').select('id').execute());

      const one = await get(`${base}/${token.id}`);
      const list = await get(`${base}?$top=2&$orderby=displayName`);
      expect(one.status).toBe(200);
      expect(one.json().displayName).toBe(token.displayName);
      expect(list.status).toBe(200);
      expect((list.json().value as unknown[]).length).toBe(2);
      // The reads answered while the write still waited.
      expect(renaming.settled).toBe(false);
      expect(writerRead.settled).toBe(false);
      // The tenant stamp is read on the read connection too: synchronously, never queued.
      expect(typeof server.context.storage.readTenantStamp(tenantA)).toBe('number');
    } finally {
      other.exec('commit');
      other.close();
    }
    await rename;
    const after = await get(`${base}/${token.id}`);
    expect(after.json().displayName).toBe('Renamed while locked');
    const list = await get(`${base}?$filter=displayName eq 'Renamed while locked'`);
    expect((list.json().value as { id: string }[]).map((t) => t.id)).toEqual([token.id]);
  });

  it('does not count the events of a transaction in flight in the tenant stamp until it commits', async () => {
    const { storage } = server.context;
    const token = tokens[1] as VppToken;
    const before = storage.readTenantStamp(tenantA);
    let inside: number | Promise<number> | undefined;
    await storage.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('vpp_tokens')
        .set({ display_name: 'In flight' })
        .where('id', '=', token.id)
        .execute();
      await trx
        .insertInto('events')
        .values({
          tenant_id: tenantA,
          token_id: token.id,
          type: 'tokenUpdated',
          payload: '{}',
          created_at: '2026-03-01T00:00:00.000Z',
        })
        .execute();
      // The read connection sees the last commit: neither the row nor its event yet.
      inside = storage.readTenantStamp(tenantA);
      const seen = await storage.reads
        .selectFrom('vpp_tokens')
        .select('display_name')
        .where('id', '=', token.id)
        .executeTakeFirstOrThrow();
      expect(seen.display_name).toBe(token.displayName);
    });
    expect(inside).toBe(before);
    expect(storage.readTenantStamp(tenantA)).toBeGreaterThan(before as number);
    expect((await get(`${base}/${token.id}`)).json().displayName).toBe('In flight');
  });

  it('refuses a write on the read connection and changes nothing', async () => {
    const { storage } = server.context;
    const count = async () =>
      Number((await sql<{ n: number }>`select count(*) as n from tenants`.execute(storage.db)).rows[0]?.n);
    const held = await count();
    await expect(
      sql`insert into tenants (id, created_at) values ('x', '2026-03-01T00:00:00.000Z')`.execute(
        storage.reads,
      ),
    ).rejects.toThrow(/readonly/);
    expect(await count()).toBe(held);
  });

  it('is the same connection as db on an in-memory database', async () => {
    const memory = createStorageEngine({ kind: 'sqlite-memory', url: 'sqlite::memory:' });
    try {
      expect(memory.reads).toBe(memory.db);
    } finally {
      await memory.close();
    }
  });
});
