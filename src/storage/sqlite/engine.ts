import type Database from 'better-sqlite3';
import { Kysely, sql } from 'kysely';
import type { DatabaseSchema } from '../database-schema.js';
import type { StorageEngine } from '../engine.js';
import { sqliteBulkInsert } from './bulk-insert.js';
import { describeSqliteTables } from './catalog.js';
import { createSqliteNotifier } from './change-notifier.js';
import {
  createSqliteStampReader,
  createSqliteTenantStampReader,
  createSqliteTenantStampsReader,
} from './change-stamp.js';
import type { SqliteDatabaseConfig } from './config.js';
import { sqliteDdl } from './ddl.js';
import { createSqliteDialect } from './dialect.js';
import { isSqliteForeignKeyViolation, isSqliteUniqueViolation } from './errors.js';
import { readSqliteExclusively } from './exclusive-read.js';

/** The SQLite engine, with the connection under it for this folder's tests. */
export interface SqliteEngine extends StorageEngine {
  /** Never write through it: Kysely owns it (sqlite/dialect.ts). */
  readonly connection: Database.Database;
}

/**
 * vppd's storage on SQLite: one better-sqlite3 connection (WAL on a file), shared by every store of
 * the process; other processes on the same file coordinate through SQLite's locks.
 */
export function createSqliteEngine(
  config: SqliteDatabaseConfig,
  options: { readonly onInsecureMode?: (path: string, mode: number) => void } = {},
): SqliteEngine {
  const { dialect, connection } = createSqliteDialect({
    filename: config.kind === 'sqlite' ? config.filename : ':memory:',
    ...(options.onInsecureMode ? { onInsecureMode: options.onInsecureMode } : {}),
  });
  const db = new Kysely<DatabaseSchema>({ dialect });
  const readChangeStamp = createSqliteStampReader(db as unknown as Kysely<unknown>, connection);
  const readTenantStamp = createSqliteTenantStampReader(db as unknown as Kysely<unknown>, connection);
  const notifier = createSqliteNotifier();
  return {
    kind: 'sqlite',
    db,
    connection,
    ddl: sqliteDdl,
    readChangeStamp,
    readTenantStamp,
    readTenantStamps: createSqliteTenantStampsReader(readTenantStamp),
    notifier,
    isUniqueViolation: isSqliteUniqueViolation,
    isForeignKeyViolation: isSqliteForeignKeyViolation,
    lockForUpdate: (query) => query,
    lockSkippingLocked: (query) => query,
    serializeClaims: async () => {},
    // julianday('now') keeps milliseconds; the same machine's clock as every process on the file.
    nowMs: sql<number>`cast(round((julianday('now') - 2440587.5) * 86400000) as integer)`,
    sharedAcrossHosts: false,
    bulkInsert: sqliteBulkInsert,
    // One connection per process, and a migration's transaction takes SQLite's write lock: a second
    // process waits (busy timeout) and then finds the migrations applied.
    withMigrationLock: (migrate) => migrate(),
    hasLocalWriteAheadLog: true,
    async truncateWriteAheadLog() {
      const result = await sql<{ busy: number }>`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db);
      const row = result.rows[0];
      return row !== undefined && Number(row.busy) === 0;
    },
    async close() {
      await notifier.close();
      await db.destroy();
    },
    describeTables: (on = db) => describeSqliteTables(on as unknown as Kysely<unknown>),
    readExclusively: (read) => readSqliteExclusively(db, read),
    // AUTOINCREMENT keeps the largest key ever inserted in sqlite_sequence, given ones included.
    resetSerialKey: async () => {},
  };
}
