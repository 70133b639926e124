import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type Migrator, sql } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AppleSim } from '../src/apple-sim/apple-sim.js';
import { demoTenantId } from '../src/config.js';
import { demoTokens } from '../src/demo/demo-scenario.js';
import { startDemoAppleSim } from '../src/demo/start-demo-apple-sim.js';
import { copyDatabase } from '../src/storage/database-copy.js';
import type { StorageEngine } from '../src/storage/engine.js';
import {
  createMigrator,
  createStorageEngine,
  migrateToLatest,
  migrationTableNames,
  parseDatabaseUrl,
} from '../src/storage/open-database.js';
import { mintToken, roles, testJwtSecret } from './helpers/jwt.js';
import { runVppd } from './helpers/run-cli.js';
import { cleanEnv, type ServeProcess, startServeProcess } from './helpers/serve-process.js';
import { createPostgresDatabase } from './helpers/storage-engines.js';

// `vppd db copy` (issue 14): a demo database built by a real `vppd serve --demo` on SQLite (real syncs
// against the simulator: completed and failed tokens, a large sync interrupted mid-staging, history, a
// webhook and its alerts) is copied to a real PostgreSQL database; vppd then serves byte-identical
// Graph and /vppd/v1 answers from both, the copied sTokens decrypt with the same key (a new sync on
// the copy completes), and the copy copies back. Each refusal leaves the target as it was.

const cwd = mkdtempSync(join(tmpdir(), 'vppd-db-copy-'));
const sqliteFile = join(cwd, 'data', 'vppd.db');
const encryptionKey = Buffer.alloc(32, 7).toString('base64');
const publicUrl = 'http://vppd.test';
const env = cleanEnv({
  VPPD_PORT: '0',
  VPPD_LOG_LEVEL: 'silent',
  VPPD_SHUTDOWN_GRACE: '1s',
  VPPD_ENCRYPTION_KEY: encryptionKey,
  VPPD_JWT_SECRET: testJwtSecret,
});
const running: ServeProcess[] = [];
const opened: StorageEngine[] = [];
let sim: AppleSim | undefined;
let bearer: string;
let pgUrl: string;

afterAll(async () => {
  for (const p of running) await p.stop('SIGKILL');
  for (const s of opened) await s.close().catch(() => {});
  await sim?.close();
  rmSync(cwd, { recursive: true, force: true });
});

// A failed test must not leave the source open: the next copy would rightly refuse it.
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close().catch(() => {});
});

function open(url: string): StorageEngine {
  const storage = createStorageEngine(parseDatabaseUrl(url, { poolSize: 2 }));
  opened.push(storage);
  return storage;
}

async function get(base: string, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${bearer}` } });
  return { status: response.status, body: await response.text() };
}

async function publicTables(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ tablename: string }>(
      "select tablename from pg_tables where schemaname = 'public' order by 1",
    );
    return rows.map((r) => r.tablename);
  } finally {
    await client.end();
  }
}

async function rowCount(storage: StorageEngine, table: string): Promise<number> {
  const { rows } = await sql<{ n: number | string }>`select count(*) as n from ${sql.id(table)}`.execute(
    storage.db,
  );
  return Number(rows[0]?.n);
}

interface Listed {
  readonly id: string;
  readonly displayName: string;
  readonly lastSyncStatus: string;
}

beforeAll(async () => {
  bearer = await mintToken({ tenantId: demoTenantId, roles: [roles.readWrite] });
  const demo = await startServeProcess(['--demo'], { env, cwd });
  running.push(demo);
  const hook = await fetch(`${demo.url}/vppd/v1/alerts/webhooks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify({ url: 'https://hooks.example.com/vppd' }),
  });
  expect(hook.status).toBe(201);
  // Settled: every token but the large (slow) one and the deferred one finished its first sync.
  await vi.waitFor(
    async () => {
      const list = JSON.parse((await get(demo.url, '/beta/deviceAppManagement/vppTokens')).body) as {
        value: Listed[];
      };
      // The large one may still be syncing (it takes ~30 s), the deferred one has not started.
      const mayWait = new Set(
        demoTokens
          .filter((d) => d.locationId === 'large' || d.firstSync === 'deferred')
          .map((d) => d.displayName),
      );
      const pending = list.value.filter(
        (t) =>
          (t.lastSyncStatus === 'inProgress' || t.lastSyncStatus === 'none') && !mayWait.has(t.displayName),
      );
      if (list.value.length !== demoTokens.length || pending.length > 0) {
        throw new Error(`not settled: ${JSON.stringify(list.value.map((t) => t.lastSyncStatus))}`);
      }
    },
    { timeout: 60_000, interval: 200 },
  );
  // The alert scanner (every 15 s) turned the failed syncs into alerts for the webhook.
  await vi.waitFor(
    () => {
      const file = new Database(sqliteFile, { readonly: true });
      try {
        const { n } = file.prepare('select count(*) as n from alert_outbox').get() as { n: number };
        if (n === 0) throw new Error('no alert queued yet');
      } finally {
        file.close();
      }
    },
    { timeout: 45_000, interval: 250 },
  );
  pgUrl = await createPostgresDatabase();
}, 150_000);

