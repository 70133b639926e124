import { CompiledQuery, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageEngine } from '../src/storage/engine.js';
import { appendEvent } from '../src/storage/event-store.js';
import { createStorageEngine, migrateToLatest, parseDatabaseUrl } from '../src/storage/open-database.js';
import { type AtCommit, atCommitMarker, literal } from '../src/storage/postgres/at-commit.js';
import { createPostgresDatabase } from './helpers/storage-engines.js';

// On PostgreSQL a transaction's event append (and its pg_notify) is sent with the COMMIT, in one
// Query (storage/postgres/at-commit.ts), so the tenant's event-head lock is held only while the server
// runs it and commits, never while the transaction waits for its process. Asserted against a real
// server: an open transaction that appended does not hold up another process's append of the same
// tenant, and the seqs still follow the commit order; a statement after the append sends it first;
// a held statement that fails fails the commit and leaves nothing of the transaction; outside a
// transaction it runs at once; literals survive quotes, backslashes and other text unchanged.

const tenantId = 'a7c00000-0000-4000-8000-000000000001';
let a: StorageEngine;
let b: StorageEngine;

beforeAll(async () => {
  const url = await createPostgresDatabase();
  a = createStorageEngine(parseDatabaseUrl(url, { poolSize: 4 }));
  await migrateToLatest(a);
  b = createStorageEngine(parseDatabaseUrl(url, { poolSize: 4 }));
});
afterAll(async () => {
  await a?.close();
  await b?.close();
});

const events = async () =>
  (
    await sql<{
      seq: number;
      type: string;
    }>`select seq, type from events where tenant_id = ${tenantId} order by seq`.execute(a.db)
  ).rows.map((r) => r.type);

describe('statements sent with the commit, on postgres', () => {
  it('holds no event-head lock while a transaction that appended stays open', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let appended!: () => void;
    const held = new Promise<void>((resolve) => {
      appended = resolve;
    });
    const first = a.db.transaction().execute(async (trx) => {
      await appendEvent(trx, a, new Date(), { tenantId, tokenId: null, type: 'tokenCreated' });
      appended();
      await gate;
    });
    await held;
    // Another process appends for the same tenant and commits while the first is open: with the
    // append run as its own statement, this waited for the first transaction's end.
    await b.db.transaction().execute(async (trx) => {
      await appendEvent(trx, b, new Date(), { tenantId, tokenId: null, type: 'tokenUpdated' });
    });
    expect(await events()).toEqual(['tokenUpdated']);
    release();
    await first;
    // seq order is commit order.
    expect(await events()).toEqual(['tokenUpdated', 'tokenCreated']);
  });

  it('sends what it holds before any later statement of the transaction', async () => {
    const seen = await a.db.transaction().execute(async (trx) => {
      await appendEvent(trx, a, new Date(), { tenantId, tokenId: 'later', type: 'tokenRenewed' });
      return (
        await sql<{ n: number }>`select count(*) as n from events where token_id = 'later'`.execute(trx)
      ).rows[0]?.n;
    });
    expect(Number(seen)).toBe(1);
  });

  it('fails the commit when a held statement fails, and keeps nothing of the transaction', async () => {
    const before = await events();
    const failing: AtCommit = { text: 'select 1 / 0', command: 'SELECT', rowCount: 1 };
    await expect(
      a.db.transaction().execute(async (trx) => {
        await appendEvent(trx, a, new Date(), { tenantId, tokenId: null, type: 'tokenDeleted' });
        await trx.executeQuery(CompiledQuery.raw(atCommitMarker, [failing]));
      }),
    ).rejects.toThrow(/division by zero/);
    expect(await events()).toEqual(before);
    // The connection is usable again: its next transaction commits as usual.
    await a.db.transaction().execute(async (trx) => {
      await appendEvent(trx, a, new Date(), { tenantId, tokenId: null, type: 'tokenDeleted' });
    });
    expect(await events()).toEqual([...before, 'tokenDeleted']);
  });

  it('runs a marked statement at once outside a transaction', async () => {
    const statement: AtCommit = {
      text: `insert into event_heads (tenant_id, appended_at) values (${literal('at-once')}, ${literal('2026-12-04T00:00:00Z')})`,
      command: 'INSERT',
      rowCount: 1,
    };
    const result = await a.db.executeQuery(CompiledQuery.raw(atCommitMarker, [statement]));
    expect(Number(result.numAffectedRows)).toBe(1);
    const row = await sql<{
      n: number;
    }>`select count(*) as n from event_heads where tenant_id = 'at-once'`.execute(b.db);
    expect(Number(row.rows[0]?.n)).toBe(1);
  });

  it('writes literals that read back as the same text', async () => {
    const texts = [
      "O'Brien's \\ token",
      'back\\\\slashes\\n and \\x41',
      '{"payload":"with \\"quotes\\" and \'single\'"}',
      'line\nbreak\ttab',
      'Ünïcödé ✓ 日本',
      '',
    ];
    for (const text of texts) {
      const row = await sql<{ t: string }>`select ${sql.raw(literal(text))} as t`.execute(a.db);
      expect(row.rows[0]?.t).toBe(text);
    }
    const array = await sql<{ t: string[] }>`select ${sql.raw(literal(texts))} as t`.execute(a.db);
    expect(array.rows[0]?.t).toEqual(texts);
    expect(literal(null)).toBe('NULL');
    expect(literal(42)).toBe('42');
    expect(() => literal(1.5)).toThrow(/integer/);
  });
});
