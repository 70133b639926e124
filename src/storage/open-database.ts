import { type Kysely, Migrator, sql } from 'kysely';
import { errors } from '../domain/errors.js';
import type { DatabaseSchema } from './database-schema.js';
import type { StorageEngine } from './engine.js';
import { storageMigrations } from './migrations/storage-migrations.js';
import { defaultPostgresPoolSize, type PostgresDatabaseConfig, parsePostgresUrl } from './postgres/config.js';
import { createPostgresEngine } from './postgres/engine.js';
import { parseSqliteUrl, type SqliteDatabaseConfig } from './sqlite/config.js';
import { createSqliteEngine } from './sqlite/engine.js';

// The one place that lists the engines (storage/sqlite/, storage/postgres/): it picks one by the
// database URL. Everything else receives the StorageEngine and never asks which it is.

/** Where the data lives: a SQLite file or memory, or a PostgreSQL server. */
export type DatabaseConfig = SqliteDatabaseConfig | PostgresDatabaseConfig;

/** The typed database handle every store uses. */
export type VppdDatabase = Kysely<DatabaseSchema>;

export { defaultPostgresPoolSize };

/**
 * Parses a database URL: `sqlite:<path>`, `sqlite::memory:`, `postgres://…` or `postgresql://…`
 * (README, "Database"). `poolSize` is the PostgreSQL pool's size. Throws an Error whose message is
 * meant for the operator and never contains a password.
 */
export function parseDatabaseUrl(url: string, options: { readonly poolSize?: number } = {}): DatabaseConfig {
  const config = parseSqliteUrl(url) ?? parsePostgresUrl(url, options.poolSize ?? defaultPostgresPoolSize);
  if (config === undefined) throw new Error('must be sqlite:<path>, sqlite::memory: or postgres://…');
  return config;
}

export interface OpenStorageOptions {
  /** Told about an existing data directory or database file that group or others may access (SQLite). */
  readonly onInsecureMode?: (path: string, mode: number) => void;
  /**
   * `auto` (default): apply pending migrations. `off` (`VPPD_MIGRATE=off`): apply none, and refuse a
   * schema that is not exactly this vppd's (see {@link assertSchemaCurrent}); `vppd migrate` upgrades.
   */
  readonly migrate?: MigrateMode;
}

/** Whether opening the database applies pending migrations (`VPPD_MIGRATE`). */
export const migrateModes = ['auto', 'off'] as const;
export type MigrateMode = (typeof migrateModes)[number];

/** How the database's schema compares with this vppd's migrations. */
export interface SchemaStatus {
  /** Migrations of this vppd not applied yet, in order. */
  readonly pending: readonly string[];
  /** Migrations applied to the database that this vppd does not know: the schema is newer. */
  readonly unknown: readonly string[];
}

/** Reads which migrations the database has, against the ones this vppd knows; changes nothing. */
export async function readSchemaStatus(storage: StorageEngine): Promise<SchemaStatus> {
  const known = Object.keys(storageMigrations(storage.ddl)).sort();
  const tables = await storage.db.introspection.getTables();
  // No bookkeeping table: an empty database, every migration pending.
  const applied = tables.some((t) => t.name === 'vppd_migrations')
    ? (await sql<{ name: string }>`select name from vppd_migrations`.execute(storage.db)).rows.map(
        (r) => r.name,
      )
    : [];
  const appliedSet = new Set(applied);
  const knownSet = new Set(known);
  return {
    pending: known.filter((name) => !appliedSet.has(name)),
    unknown: applied.filter((name) => !knownSet.has(name)).sort(),
  };
}

/**
 * Throws a one-line `VPPD_MIGRATE` error when the schema is behind (naming the pending migrations) or
 * ahead of this vppd (naming the migrations it does not know); resolves when it is exactly current.
 */
export async function assertSchemaCurrent(storage: StorageEngine): Promise<void> {
  const { pending, unknown } = await readSchemaStatus(storage);
  if (unknown.length > 0) {
    throw errors.config(
      'VPPD_MIGRATE=off',
      `the database schema is newer than this vppd (migrations it does not know: ${unknown.join(', ')}); run the vppd version that applied them`,
    );
  }
  if (pending.length > 0) {
    throw errors.config(
      'VPPD_MIGRATE=off',
      `the database schema is behind (pending migrations: ${pending.join(', ')}); run \`vppd migrate\` first`,
    );
  }
}

/** Connects to the database of `config` (its schema as it is: see {@link openStorage}). */
export function createStorageEngine(config: DatabaseConfig, options: OpenStorageOptions = {}): StorageEngine {
  switch (config.kind) {
    case 'sqlite':
    case 'sqlite-memory':
      return createSqliteEngine(config, options);
    case 'postgres':
      return createPostgresEngine(config);
    default: {
      const unreachable: never = config;
      throw errors.config('VPPD_DATABASE_URL', `unsupported database ${JSON.stringify(unreachable)}`);
    }
  }
}

/** The migrator's bookkeeping tables: which migrations ran, and its lock. */
export const migrationTableNames = { migrations: 'vppd_migrations', lock: 'vppd_migrations_lock' } as const;

/** The migrator of vppd's schema (its migrations with the engine's column types, its bookkeeping tables). */
export function createMigrator(storage: StorageEngine): Migrator {
  const migrations = storageMigrations(storage.ddl);
  return new Migrator({
    db: storage.db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: migrationTableNames.migrations,
    migrationLockTableName: migrationTableNames.lock,
  });
}

/**
 * Applies every pending migration, under the engine's migration lock (several processes starting at
 * once migrate once); a failed migration stops start-up with its name.
 */
export async function migrateToLatest(storage: StorageEngine): Promise<string[]> {
  const { error, results = [] } = await storage.withMigrationLock(() =>
    createMigrator(storage).migrateToLatest(),
  );
  const failed = results.find((r) => r.status === 'Error');
  if (error !== undefined) {
    throw errors.internal(
      `database migration ${failed?.migrationName ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`,
      error,
    );
  }
  return results.filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Opens the database named by the configuration and brings its schema up to date. */
export async function openStorage(
  config: DatabaseConfig,
  options: OpenStorageOptions = {},
): Promise<StorageEngine> {
  const storage = createStorageEngine(config, options);
  try {
    if (options.migrate === 'off') await assertSchemaCurrent(storage);
    else await migrateToLatest(storage);
  } catch (error) {
    await storage.close();
    throw error;
  }
  return storage;
}

/** {@link openStorage}, for a caller that only queries (the stores that need the engine take it). */
export async function openDatabase(config: DatabaseConfig): Promise<VppdDatabase> {
  return (await openStorage(config)).db;
}
