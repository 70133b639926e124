import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { type Config, parseConfig, type RawSettings } from '../../src/config.js';
import { type AppContext, createContext } from '../../src/context.js';
import { type BuildAppOptions, buildApp } from '../../src/server/app.js';
import type { StorageEngineKind } from '../../src/storage/engine.js';
import { createFakeClock, createSequentialIds, type FakeClock } from './fake-clock.js';
import { mintToken, roles, testJwtSecret } from './jwt.js';
import { testDatabaseUrl } from './storage-engines.js';

export const tenantA = 'aaaaaaaa-1111-4111-8111-111111111111';
export const tenantB = 'bbbbbbbb-2222-4222-8222-222222222222';
export const testEncryptionKey = Buffer.alloc(32, 42).toString('base64');

/** A test configuration: in-memory SQLite, HS256 with {@link testJwtSecret}. */
export function testConfig(overrides: RawSettings = {}): Config {
  return parseConfig({
    database: 'sqlite::memory:',
    encryptionKey: testEncryptionKey,
    jwtSecret: testJwtSecret,
    logLevel: 'silent',
    ...overrides,
  });
}

export interface TestApp {
  readonly app: FastifyInstance;
  readonly context: AppContext;
  readonly clock: FakeClock;
  /** Bearer tokens for tenant A and B with read-write, and a read-only one for A. */
  readonly auth: { a: string; b: string; aReadOnly: string };
  close(): Promise<void>;
}

export interface TestAppOptions extends BuildAppOptions {
  readonly settings?: RawSettings;
  /** The engine of the fresh database (default SQLite in memory; PostgreSQL: a new database). */
  readonly engine?: StorageEngineKind;
  /** Collects log lines (JSON) when given, to check what is (not) logged. */
  readonly logLines?: string[];
}

/** Builds a real app on a fresh database with a fake clock and sequential ids. */
export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const clock = createFakeClock();
  const config = testConfig({
    ...(options.engine === undefined ? {} : { database: await testDatabaseUrl(options.engine) }),
    ...options.settings,
  });
  const lines = options.logLines;
  const logger = lines
    ? pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) })
    : pino({ level: 'silent' });
  const context = await createContext(config, {
    clock: clock.now,
    newId: createSequentialIds('1d000000'),
    logger,
  });
  const app = buildApp(context, options);
  await app.ready();
  const now = clock.now();
  const bearer = async (tenantId: string, permission: string) =>
    `Bearer ${await mintToken({ tenantId, roles: [permission], now })}`;
  return {
    app,
    context,
    clock,
    auth: {
      a: await bearer(tenantA, roles.readWrite),
      b: await bearer(tenantB, roles.readWrite),
      aReadOnly: await bearer(tenantA, roles.read),
    },
    async close() {
      await app.close();
      await context.dispose();
    },
  };
}
