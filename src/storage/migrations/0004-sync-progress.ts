import type { Kysely, Migration } from 'kysely';
import type { EngineDdl } from '../engine.js';

// Column types come from the engine's DDL (storage/engine.ts, EngineDdl): the same migration runs on
// SQLite and PostgreSQL, and writes on SQLite exactly the DDL it wrote before the engines were split.
/**
 * Live progress of a running sync on its job row: the phase, pages and records fetched so far, and
 * when the worker last wrote them (at most about once a second). The job row exists only while the
 * sync is queued or running, so the columns describe the sync in flight; finished runs keep their
 * counts in `sync_runs`. Kept in the database so any process can answer `GET /vppd/v1/tokens/{id}/sync`.
 */
export const syncProgress = (ddl: EngineDdl): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('sync_jobs').addColumn('progress_phase', ddl.text).execute();
    await db.schema.alterTable('sync_jobs').addColumn('progress_pages', 'integer').execute();
    await db.schema.alterTable('sync_jobs').addColumn('progress_records', 'integer').execute();
    await db.schema.alterTable('sync_jobs').addColumn('progress_at', ddl.timestamp).execute();
  },
});
