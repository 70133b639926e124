import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { storageMigrations } from '../src/storage/migrations/storage-migrations.js';
import { createStorageEngine, openStorage, parseDatabaseUrl } from '../src/storage/open-database.js';
import { postgresTlsOptions } from '../src/storage/postgres/config.js';
import { postgresDdl } from '../src/storage/postgres/ddl.js';
import { testConfig } from './helpers/graph-test-app.js';
import {
  createPostgresDatabase,
  openTestStorage,
  postgresServerUrl,
  storageEngines,
} from './helpers/storage-engines.js';

describe.each(storageEngines)('storage engine %s', (kind) => {
  it('opens, migrates and answers', async () => {
    const storage = await openTestStorage(kind);
    try {
      expect(storage.kind).toBe(kind);
      const { rows } = await sql<{ n: number }>`select count(*) as n from vppd_migrations`.execute(
        storage.db,
      );
      expect(Number(rows[0]?.n)).toBe(Object.keys(storageMigrations(storage.ddl)).length);
    } finally {
      await storage.close();
    }
  });

  it('compares and sorts text byte by byte, and folds case for ASCII only', async () => {
    const storage = await openTestStorage(kind);
    try {
      const names = ['b', 'B', 'a', 'Z', 'é', 'É', '_', 'a b', 'ab'];
      for (const [i, name] of names.entries()) {
        await storage.db
          .insertInto('tenants')
          .values({ id: name, created_at: `2026-01-01T00:00:0${i}.000Z` })
          .execute();
      }
      const sorted = await storage.db.selectFrom('tenants').select('id').orderBy('id').execute();
      expect(sorted.map((r) => r.id)).toEqual([...names].sort());
      const lower = await sql<{ l: string }>`select lower(id) as l from tenants where id = 'É'`.execute(
        storage.db,
      );
      expect(lower.rows[0]?.l).toBe('É');
      const below = await storage.db.selectFrom('tenants').select('id').where('id', '<', 'a').execute();
      expect(below.map((r) => r.id).sort()).toEqual(['B', 'Z', '_']);
    } finally {
      await storage.close();
    }
  });

  it('classifies unique and foreign-key violations', async () => {
    const storage = await openTestStorage(kind);
    try {
      await storage.db.insertInto('tenants').values({ id: 't', created_at: 'x' }).execute();
      const duplicate = await storage.db
        .insertInto('tenants')
        .values({ id: 't', created_at: 'x' })
        .execute()
        .catch((e: unknown) => e);
      expect(storage.isUniqueViolation(duplicate)).toBe(true);
      expect(storage.isForeignKeyViolation(duplicate)).toBe(false);
      const orphan = await storage.db
        .insertInto('alert_webhooks' as never)
        .values({
          id: 'w',
          tenant_id: 'missing',
          url: 'u',
          events: '[]',
          secret_ciphertext: 'c',
          secret_iv: 'i',
          secret_tag: 't',
          created_at: 'x',
        } as never)
        .execute()
        .catch((e: unknown) => e);
      expect(storage.isForeignKeyViolation(orphan)).toBe(true);
      expect(storage.isUniqueViolation(orphan)).toBe(false);
    } finally {
      await storage.close();
    }
  });
});

describe('PostgreSQL migrations', () => {
  it('run once when several processes start at once on an empty database', async () => {
    const config = parseDatabaseUrl(await createPostgresDatabase(), { poolSize: 2 });
    const opened = await Promise.all(Array.from({ length: 4 }, () => openStorage(config)));
    try {
      const { rows } = await sql<{
        n: number;
      }>`select count(*) as n from vppd_migrations`.execute(opened[0]?.db as never);
      expect(Number(rows[0]?.n)).toBe(Object.keys(storageMigrations(postgresDdl)).length);
    } finally {
      for (const storage of opened) await storage.close();
    }
  });

  it('work on a pool of one connection (the lock has a connection of its own)', async () => {
    const storage = await openStorage(parseDatabaseUrl(await createPostgresDatabase(), { poolSize: 1 }));
    await storage.close();
  });

  it('fail start-up with a connection error, never with the password, when the server is not there', async () => {
    const storage = createStorageEngine(
      parseDatabaseUrl('postgres://vppd:secret-pw-42@127.0.0.1:1/vppd?sslmode=disable'),
    );
    try {
      const error = await sql`select 1`.execute(storage.db).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect(String((error as Error).message)).not.toContain('secret-pw-42');
    } finally {
      await storage.close();
    }
  });
});

