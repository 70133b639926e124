import { SqliteAdapter, sql } from 'kysely';
import type { VppdDatabase } from './open-database.js';

/**
 * Reads the database's change stamp: a value that differs after any change committed to the database
 * by any connection or process before the call. Undefined when the engine offers none; a caller must
 * then not reuse anything it read before.
 */
export type ChangeStamp = () => Promise<string | undefined>;

/**
 * Builds the change stamp of `db`. On SQLite it is `PRAGMA data_version` (changes when another
 * connection, in this process or another, commits) with `total_changes()` (rows this connection
 * changed, committed or not), read in one statement on the connection every store uses. Kysely runs
 * one query or transaction at a time on that connection, so a stamp is never read in the middle of
 * this process's own transaction. Read the stamp before the data it guards: data read afterwards is
 * then at least as new as the stamp, never older.
 *
 * Calls made in the same event-loop turn share one read, taken in the turn's check phase (after every
 * I/O callback of the turn ran), so it still follows each of those calls; under load a turn serves
 * many requests, and a stamp costs a read transaction (~10 µs) instead of one per request.
 */
export function createChangeStamp(db: VppdDatabase): ChangeStamp {
  if (!(db.getExecutor().adapter instanceof SqliteAdapter)) return async () => undefined;
  const query = sql<{
    v: number | bigint;
    c: number | bigint;
  }>`select data_version as v, total_changes() as c from pragma_data_version`;
  const read = async () => {
    const { rows } = await query.execute(db);
    const row = rows[0];
    return row === undefined ? undefined : `${row.v}:${row.c}`;
  };
  let next: Promise<string | undefined> | undefined;
  return () => {
    next ??= new Promise((resolve, reject) => {
      setImmediate(() => {
        // Calls from now on wait for a later read: this one may already be too old for them.
        next = undefined;
        read().then(resolve, reject);
      });
    });
    return next;
  };
}
