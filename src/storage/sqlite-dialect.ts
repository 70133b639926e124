import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { type SqliteDatabase, SqliteDialect } from 'kysely';

export interface SqliteDialectOptions {
  /** A file path, or `:memory:`. */
  readonly filename: string;
  /** How long a writer waits for another process's lock before failing, in ms. */
  readonly busyTimeoutMs?: number;
}

/**
 * Opens better-sqlite3 the way vppd needs it (WAL, foreign keys on, busy timeout) and wraps it in
 * Kysely's SQLite dialect. Creates the parent directory of a database file.
 */
export function createSqliteDialect(options: SqliteDialectOptions): SqliteDialect {
  const memory = options.filename === ':memory:';
  if (!memory) mkdirSync(dirname(resolve(options.filename)), { recursive: true });
  const database = new Database(options.filename, { timeout: options.busyTimeoutMs ?? 5000 });
  // WAL lets readers run while a sync writes; in-memory databases have no journal file to switch.
  if (!memory) database.pragma('journal_mode = WAL');
  database.pragma('foreign_keys = ON');
  database.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
  // FULL: every commit of this connection (token uploads, job state, the snapshot swap of a sync) is
  // on disk when it returns, also across a power loss — WAL with NORMAL may lose the last commits
  // then. It costs one WAL fsync per write transaction; the bulk of a sync (staged license rows,
  // worthless until the swap) is written by the staging thread's own connection with NORMAL.
  database.pragma('synchronous = FULL');
  return new SqliteDialect({ database: withStatementCache(database) });
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
