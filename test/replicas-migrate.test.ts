import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { storageMigrations } from '../src/storage/migrations/storage-migrations.js';
import { postgresDdl } from '../src/storage/postgres/ddl.js';
import { testJwtSecret } from './helpers/jwt.js';
import { cleanEnv, runUntilExit, type ServeProcess, startServeProcess } from './helpers/serve-process.js';
import { createPostgresDatabase } from './helpers/storage-engines.js';

// Issue 14: schema upgrades with several replicas. `vppd migrate` applies the pending migrations and
// says which in one line; `VPPD_MIGRATE=off` makes `vppd serve` refuse a schema that is behind or
// ahead instead of changing it; three `vppd serve` started at once on an empty database all come up,
// the schema migrated once.

const dir = mkdtempSync(join(tmpdir(), 'vppd-migrate-'));
const running: ServeProcess[] = [];
const admins: Kysely<unknown>[] = [];
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')));
  for (const db of admins) await db.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const allMigrations = Object.keys(storageMigrations(postgresDdl)).sort();

function env(extra: Record<string, string> = {}) {
  return cleanEnv({
    VPPD_ENCRYPTION_KEY: Buffer.alloc(32, 5).toString('base64'),
    VPPD_JWT_SECRET: testJwtSecret,
    VPPD_LOG_LEVEL: 'warn',
    ...extra,
  });
}

function connect(url: string): Kysely<unknown> {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pool.on('error', () => {});
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
  admins.push(db);
  return db;
}

async function appliedMigrations(db: Kysely<unknown>): Promise<string[]> {
  const rows = await sql<{ name: string }>`select name from vppd_migrations order by name`.execute(db);
  return rows.rows.map((r) => r.name);
}

describe('vppd migrate and VPPD_MIGRATE=off on PostgreSQL', () => {
  it('refuses an outdated schema, migrates on request, refuses a newer one', {
    timeout: 90_000,
  }, async () => {
    const url = await createPostgresDatabase();
    const db = connect(url);
    const serveArgs = ['serve', '--port', '0', '--database', url, '--apple-url', 'http://127.0.0.1:9/'];

    const refused = await runUntilExit(serveArgs, { env: env({ VPPD_MIGRATE: 'off' }), cwd: dir });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `vppd: VPPD_MIGRATE=off: the database schema is behind (pending migrations: ${allMigrations.join(', ')}); run \`vppd migrate\` first\n`,
    );
    // Nothing was created.
    expect((await db.introspection.getTables()).map((t) => t.name)).toEqual([]);

    const bad = await runUntilExit(serveArgs, { env: env({ VPPD_MIGRATE: 'sometimes' }), cwd: dir });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('vppd: VPPD_MIGRATE: must be one of auto, off\n');

    const migrated = await runUntilExit(['migrate', '--database', url], { env: env(), cwd: dir });
    expect(migrated.code).toBe(0);
    expect(migrated.stdout).toBe(
      `vppd: applied ${allMigrations.length} migrations: ${allMigrations.join(', ')}\n`,
    );
    expect(await appliedMigrations(db)).toEqual(allMigrations);
    const again = await runUntilExit(['migrate'], { env: env({ VPPD_DATABASE_URL: url }), cwd: dir });
    expect(again.stdout).toBe('vppd: schema up to date; no migration to apply\n');

    // Current schema: VPPD_MIGRATE=off starts.
    const server = await startServeProcess(serveArgs.slice(1), {
      env: env({ VPPD_MIGRATE: 'off' }),
      cwd: dir,
    });
    running.push(server);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect(await server.stop('SIGTERM')).toBe(0);

    // A newer vppd migrated the database: this one neither serves on it nor migrates it.
    await sql`insert into vppd_migrations (name, timestamp) values ('0099_from_the_future', '2027-01-01T00:00:00.000Z')`.execute(
      db,
    );
    const newer = await runUntilExit(serveArgs, { env: env({ VPPD_MIGRATE: 'off' }), cwd: dir });
    expect(newer.code).toBe(1);
    expect(newer.stderr).toBe(
      'vppd: VPPD_MIGRATE=off: the database schema is newer than this vppd (migrations it does not know: 0099_from_the_future); run the vppd version that applied them\n',
    );
    const migrateNewer = await runUntilExit(['migrate', '--database', url], { env: env(), cwd: dir });
    expect(migrateNewer.code).toBe(1);
    expect(migrateNewer.stderr).toContain('0099_from_the_future');
    expect(migrateNewer.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('three replicas started at once on an empty database all come up, migrated once', {
    timeout: 90_000,
  }, async () => {
    const url = await createPostgresDatabase();
    const db = connect(url);
    const args = ['--port', '0', '--database', url, '--apple-url', 'http://127.0.0.1:9/'];
    const roles = ['all', 'api', 'worker'];
    const replicas = await Promise.all(
      roles.map((role) => startServeProcess([...args, '--role', role], { env: env(), cwd: dir })),
    );
    running.push(...replicas);
    for (const replica of replicas) expect((await fetch(`${replica.url}/healthz`)).status).toBe(200);
    // Each migration recorded once; no process logged a failed migration.
    expect(await appliedMigrations(db)).toEqual(allMigrations);
    for (const replica of replicas) expect(replica.stderr()).not.toMatch(/migration/i);
    await Promise.all(replicas.map((r) => r.stop('SIGTERM')));
  });
});
