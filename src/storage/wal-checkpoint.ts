import type { StorageEngine } from './engine.js';
import { dateToColumn } from './vpp-token-columns.js';

/** What {@link checkpointWhenIdle} did. */
export type CheckpointResult =
  | { readonly ran: false; readonly reason: 'noLog' | 'busy' }
  | { readonly ran: true; readonly complete: boolean };

/**
 * When no sync holds a live lease and no run finished within `idleMs`, has the engine truncate its
 * write-ahead log (SQLite's WAL, back to zero bytes), so a node that synced a lot does not keep a WAL of
 * tens of MB while idle; engines without such a file (PostgreSQL) do nothing. `complete` is false when a
 * reader (another process) kept part of the log; the next idle check tries again.
 */
export async function checkpointWhenIdle(
  storage: StorageEngine,
  now: Date,
  idleMs: number,
): Promise<CheckpointResult> {
  if (!storage.hasLocalWriteAheadLog) return { ran: false, reason: 'noLog' };
  const { db } = storage;
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
  return { ran: true, complete: await storage.truncateWriteAheadLog() };
}