describe('vppd db copy', () => {
  it('refuses while vppd has the SQLite file open, and leaves the target untouched', async () => {
    const result = await runVppd(['db', 'copy', '--from', sqliteFile, '--to', pgUrl]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'vppd: db copy: the source database is open in another process (a running vppd?): stop it first\n',
    );
    expect(await publicTables(pgUrl)).toEqual([]);
    // The demo kept working meanwhile.
    expect((await get(running[0]?.url ?? '', '/beta/deviceAppManagement/vppTokens')).status).toBe(200);
    expect(await running[0]?.stop('SIGTERM')).toBe(0);
  });

  it('copies every table into an empty PostgreSQL database and prints what it did', async () => {
    const result = await runVppd(['db', 'copy', '--from', `sqlite:${sqliteFile}`, '--to', pgUrl]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // Every table of the migrated schema, discovered (not listed): one line each with its rows.
    const source = open(`sqlite:${sqliteFile}`);
    const tables = (await source.describeTables())
      .map((t) => t.name)
      .filter((n) => n !== migrationTableNames.migrations && n !== migrationTableNames.lock);
    const printed = new Map(
      result.stdout
        .split('\n')
        .map((line) => /^(\w+)\s+(\d+)\s+([0-9a-f]{16})\s/.exec(line))
        .filter((m) => m !== null)
        .map((m) => [m[1] as string, Number(m[2])]),
    );
    expect([...printed.keys()].sort()).toEqual([...tables].sort());
    const target = open(pgUrl);
    for (const table of tables) {
      const rows = await rowCount(source, table);
      expect({ table, rows: printed.get(table) }).toEqual({ table, rows });
      expect({ table, rows: await rowCount(target, table) }).toEqual({ table, rows });
    }
    // The demo's data is all there: tokens, history, snapshots with chunked licenses, staging of the
    // interrupted large sync, the webhook and its outbox.
    for (const table of [
      'vpp_tokens',
      'sync_runs',
      'license_snapshots',
      'license_assignment_chunks',
      'license_runs',
      'alert_webhooks',
      'alert_outbox',
      'sync_jobs',
    ]) {
      expect({ table, empty: (await rowCount(source, table)) === 0 }).toEqual({ table, empty: false });
    }
    expect(result.stdout).toMatch(/^schema 0\d{3}_\w+; target migrated with \d+ migration\(s\) first$/m);
    expect(result.stdout).toMatch(
      /^copied \d+ tables, \d+ rows in [\d.]+ s: row counts and checksums match on both sides; committed$/m,
    );
    expect(result.stdout).toMatch(/^license_runs\s+\d+\s+[0-9a-f]{16}\s+run_key$/m);
    // Sealed sTokens byte for byte.
    const sealed = (s: StorageEngine) =>
      s.db
        .selectFrom('vpp_tokens')
        .select(['id', 'stoken_ciphertext', 'stoken_iv', 'stoken_tag', 'stoken_fingerprint'])
        .orderBy('id')
        .execute();
    expect(await sealed(target)).toEqual(await sealed(source));
    await source.close();
    await target.close();
  });

  it('copies back from PostgreSQL to a new SQLite file with the same checksums', async () => {
    const back = join(cwd, 'back.db');
    const there = await runVppd(['db', 'copy', '--from', `sqlite:${sqliteFile}`, '--to', `sqlite:${back}`]);
    const fromPostgres = await runVppd(['db', 'copy', '--from', pgUrl, '--to', join(cwd, 'back2.db')]);
    expect(there.code).toBe(0);
    expect(fromPostgres.stderr).toBe('');
    expect(fromPostgres.code).toBe(0);
    const lines = (out: string) => out.split('\n').filter((l) => /^\w+\s+\d+\s+[0-9a-f]{16}\s/.test(l));
    // Same tables, rows and checksums whichever engine read them.
    expect(lines(fromPostgres.stdout).map((l) => l.replace(/\s+\S+$/, ''))).toEqual(
      lines(there.stdout).map((l) => l.replace(/\s+\S+$/, '')),
    );
  });

  it('pages any batch size to the same checksums (storage level)', async () => {
    const url = await createPostgresDatabase();
    const source = open(`sqlite:${sqliteFile}`);
    const target = open(url);
    const copied: string[] = [];
    const result = await copyDatabase(source, target, {
      batchRows: 7,
      onTableCopied: (table) => copied.push(table),
    });
    await source.close();
    const reference = await runVppd(['db', 'copy', '--from', pgUrl, '--to', join(cwd, 'back3.db')]);
    for (const table of result.tables) {
      expect(reference.stdout).toContain(`${table.checksum.slice(0, 16)}`);
    }
    expect(copied).toEqual(result.tables.map((t) => t.table));
    // Referenced tables come first.
    const order = result.tables.map((t) => t.table);
    expect(order.indexOf('tenants')).toBeLessThan(order.indexOf('vpp_tokens'));
    expect(order.indexOf('vpp_tokens')).toBeLessThan(order.indexOf('sync_runs'));
    expect(order.indexOf('license_runs')).toBeLessThan(order.indexOf('license_assignment_chunks'));
  });

  // Last but one: a running vppd (even --role api) delivers alerts, so the outbox rows move on.
  it('serves byte-identical Graph and /vppd/v1 answers from the copy', async () => {
    const args = ['--role', 'api', '--public-url', publicUrl];
    const onSqlite = await startServeProcess([...args, '--database', `sqlite:${sqliteFile}`], { env, cwd });
    running.push(onSqlite);
    const onPostgres = await startServeProcess([...args, '--database', pgUrl], { env, cwd });
    running.push(onPostgres);
    const base = '/beta/deviceAppManagement/vppTokens';
    const list = JSON.parse((await get(onSqlite.url, base)).body) as { value: Listed[] };
    expect(list.value).toHaveLength(demoTokens.length);
    const paths = [
      base,
      '/v1.0/deviceAppManagement/vppTokens',
      `${base}?$top=3`,
      `${base}?$top=2&$skip=3`,
      `${base}?$count=true&$top=5`,
      `${base}?$orderby=displayName desc`,
      `${base}?$orderby=lastSyncDateTime desc,displayName&$top=4`,
      `${base}?$orderby=state&$select=id,displayName,state`,
      `${base}?$filter=lastSyncStatus eq 'failed'`,
      `${base}?$filter=state eq 'valid'&$select=id,organizationName,lastSyncStatus`,
      `${base}?$filter=startswith(displayName,'Brockway')&$orderby=displayName`,
      `${base}/$count`,
      '/beta/deviceAppManagement/mobileApps',
      "/beta/deviceAppManagement/mobileApps?$filter=isof('microsoft.graph.iosVppApp')&$top=5",
      '/vppd/v1/alerts/webhooks',
      ...list.value.flatMap((t) => [
        `${base}/${t.id}`,
        `${base}/${t.id}?$select=displayName,state,lastSyncStatus`,
        `/vppd/v1/tokens/${t.id}/sync`,
        `/vppd/v1/tokens/${t.id}/syncs?top=20`,
      ]),
    ];
    // The paging links and app ids lead further: follow them too.
    const seen = new Set<string>();
    const queue = [...paths];
    let compared = 0;
    while (queue.length > 0 && compared < 200) {
      const path = queue.shift() as string;
      if (seen.has(path)) continue;
      seen.add(path);
      const [a, b] = await Promise.all([get(onSqlite.url, path), get(onPostgres.url, path)]);
      expect({ path, status: b.status, body: b.body }).toEqual({ path, status: a.status, body: a.body });
      expect({ path, status: a.status }).toEqual({ path, status: 200 });
      compared++;
      const next = /"@odata\.nextLink":"([^"]+)"/.exec(a.body)?.[1];
      if (next !== undefined) queue.push(next.replace(publicUrl, ''));
      if (path === '/beta/deviceAppManagement/mobileApps') {
        const apps = (JSON.parse(a.body) as { value: { id: string; '@odata.type': string }[] }).value;
        for (const app of apps.slice(0, 4)) {
          const cast = app['@odata.type'].replace(/^#/, '');
          queue.push(`/beta/deviceAppManagement/mobileApps/${app.id}`);
          queue.push(`/beta/deviceAppManagement/mobileApps/${app.id}/${cast}/assignedLicenses?$top=50`);
        }
      }
    }
    expect(compared).toBeGreaterThan(40);
    await onSqlite.stop();
    await onPostgres.stop();
  });

  it('a copied token syncs on PostgreSQL with the same key: sTokens open, new serial keys follow the copied ones', async () => {
    sim = await startDemoAppleSim({ dataDir: join(cwd, 'data') });
    const server = await startServeProcess(['--database', pgUrl, '--apple-url', sim.baseUrl], {
      env: { ...env, VPPD_APPLE_METADATA_URL: sim.metadataUrl },
      cwd,
    });
    running.push(server);
    const base = '/beta/deviceAppManagement/vppTokens';
    const list = JSON.parse((await get(server.url, base)).body) as { value: Listed[] };
    const healthy = list.value.find((t) => t.displayName === demoTokens[0]?.displayName);
    expect(healthy?.lastSyncStatus).toBe('completed');
    const before = JSON.parse(
      (await get(server.url, `/vppd/v1/tokens/${healthy?.id}/syncs?top=50`)).body,
    ) as {
      value: unknown[];
    };
    const sync = await fetch(`${server.url}${base}/${healthy?.id}/syncLicenses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}` },
    });
    expect(sync.status).toBeLessThan(300);
    await vi.waitFor(
      async () => {
        const history = JSON.parse(
          (await get(server.url, `/vppd/v1/tokens/${healthy?.id}/syncs?top=50`)).body,
        ) as { value: { outcome?: string; status?: string }[] };
        expect(history.value.length).toBe(before.value.length + 1);
        expect(JSON.stringify(history.value[0])).toMatch(/completed/);
      },
      { timeout: 30_000, interval: 200 },
    );
    await server.stop();
  });
});

