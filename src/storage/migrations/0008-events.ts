import type { Kysely, Migration } from 'kysely';
import type { EngineDdl } from '../engine.js';

// Column types come from the engine's DDL (storage/engine.ts, EngineDdl): the same migration runs on
// SQLite and PostgreSQL.
/**
 * Issue 14, part 3: every change a reader cares about appends a row to `events`, in the transaction of
 * the change (storage/event-store.ts).
 * - `events.seq`: assigned by the database, rising. A tenant's newest `seq` is its change stamp (the
 *   read cache and the dashboard feed key on it); the alert scanner reads events after its cursor.
 * - `event_heads`: one row per tenant, upserted before each append. Its row lock makes a tenant's
 *   appends take their `seq` one after the other, so a tenant's events commit in `seq` order on every
 *   engine (PostgreSQL hands out identity values before commit, in any order otherwise).
 * - `event_cursors`: how far each reader of the whole log (the alert scanner) has processed it.
 */
export const events = (ddl: EngineDdl): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('events')
      .addColumn('seq', ddl.serialKey.type, ddl.serialKey.build)
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('token_id', ddl.text)
      .addColumn('type', ddl.text, (c) => c.notNull())
      /** A small JSON object (ids, states); never a secret. */
      .addColumn('payload', ddl.text, (c) => c.notNull())
      .addColumn('created_at', ddl.timestamp, (c) => c.notNull())
      .execute();
    // The per-tenant stamp is `max(seq) where tenant_id = ?`: one seek at the end of the tenant's range.
    await db.schema.createIndex('events_tenant_seq_idx').on('events').columns(['tenant_id', 'seq']).execute();
    await db.schema
      .createTable('event_heads')
      .addColumn('tenant_id', ddl.text, (c) => c.primaryKey())
      .addColumn('appended_at', ddl.timestamp, (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('event_cursors')
      .addColumn('name', ddl.text, (c) => c.primaryKey())
      /** Every event up to and including this seq is processed. */
      .addColumn('seq', ddl.bigint, (c) => c.notNull())
      .addColumn('updated_at', ddl.timestamp, (c) => c.notNull())
      .execute();
  },
});
