import { CompiledQuery, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerNotNeededComment } from '../src/storage/answer-not-needed.js';
import type { StorageEngine } from '../src/storage/engine.js';
import { appendEvent } from '../src/storage/event-store.js';
import { createStorageEngine, migrateToLatest, parseDatabaseUrl } from '../src/storage/open-database.js';
import {
  type AtCommit,
  atCommitMarker,
  enableAtCommit,
  inlineParameters,
  literal,
} from '../src/storage/postgres/at-commit.js';
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
let url: string;

beforeAll(async () => {
  url = await createPostgresDatabase();
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

// A transaction's BEGIN waits for its first statement and goes in the same Query, that statement's
// parameters written into it as literals. Asserted on a real server through a client wrapped as the
// pool wraps its clients: the round trips the driver makes, the values as they come back, the
// transaction's isolation level and its failure.
describe('a transaction whose BEGIN travels with its first statement, on postgres', () => {
  async function wrappedClient(): Promise<{ client: pg.PoolClient; sent: string[]; end(): Promise<void> }> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const sent: string[] = [];
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: unknown }).query = (...args: unknown[]) => {
      sent.push(typeof args[0] === 'string' ? args[0] : '(not text)');
      return query(...args);
    };
    enableAtCommit(client as unknown as pg.PoolClient);
    return { client: client as unknown as pg.PoolClient, sent, end: () => client.end() };
  }

  it('sends BEGIN with the first statement, and nothing for a transaction that sent nothing', async () => {
    const { client, sent, end } = await wrappedClient();
    try {
      await client.query('begin', []);
      const inserted = await client.query(
        'insert into event_heads (tenant_id, appended_at) values ($1, $2) returning tenant_id',
        ['begin-with-first', '2026-12-04T00:00:00Z'],
      );
      expect(inserted.rowCount).toBe(1);
      expect(inserted.rows).toEqual([{ tenant_id: 'begin-with-first' }]);
      const seen = await client.query('select count(*)::int as n from event_heads where tenant_id = $1', [
        'begin-with-first',
      ]);
      expect(seen.rows[0].n).toBe(1);
      await client.query('commit', []);
      expect(sent).toHaveLength(3);
      expect(sent[0]).toMatch(
        /^begin;\ninsert into event_heads .* values \(E'begin-with-first', E'2026-12-04T00:00:00Z'\)/s,
      );
      const other = await b.db
        .selectFrom('event_heads')
        .select('tenant_id')
        .where('tenant_id', '=', 'begin-with-first')
        .execute();
      expect(other).toHaveLength(1);
      // A transaction that ends before any statement never reaches the server.
      await client.query('begin', []);
      await client.query('commit', []);
      await client.query('begin', []);
      await client.query('rollback', []);
      expect(sent).toHaveLength(3);
    } finally {
      await end();
    }
  });

  it('gives back every kind of value as the same query with parameters does', async () => {
    const { client, end } = await wrappedClient();
    try {
      const text = `select $1::text as t, $2::int8 as i, $3::float8 as f, $4::bytea as b, $5::text[] as a,
        $6::text as n, $7::bool as bo, $8::jsonb as j, $9 as untyped, '$1 stays' as q -- $2 too
        /* and $3 */ , $x$ $4 $x$ as d`;
      const values = [
        "O'Brien's \\ token $2 'quoted' \n",
        '9007199254740993',
        1.5,
        Buffer.from([0, 1, 2, 0xfe, 0xff, 0x27, 0x5c]),
        ['a', "b'c", 'd\\e', 'f"g', null, 'Ünïcödé ✓'],
        null,
        true,
        { nested: { quote: "it's", list: [1, 2] } },
        'plain',
      ];
      const direct = await client.query(text, values);
      await client.query('begin', []);
      const first = await client.query(text, values);
      await client.query('commit', []);
      expect(first.rows).toEqual(direct.rows);
      expect(direct.rows[0].b).toEqual(values[3]);
      expect(direct.rows[0].q).toBe('$1 stays');
      expect(direct.rows[0].d).toBe(' $4 ');
    } finally {
      await end();
    }
  });

  it('keeps the isolation level, and a failing first statement leaves the transaction to roll back', async () => {
    const { client, end } = await wrappedClient();
    try {
      await client.query('start transaction isolation level repeatable read', []);
      const level = await client.query('select current_setting($1) as level', ['transaction_isolation']);
      expect(level.rows[0].level).toBe('repeatable read');
      await client.query('commit', []);
      await client.query('begin', []);
      await expect(client.query('select 1 / $1::int as x', [0])).rejects.toThrow(/division by zero/);
      await client.query('rollback', []);
      const after = await client.query('select current_setting($1) as level', ['transaction_isolation']);
      expect(after.rows[0].level).toBe('read committed');
    } finally {
      await end();
    }
  });

  it('holds a write whose answer is not needed for the next statement, which sees it', async () => {
    const { client, sent, end } = await wrappedClient();
    const insert = `insert into event_heads (tenant_id, appended_at) values ($1, $2) ${answerNotNeededComment}`;
    try {
      await client.query('begin', []);
      await client.query(insert, ['not-needed', '2026-12-04T00:00:00Z']);
      expect(sent).toHaveLength(0);
      const seen = await client.query('select count(*)::int as n from event_heads where tenant_id = $1', [
        'not-needed',
      ]);
      expect(seen.rows[0].n).toBe(1);
      expect(sent).toHaveLength(1);
      await client.query(insert, ['not-needed-2', '2026-12-04T00:00:00Z']);
      await client.query('commit', []);
      expect(sent).toHaveLength(2);
      expect(sent[1]).toMatch(/not-needed-2.*;\ncommit$/s);
      const rows = await b.db
        .selectFrom('event_heads')
        .select('tenant_id')
        .where('tenant_id', 'in', ['not-needed', 'not-needed-2'])
        .execute();
      expect(rows).toHaveLength(2);
      // One that fails fails the statement it travels with; the transaction then keeps nothing.
      await client.query('begin', []);
      await client.query(insert, ['not-needed-3', '2026-12-04T00:00:00Z']);
      await client.query(insert, ['not-needed', '2026-12-04T00:00:00Z']);
      await expect(client.query('select 1 as one', [])).rejects.toThrow(/duplicate key/);
      await client.query('rollback', []);
      const after = await b.db
        .selectFrom('event_heads')
        .select('tenant_id')
        .where('tenant_id', '=', 'not-needed-3')
        .execute();
      expect(after).toHaveLength(0);
    } finally {
      await end();
    }
  });

  it('leaves parameters in quotes, comments and dollar quotes alone, and declines bulk values', () => {
    expect(inlineParameters(`select '$1', "$1", $1 -- $1\n, /* $1 */ $q$ $1 $q$, $2`, ['x', 2])).toBe(
      `select '$1', "$1", E'x' -- $1\n, /* $1 */ $q$ $1 $q$, E'2'`,
    );
    expect(inlineParameters('select $1', [])).toBe('select $1');
    expect(inlineParameters('select $2', ['only one'])).toBeUndefined();
    // A marker's payload (copy-from.ts) is not a parameter of its text.
    expect(
      inlineParameters('/* vppd copy from stdin */', [{ statement: 'copy t from stdin' }]),
    ).toBeUndefined();
    expect(
      inlineParameters(
        'select 1',
        Array.from({ length: 65 }, () => 'v'),
      ),
    ).toBeUndefined();
    expect(inlineParameters('select $1', ['x'.repeat(20_000)])).toBeUndefined();
  });
});