describe('PostgreSQL TLS against the test server (certificate for the host vppd-test-db only)', () => {
  const ca = () => process.env.VPPD_TEST_POSTGRES_CA as string;
  /** The test server's URL with `query`; answers whether the session is encrypted, or the error. */
  const connect = async (query: string): Promise<boolean | Error> => {
    const url = new URL(postgresServerUrl());
    const storage = createStorageEngine(parseDatabaseUrl(`${url.toString()}?${query}`, { poolSize: 1 }));
    try {
      const { rows } = await sql<{
        ssl: boolean;
      }>`select ssl from pg_stat_ssl where pid = pg_backend_pid()`.execute(storage.db);
      return rows[0]?.ssl === true;
    } catch (error) {
      return error as Error;
    } finally {
      await storage.close();
    }
  };

  it('disable: plain TCP', async () => {
    expect(await connect('sslmode=disable')).toBe(false);
  });

  it('require: encrypted, the certificate not checked', async () => {
    expect(await connect('sslmode=require')).toBe(true);
  });

  it('verify-ca: encrypted when the certificate chains to sslrootcert, whatever the host name', async () => {
    expect(await connect(`sslmode=verify-ca&sslrootcert=${ca()}`)).toBe(true);
    expect(await connect('sslmode=verify-ca')).toBeInstanceOf(Error);
  });

  it('verify-full: refuses a certificate that does not name the host', async () => {
    const refused = await connect(`sslmode=verify-full&sslrootcert=${ca()}`);
    expect(refused).toBeInstanceOf(Error);
    expect(String(refused)).toMatch(/vppd-test-db|altnames|host/i);
  });
});

describe('database URLs', () => {
  it('parse postgres:// and postgresql:// with the password kept out of the shown URL', () => {
    const config = parseDatabaseUrl(
      'postgres://vppd:p%40ss%2Fw0rd@db.example:5433/vppd_prod?sslmode=verify-full',
    );
    expect(config).toMatchObject({
      kind: 'postgres',
      url: 'postgres://vppd:***@db.example:5433/vppd_prod?sslmode=verify-full',
      poolSize: 10,
      sslMode: 'verify-full',
      connection: {
        host: 'db.example',
        port: 5433,
        user: 'vppd',
        password: 'p@ss/w0rd',
        database: 'vppd_prod',
      },
    });
    expect(JSON.stringify({ ...config, connection: undefined })).not.toContain('p@ss');
    expect(parseDatabaseUrl('postgresql://db.example/vppd', { poolSize: 3 })).toMatchObject({
      kind: 'postgres',
      poolSize: 3,
      sslMode: 'disable',
      connection: { host: 'db.example', port: 5432, user: undefined, password: undefined },
    });
    expect(parseDatabaseUrl('postgres://u@/vppd?host=/run/postgresql')).toMatchObject({
      connection: { host: '/run/postgresql', database: 'vppd' },
    });
  });

  it('refuse sslmodes the driver cannot honour and unknown parameters, naming the setting', () => {
    expect(() => testConfig({ database: 'postgres://h/db?sslmode=prefer' })).toThrow(
      /VPPD_DATABASE_URL.*sslmode=prefer is not supported/,
    );
    expect(() => testConfig({ database: 'postgres://h/db?connect_timeout=3' })).toThrow(
      /VPPD_DATABASE_URL.*connect_timeout is not supported/,
    );
    expect(() => testConfig({ database: 'mysql://h/db' })).toThrow(/VPPD_DATABASE_URL/);
  });

  it('take the pool size from VPPD_DATABASE_POOL (1-1000)', () => {
    const config = testConfig({ database: 'postgres://h/db', databasePool: '25' });
    expect(config.database).toMatchObject({ kind: 'postgres', poolSize: 25 });
    expect(() => testConfig({ database: 'postgres://h/db', databasePool: '0' })).toThrow(
      /VPPD_DATABASE_POOL/,
    );
    expect(() => parseConfig({ database: 'postgres://h/db', databasePool: 'many' })).toThrow(
      /VPPD_DATABASE_POOL/,
    );
  });

  it('map sslmode to TLS options with libpq meaning', () => {
    const tls = (mode: string, extra = '') =>
      postgresTlsOptions(parseDatabaseUrl(`postgres://h/db?sslmode=${mode}${extra}`) as never);
    expect(tls('disable')).toBe(false);
    expect(tls('require')).toEqual({ rejectUnauthorized: false });
    const verifyCa = tls('verify-ca');
    expect(verifyCa).toMatchObject({ rejectUnauthorized: true });
    expect(verifyCa && typeof verifyCa.checkServerIdentity).toBe('function');
    expect(tls('verify-full')).toEqual({ rejectUnauthorized: true });
  });
});
