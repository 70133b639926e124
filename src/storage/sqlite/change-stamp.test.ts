import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResponseCache } from '../../graph/response-cache.js';
import { createChangeStamp } from '../change-stamp.js';
import type { StorageEngine } from '../engine.js';
import { migrateToLatest, type VppdDatabase } from '../open-database.js';
import { createSqliteEngine, type SqliteEngine } from './engine.js';

let dir: string;
let file: string;
let storage: SqliteEngine;
let db: VppdDatabase;
let other: VppdDatabase;
let otherStorage: SqliteEngine;

const tenantId = 'cafe0000-0000-4000-8000-000000000001';
const addTenant = (on: VppdDatabase, id: string) =>
  on.insertInto('tenants').values({ id, created_at: '2026-03-01T00:00:00.000Z' }).execute();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vppd-change-stamp-'));
  file = join(dir, 'vppd.db');
  storage = createSqliteEngine({ kind: 'sqlite', url: `sqlite:${file}`, filename: file });
  await migrateToLatest(storage);
  db = storage.db;
  // A second connection on the same file: what another vppd process is to this one.
  otherStorage = createSqliteEngine({ kind: 'sqlite', url: `sqlite:${file}`, filename: file });
  other = otherStorage.db;
  await addTenant(db, tenantId);
});

