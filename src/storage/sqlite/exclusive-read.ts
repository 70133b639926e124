import { type Kysely, sql } from 'kysely';
import { errors } from '../../domain/errors.js';
import type { DatabaseSchema } from '../database-schema.js';
import { isSqliteBusy } from './errors.js';

/** How long to wait for other connections to close the file before refusing. */
const waitMs = 1000;

/**
 * Runs `read` holding the database file exclusively. In WAL mode every open connection keeps a shared
 * lock on the file for as long as it is open, idle or not; `locking_mode=EXCLUSIVE` followed by
 * `BEGIN IMMEDIATE` needs SQLite's exclusive lock, so it fails while any other connection (a running
 * `vppd serve`, between writes or not) has the file open, and once it holds it no process can open
 * the database (a starting vppd waits on its busy timeout) until the connection closes. A plain
 * `BEGIN IMMEDIATE` would only refuse a writer caught mid-transaction. The caller closes the engine
 * after, which releases the lock.
 */
export async function readSqliteExclusively<T>(
  db: Kysely<DatabaseSchema>,
  read: (db: Kysely<DatabaseSchema>) => Promise<T>,
): Promise<T> {
  return db.connection().execute(async (connection) => {
    await sql`pragma busy_timeout = ${sql.raw(String(waitMs))}`.execute(connection);
    await sql`pragma locking_mode = exclusive`.execute(connection);
    try {
      await sql`begin immediate`.execute(connection);
    } catch (error) {
      await sql`pragma locking_mode = normal`.execute(connection);
      if (isSqliteBusy(error)) {
        throw errors.conflict(
          'the source database is open in another process (a running vppd?): stop it first',
        );
      }
      throw error;
    }
    try {
      return await read(connection);
    } finally {
      await sql`rollback`.execute(connection);
    }
  });
}
