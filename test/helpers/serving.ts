import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { vi } from 'vitest';
import { type AppleSim, defaultSimLocations, startAppleSim } from '../../src/apple-sim/apple-sim.js';
import type { RawSettings } from '../../src/config.js';
import { type RunningServer, type StartServerOptions, startServer } from '../../src/server/start-server.js';
import type { StorageEngineKind } from '../../src/storage/engine.js';
import type { SyncThreadData } from '../../src/sync/sync-thread.js';
import { tenantA, testConfig } from './graph-test-app.js';
import { mintToken, roles } from './jwt.js';
import { testDatabaseUrl } from './storage-engines.js';

// What the tests of a serving vppd (startServer with its background work, over real sockets, against
// the Apple simulator) share: waiting for an observable condition, a free port, a JSON caller with a
// bearer, and the server itself with short loop periods.

export type Json = Record<string, unknown>;

/** Polls `probe` until it returns a value; fails naming `what` after `timeoutMs`. */
export function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  intervalMs = 20,
): Promise<T> {
  return vi.waitFor(
    async () => {
      const value = await probe();
      if (value === undefined) throw new Error(`timed out waiting for ${what}`);
      return value;
    },
    { timeout: timeoutMs, interval: intervalMs },
  );
}

/** A loopback port free a moment ago (for a server whose URL must be known before it starts). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A bearer token of tenant A with read-write permission, as an Authorization header value. */
export async function readWriteBearer(): Promise<string> {
  return `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite] })}`;
}

/** Calls a JSON API with `authorization`; `baseUrl` is asked on every call (a restarted server moves). */
export type ApiCall = (
  method: string,
  path: string,
  body?: unknown,
) => Promise<{ status: number; body: Json }>;

export function apiCaller(baseUrl: () => string, authorization: string): ApiCall {
  return async (method, path, body) => {
    const response = await fetch(`${baseUrl()}${path}`, {
      method,
      headers: { authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: (text === '' ? {} : JSON.parse(text)) as Json };
  };
}

export interface ServingOptions {
  /** The Apple simulator vppd talks to. */
  readonly sim: AppleSim;
  readonly database: string;
  /** Settings over the test configuration (port 0 unless given). */
  readonly settings?: RawSettings;
  /** Over the defaults: background work on, a sync on every token write, silent logs, 20 ms polls. */
  readonly options?: StartServerOptions;
}

/** A serving vppd running its syncs, alerts and notifications, with short loop periods. */
export function startServing({ sim, database, settings, options }: ServingOptions): Promise<RunningServer> {
  return startServer(testConfig({ appleUrl: sim.baseUrl, port: '0', database, ...settings }), {
    runSync: true,
    syncOnTokenWrite: true,
    logger: pino({ level: 'silent' }),
    ...options,
    sync: { pollMs: 20, heartbeatMs: 50, ...options?.sync },
  });
}

/** A logger at `level` whose JSON lines land in `lines` (to check what is, and is not, logged). */
export function capturingLogger(lines: string[], level = 'info') {
  return pino(
    { level },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    }),
  );
}

/** A simulator location whose sync can be held in flight with a latency fault (10 assets, 3 pages). */
export const slowSimLocation = {
  id: 'slow',
  name: 'Slow Annex',
  orgName: 'Slow County',
  countryCode: 'US',
  assets: 10,
  assignments: 300,
  users: 50,
} as const;

/** A serving vppd syncing in a sync thread (VPPD_SYNC_THREADS=1) on a database file, and its simulator. */
export interface SyncThreadServing {
  readonly sim: AppleSim;
  readonly server: RunningServer;
  /** Closes the server and the simulator and deletes the database's folder. */
  close(): Promise<void>;
}

/**
 * {@link startServing} with the sync thread on: a simulator of the default locations and
 * {@link slowSimLocation} (pages of 100, no rate limit), a SQLite file in a new folder or a fresh
 * PostgreSQL database, logs at info into `lines`.
 */
export async function startSyncThreadServing(
  engine: StorageEngineKind,
  seed: string,
  lines: string[],
  options: StartServerOptions = {},
): Promise<SyncThreadServing> {
  const sim = await startAppleSim({
    seed,
    rateLimit: false,
    pageSize: 100,
    locations: [...defaultSimLocations(), slowSimLocation],
  });
  const dir = await mkdtemp(join(tmpdir(), 'vppd-sync-thread-'));
  const server = await startServing({
    sim,
    database: await testDatabaseUrl(engine, `sqlite:${join(dir, 'vppd.db')}`),
    settings: { appleMetadataUrl: sim.metadataUrl, syncThreads: '1' },
    options: { logger: capturingLogger(lines), ...options },
  });
  return {
    sim,
    server,
    async close() {
      await server.close();
      await sim.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * What a sync thread started by hand needs, on the SQLite file `filename` (which the test may make
 * unopenable), with an Apple URL nothing answers: the thread starts, or fails to, without a sync.
 */
export function sqliteSyncThreadData(filename: string): {
  -readonly [K in keyof SyncThreadData]: SyncThreadData[K];
} {
  return {
    database: { kind: 'sqlite', url: `sqlite:${filename}`, filename },
    encryptionKey: new Uint8Array(32),
    apple: {
      baseUrl: 'http://127.0.0.1:9/mdm/v2',
      metadataUrl: undefined,
      connections: 16,
      sharedRate: true,
    },
    settings: { intervalMs: 3_600_000 },
    workerId: 'test:1:abcd',
    logLevel: 'info',
    nice: 10,
  };
}
