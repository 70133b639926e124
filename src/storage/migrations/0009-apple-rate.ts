import type { Kysely, Migration } from 'kysely';
import type { EngineDdl } from '../engine.js';

// Column types come from the engine's DDL (storage/engine.ts, EngineDdl): the same migration runs on
// SQLite and PostgreSQL.
/**
 * Issue 14: Apple's request rate per location, shared by every process on the database
 * (storage/apple-rate-store.ts). One row per location: the grant times (database clock, whole
 * milliseconds) of its last window as a JSON array, at most Apple's `maxRequestPerSecond` of them. The
 * row is also what a process locks while it decides on one more request, so the decision sees every
 * other process's grants.
 */
export const appleRate = (ddl: EngineDdl): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('apple_rate_windows')
      .addColumn('location_key', ddl.text, (c) => c.primaryKey())
      .addColumn('grants', ddl.text, (c) => c.notNull())
      .execute();
  },
});
