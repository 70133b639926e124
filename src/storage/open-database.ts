import { type Dialect, Kysely, Migrator } from 'kysely';
import { errors } from '../domain/errors.js';
import type { DatabaseSchema } from './database-schema.js';
import { storageMigrations } from './migrations/storage-migrations.js';
import { createSqliteDialect } from './sqlite-dialect.js';

/** Where the data lives. Only SQLite is wired today; the PostgreSQL dialect is a later step. */
export type DatabaseConfig =
  | { readonly kind: 'sqlite'; readonly url: string; readonly filename: string }
  | { readonly kind: 'sqlite-memory'; readonly url: string };

/** The typed database handle every store uses. */
export type VppdDatabase = Kysely<DatabaseSchema>;

/** Picks the Kysely dialect for a database URL; the only place that knows which engine runs. */
export function createDialect(config: DatabaseConfig, options: OpenDatabaseOptions = {}): Dialect {
  switch (config.kind) {
    case 'sqlite':
      return createSqliteDialect({
        filename: config.filename,
        ...(options.onInsecureMode ? { onInsecureMode: options.onInsecureMode } : {}),
      });
    case 'sqlite-memory':
      return createSqliteDialect({ filename: ':memory:' });
    default: {
      const unreachable: never = config;
      throw errors.config('VPPD_DATABASE_URL', `unsupported database ${JSON.stringify(unreachable)}`);
    }
  }
}

/** The migrator of vppd's schema (its migrations, its bookkeeping tables). */
export function createMigrator(db: Kysely<unknown>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => storageMigrations },
    migrationTableName: 'vppd_migrations',
    migrationLockTableName: 'vppd_migrations_lock',
  });
}

/** Applies every pending migration; a failed migration stops start-up with its name. */
export async function migrateToLatest(db: Kysely<unknown>): Promise<string[]> {
  const { error, results = [] } = await createMigrator(db).migrateToLatest();
  const failed = results.find((r) => r.status === 'Error');
  if (error !== undefined) {
    throw errors.internal(
      `database migration ${failed?.migrationName ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`,
      error,
    );
  }
  return results.filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

export interface OpenDatabaseOptions {
  /** Told about an existing data directory or database file that group or others may access. */
  readonly onInsecureMode?: (path: string, mode: number) => void;
}

/** Opens the database named by the configuration and brings its schema up to date. */
export async function openDatabase(
  config: DatabaseConfig,
  options: OpenDatabaseOptions = {},
): Promise<VppdDatabase> {
  const db = new Kysely<DatabaseSchema>({ dialect: createDialect(config, options) });
  try {
    await migrateToLatest(db as unknown as Kysely<unknown>);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return db;
}