afterAll(async () => {
  await otherStorage?.close();
  await storage?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('createChangeStamp on SQLite', () => {
  it('stays the same while nothing is written, reads included', async () => {
    const stamp = createChangeStamp(storage);
    const first = await stamp();
    expect(first).toMatch(/^\d+:\d+$/);
    await db.selectFrom('tenants').selectAll().execute();
    await other.selectFrom('tenants').selectAll().execute();
    expect(await stamp()).toBe(first);
  });

  it('changes after a write on its own connection, committed or rolled back', async () => {
    const stamp = createChangeStamp(storage);
    const before = await stamp();
    await addTenant(db, 'cafe0000-0000-4000-8000-000000000002');
    const afterInsert = await stamp();
    expect(afterInsert).not.toBe(before);
    await db
      .transaction()
      .execute(async (trx) => {
        await addTenant(trx, 'cafe0000-0000-4000-8000-000000000003');
        throw new Error('roll back');
      })
      .catch(() => undefined);
    // A rolled-back write may change the stamp too: that only costs a re-read, never a stale answer.
    const afterRollback = await stamp();
    const stored = await db.selectFrom('tenants').select('id').execute();
    expect(stored.map((t) => t.id)).not.toContain('cafe0000-0000-4000-8000-000000000003');
    expect([afterInsert, afterRollback]).not.toContain(before);
  });

  it('changes after another connection commits, and a call after the commit always sees it', async () => {
    const stamp = createChangeStamp(storage);
    const before = await stamp();
    const pending = stamp();
    await addTenant(other, 'cafe0000-0000-4000-8000-000000000004');
    const after = stamp();
    expect(await after).not.toBe(before);
    // The call made before the commit shares the same read, which followed the commit.
    expect(await pending).toBe(await after);
  });

  it('changes after another process commits to the file', async () => {
    const stamp = createChangeStamp(storage);
    const before = await stamp();
    const script = `const D = require('better-sqlite3'); const d = new D(process.argv[1]);
d.prepare("insert into tenants (id, created_at) values ('cafe0000-0000-4000-8000-000000000005', 'x')").run();
d.close();`;
    execFileSync(process.execPath, ['-e', script, file], { cwd: process.cwd() });
    expect(await stamp()).not.toBe(before);
    const stored = await db.selectFrom('tenants').select('id').execute();
    expect(stored.map((t) => t.id)).toContain('cafe0000-0000-4000-8000-000000000005');
  });

  it('gives calls of one event-loop turn one shared read', async () => {
    const stamp = createChangeStamp(storage);
    const calls = [stamp(), stamp(), stamp()];
    expect(calls[1]).toBe(calls[0]);
    expect(calls[2]).toBe(calls[0]);
    const values = await Promise.all(calls);
    expect(new Set(values).size).toBe(1);
    // The next turn reads again.
    expect(stamp()).not.toBe(calls[0]);
  });

  it('waits for this process’s open transaction and sees what it committed', async () => {
    const stamp = createChangeStamp(storage);
    const before = await stamp();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const writing = db.transaction().execute(async (trx) => {
      await addTenant(trx, 'cafe0000-0000-4000-8000-000000000006');
      await gate;
    });
    await new Promise((resolve) => setImmediate(resolve));
    const during = stamp();
    release();
    await writing;
    expect(await during).not.toBe(before);
    await expect(sql`select 1`.execute(db)).resolves.toBeDefined();
  });
});

/** A promise and the function that resolves it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

const tenantIds = async (on: VppdDatabase) =>
  (await on.selectFrom('tenants').select('id').orderBy('id').execute()).map((t) => t.id).join(',');

/**
 * What the vppTokens routes do with the stamp: read it, answer the bytes kept under it, else read the
 * data (through Kysely, after the stamp) and keep it under that stamp.
 */
function cachedReader(stamp: () => Promise<string | undefined>) {
  const cache = createResponseCache<string>();
  return async () => {
    const at = await stamp();
    if (at === undefined) throw new Error('no stamp on SQLite');
    const kept = cache.get('tenants', at);
    if (kept !== undefined) return kept;
    const fresh = await tenantIds(db);
    cache.set('tenants', at, fresh, fresh.length);
    return fresh;
  };
}

describe('createChangeStamp while this process is inside a transaction or a stream', () => {
  it('reads synchronously on the connection Kysely uses', () => {
    const { connection } = storage;
    expect(connection).toBeDefined();
    expect(connection?.inTransaction).toBe(false);
  });

  it('is not fooled by the snapshot an open transaction holds while another process commits', async () => {
    const { connection } = storage;
    const raw = () => connection?.pragma('data_version', { simple: true });
    const stamp = createChangeStamp(storage);
    const before = await stamp();
    const entered = gate();
    const release = gate();
    // A deferred read transaction, begun by hand: vppd's own transactions begin IMMEDIATE (they all
    // write), so another process's commit would wait for them instead of landing mid-transaction.
    const reading = db.connection().execute(async (conn) => {
      await sql`begin`.execute(conn);
      await conn.selectFrom('tenants').select('id').execute();
      entered.open();
      await release.promise;
      await sql`commit`.execute(conn);
    });
    await entered.promise;
    const versionInSnapshot = raw();
    await addTenant(other, 'cafe0000-0000-4000-8000-000000000007');
    // What a bare read on the connection would see: the snapshot's data_version, as if nothing happened.
    expect(raw()).toBe(versionInSnapshot);
    const during = stamp();
    // The turn in which the stamp is read passes with the transaction still open.
    await new Promise((resolve) => setImmediate(resolve));
    release.open();
    await reading;
    expect(await during).not.toBe(before);
    expect(await tenantIds(db)).toContain('cafe0000-0000-4000-8000-000000000007');
  });

  it('is not fooled by the snapshot an open stream holds while another process commits', async () => {
    const stamp = createChangeStamp(storage);
    const before = await stamp();
    const rows = db.selectFrom('tenants').select('id').stream()[Symbol.asyncIterator]();
    await rows.next();
    await addTenant(other, 'cafe0000-0000-4000-8000-000000000008');
    const during = stamp();
    // The stream still holds the connection: the stamp waits for it.
    await new Promise((resolve) => setImmediate(resolve));
    await rows.return?.();
    expect(await during).not.toBe(before);
  });

  it('never vouches for bytes older than a write of this process, committed or rolled back mid-read', async () => {
    const read = cachedReader(createChangeStamp(storage));
    expect(await read()).toBe(await tenantIds(db));
    for (const outcome of ['commit', 'rollback'] as const) {
      const id =
        outcome === 'commit'
          ? 'cafe0000-0000-4000-8000-000000000009'
          : 'cafe0000-0000-4000-8000-00000000000a';
      const wrote = gate();
      const finish = gate();
      const writing = db
        .transaction()
        .execute(async (trx) => {
          await addTenant(trx, id);
          wrote.open();
          await finish.promise;
          if (outcome === 'rollback') throw new Error('roll back');
        })
        .catch(() => undefined);
      await wrote.promise;
      // Asked while the write is uncommitted: answered once it ended, with what it left.
      const during = read();
      await new Promise((resolve) => setImmediate(resolve));
      finish.open();
      await writing;
      const now = await tenantIds(db);
      expect(now.includes(id)).toBe(outcome === 'commit');
      expect(await during).toBe(now);
      expect(await read()).toBe(now);
    }
  });

  it('answers what a fresh read answers, whatever this process and another one do in between', async () => {
    const read = cachedReader(createChangeStamp(storage));
    let n = 0;
    const nextId = () => `cafe0001-0000-4000-8000-${String(++n).padStart(12, '0')}`;
    const step = fc.constantFrom('read', 'own-commit', 'own-rollback', 'other-commit', 'read-mid-write');
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        for (const s of steps) {
          if (s === 'own-commit') await addTenant(db, nextId());
          if (s === 'other-commit') await addTenant(other, nextId());
          if (s === 'own-rollback') {
            await db
              .transaction()
              .execute(async (trx) => {
                await addTenant(trx, nextId());
                throw new Error('roll back');
              })
              .catch(() => undefined);
          }
          if (s === 'read-mid-write') {
            const wrote = gate();
            const finish = gate();
            const writing = db.transaction().execute(async (trx) => {
              await addTenant(trx, nextId());
              wrote.open();
              await finish.promise;
            });
            await wrote.promise;
            const during = read();
            await new Promise((resolve) => setImmediate(resolve));
            finish.open();
            await writing;
            expect(await during).toBe(await tenantIds(db));
          }
          expect(await read()).toBe(await tenantIds(db));
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe('createChangeStamp on an engine without a stamp', () => {
  it('answers undefined, so callers keep nothing', async () => {
    const cold = { readChangeStamp: () => undefined } as unknown as StorageEngine;
    expect(await createChangeStamp(cold)()).toBeUndefined();
  });
});
