import type { Kysely, Migration } from 'kysely';
import type { EngineDdl } from '../engine.js';

// Column types come from the engine's DDL (storage/engine.ts, EngineDdl): the same migration runs on
// SQLite and PostgreSQL.
/**
 * Issue 18 and issue 17 item 4.
 * - `sync_jobs.kind`: `licenses` (a full sync, every row so far) or `licenseCounts` (Graph's
 *   syncLicenseCounts: only `GET /assets`, counts written into the current snapshot). Both go through
 *   the same claim, leases and global concurrency.
 * - `sync_tenant_turns`: when each tenant last had a job claimed (a sequence number, not a time, so
 *   claims in the same millisecond still order). The claim takes the oldest waiting job of the tenant
 *   served longest ago: round-robin by tenant instead of first come first served.
 */
export const syncJobKindsAndTurns = (ddl: EngineDdl): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('sync_jobs')
      .addColumn('kind', ddl.text, (c) => c.notNull().defaultTo('licenses'))
      .execute();
    await db.schema
      .createTable('sync_tenant_turns')
      .addColumn('tenant_id', ddl.text, (c) => c.primaryKey())
      .addColumn('last_turn', ddl.bigint, (c) => c.notNull())
      .execute();
  },
});
