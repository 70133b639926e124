import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Kysely, sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { copyDatabase } from '../src/storage/database-copy.js';
import type { StorageEngine } from '../src/storage/engine.js';
import { openTestStorage } from './helpers/storage-engines.js';

// `copyDatabase` discovers tables from the catalogue: tables a later migration adds are copied with no
// change to it. Here both databases get two tables no migration has (as a future migration would add
// them to both): one with a serial key, a foreign key, bytes and nulls; one without any key, with
// repeated rows. Both arrive intact, and the target's serial key continues after the copied ones.

const dir = mkdtempSync(join(tmpdir(), 'vppd-copy-generic-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function addFutureTables(storage: StorageEngine): Promise<void> {
  const { ddl } = storage;
  const db = storage.db as unknown as Kysely<unknown>;
  await db.schema
    .createTable('future_events')
    .addColumn('seq', ddl.serialKey.type, ddl.serialKey.build)
    .addColumn('tenant_id', ddl.text, (c) => c.notNull().references('tenants.id').onDelete('cascade'))
    .addColumn('payload', ddl.blob)
    .addColumn('note', ddl.text)
    .execute();
  await db.schema
    .createTable('future_marks')
    .addColumn('label', ddl.text)
    .addColumn('weight', 'integer')
    .execute();
}

type FutureDb = Kysely<{
  tenants: { id: string; created_at: string };
  future_events: { seq?: number; tenant_id: string; payload: Buffer | null; note: string | null };
  future_marks: { label: string | null; weight: number | null };
}>;

describe('copyDatabase', () => {
  it('copies tables it was never told about: bytes, nulls, keyless rows, serial keys continued', async () => {
    const source = await openTestStorage('sqlite', { sqliteUrl: `sqlite:${join(dir, 'source.db')}` });
    const target = await openTestStorage('postgres');
    try {
      await addFutureTables(source);
      await addFutureTables(target);
      const from = source.db as unknown as FutureDb;
      await from.insertInto('tenants').values({ id: 't1', created_at: '2026-01-01T00:00:00.000Z' }).execute();
      const payloads = [
        Buffer.from([0, 1, 2, 255]),
        null,
        Buffer.alloc(0),
        Buffer.from('tab\there\\', 'utf8'),
        null,
      ];
      for (const [i, payload] of payloads.entries()) {
        await from
          .insertInto('future_events')
          .values({ tenant_id: 't1', payload, note: i % 2 === 0 ? `note ${i}\n` : null })
          .execute();
      }
      await from.deleteFrom('future_events').where('seq', '=', 5).execute();
      await from
        .insertInto('future_marks')
        .values([
          { label: 'b', weight: 2 },
          { label: null, weight: 1 },
          { label: 'a', weight: null },
          { label: 'b', weight: 2 },
          { label: null, weight: null },
        ])
        .execute();

      const result = await copyDatabase(source, target, { batchRows: 2 });
      const byName = new Map(result.tables.map((t) => [t.table, t]));
      expect(byName.get('future_events')).toMatchObject({ rows: 4, serialKeys: ['seq'] });
      expect(byName.get('future_marks')).toMatchObject({ rows: 5, serialKeys: [] });
      const order = result.tables.map((t) => t.table);
      expect(order.indexOf('tenants')).toBeLessThan(order.indexOf('future_events'));

      const to = target.db as unknown as FutureDb;
      const events = (db: FutureDb) => db.selectFrom('future_events').selectAll().orderBy('seq').execute();
      const copied = await events(to);
      expect(copied).toEqual(await events(from));
      expect(copied.map((e) => e.payload)).toEqual(payloads.slice(0, 4));
      const marks = (db: FutureDb) =>
        db
          .selectFrom('future_marks')
          .selectAll()
          .orderBy(sql`label nulls first`)
          .orderBy(sql`weight nulls first`)
          .execute();
      expect(await marks(to)).toEqual(await marks(from));
      // A new row on the target gets a key after every copied one.
      const added = await to
        .insertInto('future_events')
        .values({ tenant_id: 't1', payload: null, note: 'new' })
        .returning('seq')
        .executeTakeFirstOrThrow();
      expect(Number(added.seq)).toBeGreaterThan(4);
    } finally {
      await source.close();
      await target.close();
    }
  });
});
