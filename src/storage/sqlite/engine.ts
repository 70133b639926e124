import type Database from 'better-sqlite3';
import { Kysely, sql } from 'kysely';
import type { DatabaseSchema } from '../database-schema.js';
import type { StorageEngine } from '../engine.js';
import { sqliteBulkInsert } from './bulk-insert.js';
import { describeSqliteTables } from './catalog.js';
import { createSqliteNotifier } from './change-notifier.js';
import { createSqliteTenantStampReader, createSqliteTenantStampsReader } from './change-stamp.js';
import type { SqliteDatabaseConfig } from './config.js';
import { sqliteDdl } from './ddl.js';
import { createSqliteDialect, createSqliteReadDialect } from './dialect.js';
import { isSqliteForeignKeyViolation, isSqliteUniqueViolation } from './errors.js';
import { appendSqliteEventRows } from './event-append.js';
import { readSqliteExclusively } from './exclusive-read.js';
import { trySqliteRateGrant } from './rate-grant.js';

/** The SQLite engine, with the connection under it for this folder's tests. */
export interface SqliteEngine extends StorageEngine {
  /** Never write through it: Kysely owns it (sqlite/dialect.ts). */
  readonly connection: Database.Database;
}

/**
 * vppd's storage on SQLite: one better-sqlite3 connection (WAL on a file), shared by every store of
 * the process, and on a file a second one for reads that must not wait behind the first ({@link
 * StorageEngine.reads}, opened on first use); other processes on the same file coordinate through
 * SQLite's locks.
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
  // An in-memory database is this connection's alone: nothing to open a second connection to.
  const readConnection = config.kind === 'sqlite' ? createSqliteReadDialect(config.filename) : undefined;
  const reads =
    readConnection === undefined ? db : new Kysely<DatabaseSchema>({ dialect: readConnection.dialect });
  const readConnectionOf = readConnection === undefined ? () => connection : readConnection.connection;
  const readTenantStamp = createSqliteTenantStampReader(
    reads as unknown as Kysely<unknown>,
    readConnectionOf,
  );
  const readTenantStampWithoutProgress = createSqliteTenantStampReader(
    reads as unknown as Kysely<unknown>,
    readConnectionOf,
    { withoutProgress: true },
  );
  const notifier = createSqliteNotifier();
  return {
    kind: 'sqlite',
    db,
    connection,
    ddl: sqliteDdl,
    reads,
    readTenantStamp,
    readTenantStamps: createSqliteTenantStampsReader(readTenantStamp),
    readTenantStampWithoutProgress,
    readTenantStampsWithoutProgress: createSqliteTenantStampsReader(readTenantStampWithoutProgress),
    notifier,
    isUniqueViolation: isSqliteUniqueViolation,
    isForeignKeyViolation: isSqliteForeignKeyViolation,
    lockForUpdate: (query) => query,
    lockSkippingLocked: (query) => query,
    serializeClaims: async () => {},
    // Claims take the portable transaction: SQLite's one writer serializes them without a network
    // between the statements.
    claimSyncJobs: async () => undefined,
    tryRateGrant: (key, limit, windowMs) => trySqliteRateGrant(db, key, limit, windowMs),
    sharedAcrossHosts: false,
    bulkInsert: sqliteBulkInsert,
    appendEventRows: appendSqliteEventRows,
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
      // The read connection first: the last connection to close checkpoints the WAL away.
      if (readConnection !== undefined) {
        await reads.destroy();
        readConnection.close();
      }
      await db.destroy();
    },
    describeTables: (on = db) => describeSqliteTables(on as unknown as Kysely<unknown>),
    readExclusively: (read) => readSqliteExclusively(db, read),
    // AUTOINCREMENT keeps the largest key ever inserted in sqlite_sequence, given ones included.
    resetSerialKey: async () => {},
  };
}
