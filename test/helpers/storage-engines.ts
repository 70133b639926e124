import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { StorageEngine, StorageEngineKind } from '../../src/storage/engine.js';
import { createStorageEngine, migrateToLatest, parseDatabaseUrl } from '../../src/storage/open-database.js';

/**
 * The engines the storage suites run on, as Kysely's own tests do: `describe.each(storageEngines)`.
 * PostgreSQL is the throw-away server test/setup/postgres-server.ts starts for the run.
 */
export const storageEngines: readonly StorageEngineKind[] = ['sqlite', 'postgres'];

/** The test server's URL (a database to connect to for CREATE DATABASE); fails loudly when missing. */
export function postgresServerUrl(): string {
  const url = process.env.VPPD_TEST_POSTGRES_URL;
  if (!url) {
    throw new Error(
      'VPPD_TEST_POSTGRES_URL is not set: the vitest globalSetup test/setup/postgres-server.ts did not run',
    );
  }
  return url;
}

let counter = 0;
let admin: Kysely<unknown> | undefined;

function adminDb(): Kysely<unknown> {
  if (admin === undefined) {
    const pool = new pg.Pool({ connectionString: postgresServerUrl(), max: 1 });
    // The server stops after the run (or a benchmark): an idle connection's error is no test's failure.
    pool.on('error', () => {});
    admin = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
  }
  return admin;
}

/** A new, empty database on the test server (one per test file or suite); its URL. */
export async function createPostgresDatabase(): Promise<string> {
  counter += 1;
  const name = `vppd_${process.pid}_${counter}_${Date.now().toString(36)}`;
  await sql`create database ${sql.id(name)}`.execute(adminDb());
  const url = new URL(postgresServerUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * A database URL of `kind` for one test: a new PostgreSQL database, or `sqliteUrl` (default in-memory
 * SQLite).
 */
export async function testDatabaseUrl(
  kind: StorageEngineKind,
  sqliteUrl = 'sqlite::memory:',
): Promise<string> {
  return kind === 'postgres' ? createPostgresDatabase() : sqliteUrl;
}

/** A storage engine of `kind` on a fresh database, migrated unless `migrate: false`. */
export async function openTestStorage(
  kind: StorageEngineKind,
  options: { readonly sqliteUrl?: string; readonly migrate?: boolean; readonly poolSize?: number } = {},
): Promise<StorageEngine> {
  const url = await testDatabaseUrl(kind, options.sqliteUrl);
  const storage = createStorageEngine(
    parseDatabaseUrl(url, options.poolSize === undefined ? {} : { poolSize: options.poolSize }),
  );
  if (options.migrate !== false) await migrateToLatest(storage);
  return storage;
}
