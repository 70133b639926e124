import type { Kysely, Migration } from 'kysely';
import type { EngineDdl } from '../engine.js';

/**
 * Incremental syncs (issue 16, item 2): between full syncs a `delta` job reads Apple's assignments
 * since the snapshot's versionId and patches the current snapshot in one transaction.
 * - `sync_runs.kind`: `licenses` (a full sync, every row so far; also a delta that fell back to a full
 *   read) or `delta`, so the history can tell them apart.
 * - `sync_schedule.next_delta_at`: when the scheduler asks for the token's next delta sync; null when
 *   none is planned (deltas off, or never synced since this migration: due at the first tick).
 */
export const deltaSyncs = (ddl: EngineDdl): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema
      .alterTable('sync_runs')
      .addColumn('kind', ddl.text, (c) => c.notNull().defaultTo('licenses'))
      .execute();
    await db.schema.alterTable('sync_schedule').addColumn('next_delta_at', ddl.timestamp).execute();
  },
});
