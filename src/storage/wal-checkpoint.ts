import { sql } from 'kysely';
import type { VppdDatabase } from './open-database.js';
import { sqliteConnectionOf } from './sqlite-dialect.js';
import { dateToColumn } from './vpp-token-columns.js';

/** What {@link checkpointWhenIdle} did. */
export type CheckpointResult =
  | { readonly ran: false; readonly reason: 'notSqlite' | 'busy' }
  | { readonly ran: true; readonly complete: boolean };

/**
 * SQLite only (other engines have no WAL file to shrink): when no sync holds a live lease and no run
 * finished within `idleMs`, checkpoints the WAL and truncates it to zero bytes, so a node
 * that synced a lot does not keep a WAL of tens of MB while idle. `complete` is false when a reader
 * (another process) kept part of the WAL; the next idle check tries again.
 */
export async function checkpointWhenIdle(
  db: VppdDatabase,
  now: Date,
  idleMs: number,
): Promise<CheckpointResult> {
  if (sqliteConnectionOf(db.getExecutor().adapter) === undefined) return { ran: false, reason: 'notSqlite' };
  const since = dateToColumn(new Date(now.getTime() - idleMs));
  const recent = await db
    .selectFrom('sync_jobs')
    .select('id')
    .where('lease_expires_at', '>', dateToColumn(now))
    // A run in flight holds a live lease; a finished one has finished_at (indexed).
    .unionAll(db.selectFrom('sync_runs').select('id').where('finished_at', '>=', since))
    .limit(1)
    .execute();
  if (recent.length > 0) return { ran: false, reason: 'busy' };
  const result = await sql<{
    busy: number;
    log: number;
    checkpointed: number;
  }>`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db);
  const row = result.rows[0];
  return { ran: true, complete: row !== undefined && Number(row.busy) === 0 };
}