describe('vppd db copy refuses', () => {
  it('a target that is not empty', async () => {
    const target = open(pgUrl);
    const before = await rowCount(target, 'vpp_tokens');
    const result = await runVppd(['db', 'copy', '--from', sqliteFile, '--to', pgUrl]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^vppd: db copy: the target database is not empty \(table \w+ has rows\): copy into an empty database\n$/,
    );
    expect(await rowCount(target, 'vpp_tokens')).toBe(before);
  });

  it('a checksum that differs, rolling back every row', async () => {
    const url = await createPostgresDatabase();
    const target = open(url);
    await migrateToLatest(target);
    // A trigger the copy does not know about changes what lands in the target.
    await sql`create function vppd_test_alter() returns trigger language plpgsql as $$
      begin new.display_name := new.display_name || ' (altered)'; return new; end $$`.execute(target.db);
    await sql`create trigger vppd_test_alter before insert on vpp_tokens for each row execute function vppd_test_alter()`.execute(
      target.db,
    );
    const result = await runVppd(['db', 'copy', '--from', sqliteFile, '--to', url]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^vppd: db copy: copy of vpp_tokens failed verification: checksum [0-9a-f]{12} in the target, [0-9a-f]{12} in the source; nothing was committed\n$/,
    );
    for (const table of ['tenants', 'vpp_tokens', 'sync_runs', 'license_assignment_chunks']) {
      expect({ table, rows: await rowCount(target, table) }).toEqual({ table, rows: 0 });
    }
  });

  it('a source at an older or a newer schema, and a file that is not a vppd database', async () => {
    const older = join(cwd, 'older.db');
    const old = open(`sqlite:${older}`);
    const migrator: Migrator = createMigrator(old);
    expect((await migrator.migrateTo('0003_vpp_token_list_indexes')).error).toBeUndefined();
    await old.close();
    const url = await createPostgresDatabase();
    const olderResult = await runVppd(['db', 'copy', '--from', older, '--to', url]);
    expect(olderResult.code).toBe(1);
    expect(olderResult.stderr).toMatch(
      /^vppd: db copy: the source database's schema is older than this vppd's \(migration 0004_sync_progress not applied\): run this vppd on it once first \(vppd serve migrates it at start-up\), then copy\n$/,
    );

    const newer = join(cwd, 'newer.db');
    copyFileSync(sqliteFile, newer);
    const future = open(`sqlite:${newer}`);
    await sql`insert into vppd_migrations (name, timestamp) values ('9999_from_the_future', '2030-01-01T00:00:00.000Z')`.execute(
      future.db,
    );
    await future.close();
    const newerResult = await runVppd(['db', 'copy', '--from', newer, '--to', url]);
    expect(newerResult.code).toBe(1);
    expect(newerResult.stderr).toBe(
      'vppd: db copy: the source database has migration 9999_from_the_future, which this vppd does not know: copy it with the vppd version that wrote it\n',
    );

    const stranger = join(cwd, 'stranger.db');
    const other = open(`sqlite:${stranger}`);
    await sql`create table notes (id integer primary key, body text)`.execute(other.db);
    await other.close();
    const strangerResult = await runVppd(['db', 'copy', '--from', stranger, '--to', url]);
    expect(strangerResult.code).toBe(1);
    expect(strangerResult.stderr).toBe(
      'vppd: db copy: the source is not a vppd database (it has no vppd_migrations table)\n',
    );
    // None of them touched the target.
    expect(await publicTables(url)).toEqual([]);
  });

  it('a missing source file (without creating it) and bad usage, with exit 2', async () => {
    const url = await createPostgresDatabase();
    const missing = join(cwd, 'nowhere', 'vppd.db');
    const result = await runVppd(['db', 'copy', '--from', missing, '--to', url]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`vppd: db copy: --from: ${missing} does not exist\n`);
    const noTarget = await runVppd(['db', 'copy', '--from', sqliteFile]);
    expect(noTarget).toMatchObject({ code: 2, stderr: 'vppd: --to: required\n' });
    const memory = await runVppd(['db', 'copy', '--from', 'sqlite::memory:', '--to', url]);
    expect(memory).toMatchObject({
      code: 2,
      stderr: 'vppd: --from: an in-memory database cannot be copied\n',
    });
    const same = await runVppd(['db', 'copy', '--from', url, '--to', url]);
    expect(same).toMatchObject({ code: 2, stderr: 'vppd: --from and --to name the same database\n' });
    const badUrl = await runVppd([
      'db',
      'copy',
      '--from',
      sqliteFile,
      '--to',
      'postgres://u:hunter2@h/db?x=1',
    ]);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toMatch(/^vppd: --to: postgres:\/\/ URL parameter x is not supported/);
    expect(badUrl.stderr).not.toContain('hunter2');
  });
});
