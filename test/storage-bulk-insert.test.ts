import { sql } from 'kysely';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { StorageEngine } from '../src/storage/engine.js';
import { type CopyPayload, copyMarker, enableCopyFrom } from '../src/storage/postgres/copy-from.js';
import { createPostgresDatabase, openTestStorage, storageEngines } from './helpers/storage-engines.js';

// The engines' bulk insert with text that COPY's text format must escape (PostgreSQL stages licenses
// with `copy … from stdin`, storage/postgres/bulk-insert.ts): every value reads back as written.

const awkward = [
  'tab\there',
  'line\nbreak',
  'carriage\rreturn',
  'back\\slash',
  '\\N',
  '\\.',
  '',
  ' leading and trailing ',
  'ünïcödé ✓ 𝄞',
  '{"json":"with \\"quotes\\" and \\\\ escapes"}',
];

describe.each(storageEngines)('bulk insert on %s', (engine) => {
  let storage: StorageEngine | undefined;
  afterEach(async () => {
    await storage?.close();
    storage = undefined;
  });

  it('stores text with tabs, newlines, backslashes and nulls exactly, in one call of many rows', async () => {
    storage = await openTestStorage(engine);
    const insert = storage.bulkInsert({
      table: 'license_app_metadata',
      columns: [
        { name: 'adam_id', type: 'text' },
        { name: 'name', type: 'text' },
        { name: 'bundle_id', type: 'text' },
        { name: 'device_families', type: 'text' },
        { name: 'platform', type: 'text' },
        { name: 'country', type: 'text' },
        { name: 'fetched_at', type: 'text' },
      ],
      maxRows: 3,
    });
    const rows = awkward.map((text, i) => [
      String(i).padStart(3, '0'),
      text,
      i % 2 === 0 ? null : text,
      '[]',
      'p',
      'us',
      '2026-01-01T00:00:00.000Z',
    ]);
    await storage.db.transaction().execute((trx) => insert(trx, rows.flat()));
    const read = await storage.db
      .selectFrom('license_app_metadata')
      .select(['adam_id', 'name', 'bundle_id'])
      .orderBy('adam_id')
      .execute();
    expect(read).toEqual(rows.map((r) => ({ adam_id: r[0], name: r[1], bundle_id: r[2] })));
  });

  it('stores 64-bit integers and rolls back with its transaction', async () => {
    storage = await openTestStorage(engine);
    const insert = storage.bulkInsert({
      table: 'sync_tenant_turns',
      columns: [
        { name: 'tenant_id', type: 'text' },
        { name: 'last_turn', type: 'bigint' },
      ],
      maxRows: 100,
    });
    await storage.db.transaction().execute((trx) => insert(trx, ['a', 2 ** 40, 'b', 0, 'c', -7]));
    await expect(
      storage.db.transaction().execute(async (trx) => {
        await insert(trx, ['d', 1]);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    // A duplicate key fails the whole call.
    await expect(storage.db.transaction().execute((trx) => insert(trx, ['e', 1, 'a', 1]))).rejects.toThrow();
    const read = await storage.db.selectFrom('sync_tenant_turns').selectAll().orderBy('tenant_id').execute();
    expect(read.map((r) => [r.tenant_id, Number(r.last_turn)])).toEqual([
      ['a', 2 ** 40],
      ['b', 0],
      ['c', -7],
    ]);
  });

  it('outside a transaction, is a transaction of its own: every row or, on a failure, none', async () => {
    storage = await openTestStorage(engine);
    const insert = storage.bulkInsert({
      table: 'sync_tenant_turns',
      columns: [
        { name: 'tenant_id', type: 'text' },
        { name: 'last_turn', type: 'bigint' },
      ],
      maxRows: 2,
      staging: true,
    });
    const { db } = storage;
    await insert(db, ['a', 1, 'b\t\\2', 2, 'c', 3]);
    // The repeated key comes last, after rows that fill a statement of their own (maxRows 2).
    await expect(insert(db, ['d', 4, 'e', 5, 'a', 6])).rejects.toThrow();
    // The connection is usable after the failure, and a failed call left nothing behind.
    await insert(db, ['f', 7]);
    const read = await db.selectFrom('sync_tenant_turns').selectAll().orderBy('tenant_id').execute();
    expect(read.map((r) => [r.tenant_id, Number(r.last_turn)])).toEqual([
      ['a', 1],
      ['b\t\\2', 2],
      ['c', 3],
      ['f', 7],
    ]);
  });
});

describe('bulk insert of staging rows on postgres', () => {
  it('commits that transaction without waiting for the WAL flush, and only that one', async () => {
    const storage = await openTestStorage('postgres');
    try {
      const spec = {
        table: 'sync_tenant_turns',
        columns: [
          { name: 'tenant_id', type: 'text' },
          { name: 'last_turn', type: 'bigint' },
        ],
        maxRows: 100,
      } as const;
      const setting = async (staging: boolean, tenant: string) =>
        storage.db.transaction().execute(async (trx) => {
          // The test server runs with synchronous_commit off: start each transaction from on.
          await sql`set local synchronous_commit = on`.execute(trx);
          await storage.bulkInsert({ ...spec, staging })(trx, [tenant, 1]);
          const { rows } = await sql<{ synchronous_commit: string }>`show synchronous_commit`.execute(trx);
          return rows[0]?.synchronous_commit;
        });
      expect(await setting(true, 'staged')).toBe('off');
      expect(await setting(false, 'durable')).toBe('on');
      const { rows } = await sql<{ synchronous_commit: string }>`show synchronous_commit`.execute(storage.db);
      expect(rows[0]?.synchronous_commit).toBe('off');
      expect(
        await storage.db.selectFrom('sync_tenant_turns').select('tenant_id').orderBy('tenant_id').execute(),
      ).toEqual([{ tenant_id: 'durable' }, { tenant_id: 'staged' }]);
    } finally {
      await storage.close();
    }
  });
});

describe('the COPY wrapper of pool clients on postgres', () => {
  it('runs a COPY that fails mid-data as a failed query and goes on with the next one', async () => {
    // The query, the rows and CopyDone go out in one write; the server drops the rows after an error.
    const pool = new pg.Pool({ connectionString: await createPostgresDatabase(), max: 1 });
    pool.on('connect', enableCopyFrom);
    const client = await pool.connect();
    try {
      await client.query('create temporary table t (n int primary key, s text)');
      const copy = (data: string, asynchronousCommit = false) =>
        client.query(copyMarker, [
          { statement: 'copy t (n, s) from stdin', data, rows: 0, asynchronousCommit } satisfies CopyPayload,
        ]);
      expect(await copy('1\tone\n2\ttwo\n', true)).toMatchObject({ rowCount: 2 });
      await expect(copy('3\tthree\nnot a number\tfour\n5\tfive\n')).rejects.toThrow(/integer/);
      await expect(copy('6\tsix\n1\tagain\n')).rejects.toThrow(/duplicate key/);
      await expect(
        client.query(copyMarker, [
          { statement: 'copy missing (n) from stdin', data: '1\n', rows: 1, asynchronousCommit: true },
        ]),
      ).rejects.toThrow(/missing/);
      expect(await copy('7\tseven\n')).toMatchObject({ rowCount: 1 });
      expect((await client.query('select n, s from t order by n')).rows).toEqual([
        { n: 1, s: 'one' },
        { n: 2, s: 'two' },
        { n: 7, s: 'seven' },
      ]);
      // Outside a transaction `set local` ended with the COPY's own.
      expect((await client.query('show synchronous_commit')).rows).toEqual([{ synchronous_commit: 'off' }]);
      await client.query('set synchronous_commit = on');
      await copy('8\teight\n', true);
      expect((await client.query('show synchronous_commit')).rows).toEqual([{ synchronous_commit: 'on' }]);
    } finally {
      client.release();
      await pool.end();
    }
  });

  it('leaves pool.query working: its callback form is passed on', async () => {
    // pg's Pool#query calls the client's query with a callback; a wrapper that dropped it hung forever.
    const pool = new pg.Pool({ connectionString: await createPostgresDatabase(), max: 1 });
    pool.on('connect', enableCopyFrom);
    try {
      const { rows } = await pool.query<{ n: number }>('select $1::int as n', [42]);
      expect(rows).toEqual([{ n: 42 }]);
      const client = await pool.connect();
      try {
        expect((await client.query<{ n: number }>('select 7 as n')).rows).toEqual([{ n: 7 }]);
      } finally {
        client.release();
      }
    } finally {
      await pool.end();
    }
  });
});
