import { chmodSync, closeSync, constants, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  type SqliteDatabase,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
} from 'kysely';
import { mkdirPrivateSync } from '../private-directory.js';

export interface SqliteDialectOptions {
  /** A file path, or `:memory:`. */
  readonly filename: string;
  /**
   * How long a statement waits for another connection's write lock before failing, in ms (default
   * 5,000). It waits on timers, never blocking the thread (see {@link waitingWhenBusy}).
   */
  readonly busyTimeoutMs?: number;
  /** Told about an existing data directory or database file that others than its owner may read. */
  readonly onInsecureMode?: (path: string, mode: number) => void;
}

/**
 * Makes what vppd creates private whatever the umask (the database holds sealed sTokens, webhook
 * secrets and every tenant's data): a directory it creates gets 0700, a database file it creates
 * 0600 (created empty with that mode before SQLite opens it; SQLite gives its -wal and -shm files
 * the database's mode, and they are chmod-ed too once WAL is on). Existing ones are left as the
 * operator made them, but any group/other permission bit is reported.
 */
function prepareDatabaseFile(filename: string, warn: (path: string, mode: number) => void): void {
  const dir = dirname(resolve(filename));
  if (!mkdirPrivateSync(dir)) checkMode(dir, warn);
  try {
    closeSync(openSync(filename, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600));
    chmodSync(filename, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    for (const path of [filename, `${filename}-wal`, `${filename}-shm`]) checkMode(path, warn);
  }
}

function checkMode(path: string, warn: (path: string, mode: number) => void): void {
  try {
    const { mode } = statSync(path);
    if ((mode & 0o077) !== 0) warn(resolve(path), mode & 0o777);
  } catch {
    // Not there (a -wal or -shm of a cleanly closed database): nothing to report.
  }
}

/** chmod 0600 on the -wal and -shm files of a database vppd created, once WAL made them. */
function privateWalFiles(filename: string): void {
  for (const path of [`${filename}-wal`, `${filename}-shm`]) {
    try {
      chmodSync(path, 0o600);
    } catch {
      // Not created (yet): SQLite creates them with the database's mode anyway.
    }
  }
}

/** Kysely's SQLite dialect and the better-sqlite3 connection under it. */
export interface SqliteConnection {
  readonly dialect: SqliteDialect;
  /**
   * Only for a synchronous read that must not queue behind Kysely's own queries (the change stamp):
   * Kysely owns the connection and may be inside a transaction on it, so never write through it.
   */
  readonly connection: Database.Database;
}

/**
 * Opens better-sqlite3 the way vppd needs it (WAL, foreign keys on, busy timeout) and wraps it in
 * Kysely's SQLite dialect. Creates the parent directory of a database file.
 */
export function createSqliteDialect(options: SqliteDialectOptions): SqliteConnection {
  const memory = options.filename === ':memory:';
  if (!memory) prepareDatabaseFile(options.filename, options.onInsecureMode ?? (() => undefined));
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  // SQLite's own busy handler would sleep in this thread, holding up every request; busy statements
  // are retried on timers instead (waitingWhenBusy), so SQLite itself never waits.
  const database = new Database(options.filename, { timeout: 0 });
  // WAL lets readers run while a sync writes; in-memory databases have no journal file to switch.
  if (!memory) {
    database.pragma('journal_mode = WAL');
    privateWalFiles(options.filename);
  }
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 0');
  // NORMAL with WAL: a commit is atomic and survives a crash of the process (the snapshot swap
  // included); only a power loss may roll back the last commits, never corrupt the file. FULL (an
  // fsync per commit) cost a sync ~100 ms here across its ~20 small commits and would slow every API
  // write; a caller that must survive power loss can run one transaction with FULL.
  database.pragma('synchronous = NORMAL');
  if (!memory) {
    // A checkpoint (with its fsync) every 8,000 WAL pages (32 MiB) instead of SQLite's 1,000: bulk
    // writes (a large sync's staging, a migration) do not stop for one every few transactions.
    // Measured when licenses were one row each (200k rows staged in a median 435 ms vs 214 ms with
    // this); since they are stored in chunks (migration 0006) a sync writes ~1/5 of the pages and the
    // two settings measure alike. journal_size_limit gives the disk back after.
    database.pragma('wal_autocheckpoint = 8000');
    database.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
  }
  return {
    dialect: new ImmediateSqliteDialect({ database: withStatementCache(database) }, busyTimeoutMs),
    connection: database,
  };
}

/** A second connection to a database file, for reads only, opened on first use (see {@link createSqliteReadDialect}). */
export interface SqliteReadConnection {
  readonly dialect: SqliteDialect;
  /** The connection, opened now if it was not yet (synchronous reads, like the change stamp's). */
  connection(): Database.Database;
  /** Closes the connection if it was opened. */
  close(): void;
}

/**
 * A read-only (`query_only`) connection to the database file `filename`, which the writing connection
 * of {@link createSqliteDialect} opened first (in WAL). It is opened on first use, so a process that
 * never reads through it (the sync thread, `vppd db copy`'s source) holds no second connection.
 *
 * Why a second connection: Kysely runs one statement at a time on a connection and holds it for a
 * whole transaction. A `begin immediate` of this thread waiting for another connection's write lock
 * (the sync thread commits a snapshot) or a transaction in flight therefore held up every read queued
 * behind it — a Graph GET waited for a `syncLicenses` of someone else. WAL lets this connection read the
 * latest commit meanwhile. It never runs a transaction; a read that finds the database busy (a WAL being
 * reset, rare) is tried again on timers like a write.
 */
export function createSqliteReadDialect(filename: string, busyTimeoutMs = 5000): SqliteReadConnection {
  let database: Database.Database | undefined;
  const open = () => {
    if (database === undefined) {
      const opened = new Database(filename, { timeout: 0, fileMustExist: true });
      opened.pragma('busy_timeout = 0');
      opened.pragma('query_only = ON');
      database = opened;
    }
    return database;
  };
  const cached = { value: undefined as SqliteDatabase | undefined };
  return {
    dialect: new ImmediateSqliteDialect(
      {
        database: async () => {
          cached.value ??= { ...withStatementCache(open()), close: () => undefined };
          return cached.value;
        },
      },
      busyTimeoutMs,
    ),
    connection: open,
    close() {
      if (database?.open) database.close();
    },
  };
}

/**
 * Transactions begin IMMEDIATE: they take the write lock at `begin`, waiting (busy timeout) for
 * another connection's write to end. A deferred transaction that read first fails its first write
 * at once with SQLITE_BUSY when another connection committed since its read (WAL cannot move its
 * snapshot forward), and another connection commits all the time here: the sync thread's own
 * connection, or another process on the same file.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  readonly #busyTimeoutMs: number;

  constructor(config: SqliteDialectConfig, busyTimeoutMs: number) {
    super(config);
    this.#config = config;
    this.#busyTimeoutMs = busyTimeoutMs;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config, this.#busyTimeoutMs);
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  readonly #busyTimeoutMs: number;
  #waiting: DatabaseConnection | undefined;

  constructor(config: SqliteDialectConfig, busyTimeoutMs: number) {
    super(config);
    this.#busyTimeoutMs = busyTimeoutMs;
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    // Kysely's SQLite driver hands out its one connection; wrapped once.
    const connection = await super.acquireConnection();
    this.#waiting ??= waitingWhenBusy(connection, this.#busyTimeoutMs);
    return this.#waiting;
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

/**
 * A statement that finds another connection holding the write lock (SQLITE_BUSY: it did nothing) is
 * run again after 1, 2, 4, then every 10 ms, for up to `timeoutMs`, on timers. SQLite's busy handler
 * would sleep in the thread instead, and a request thread waiting there for the sync thread's
 * commit answers nothing meanwhile. Inside a transaction nothing is busy: `begin immediate` took
 * the lock.
 */
function waitingWhenBusy(connection: DatabaseConnection, timeoutMs: number): DatabaseConnection {
  return {
    async executeQuery(query) {
      const deadline = performance.now() + timeoutMs;
      for (let wait = 1; ; wait = Math.min(wait * 2, 10)) {
        try {
          return await connection.executeQuery(query);
        } catch (error) {
          if ((error as { code?: unknown }).code !== 'SQLITE_BUSY' || performance.now() + wait > deadline) {
            throw error;
          }
          await new Promise((resolve) => setTimeout(resolve, wait));
        }
      }
    },
    streamQuery: (query, chunkSize) => connection.streamQuery(query, chunkSize),
  };
}

/** Prepared statements kept per SQL text; preparing a sync's 1,000-row insert each time cost ~1.5 ms. */
const statementCacheSize = 128;

/**
 * Reuses prepared statements by SQL text (Kysely prepares on every query). Safe because Kysely runs
 * one query at a time per connection, streams included.
 */
function withStatementCache(database: Database.Database): SqliteDatabase {
  const cache = new Map<string, Database.Statement>();
  return {
    close: () => database.close(),
    prepare(sql) {
      let statement = cache.get(sql);
      if (statement === undefined) {
        statement = database.prepare(sql);
        if (cache.size >= statementCacheSize) cache.delete(cache.keys().next().value as string);
        cache.set(sql, statement);
      }
      return statement;
    },
  };
}
