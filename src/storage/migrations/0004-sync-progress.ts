import type { Kysely, Migration } from 'kysely';

// Portable DDL only (ADD COLUMN of nullable text/integer): the same migration runs on SQLite and PostgreSQL.
/**
 * Live progress of a running sync on its job row: the phase, pages and records fetched so far, and
 * when the worker last wrote them (at most about once a second). The job row exists only while the
 * sync is queued or running, so the columns describe the sync in flight; finished runs keep their
 * counts in `sync_runs`. Kept in the database so any process can answer `GET /vppd/v1/tokens/{id}/sync`.
 */
export const syncProgress: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('sync_jobs').addColumn('progress_phase', 'text').execute();
    await db.schema.alterTable('sync_jobs').addColumn('progress_pages', 'integer').execute();
    await db.schema.alterTable('sync_jobs').addColumn('progress_records', 'integer').execute();
    await db.schema.alterTable('sync_jobs').addColumn('progress_at', 'text').execute();
  },
};
