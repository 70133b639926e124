import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { type AppleClient, createAppleClient } from '../../src/apple/apple-client.js';
import { type AppleHttp, createUndiciHttp } from '../../src/apple/apple-http.js';
import { type AppleSim, type AppleSimOptions, startAppleSim } from '../../src/apple-sim/apple-sim.js';
import type { RawSettings } from '../../src/config.js';
import { type AppContext, createContext } from '../../src/context.js';
import { buildApp } from '../../src/server/app.js';
import type { SyncSettings } from '../../src/sync/sync-service.js';
import type { SyncWorker } from '../../src/sync/sync-worker.js';
import { createFakeClock, type FakeClock } from './fake-clock.js';
import { tenantA, testConfig } from './graph-test-app.js';
import { mintToken, roles } from './jwt.js';

export const tokensPath = '/beta/deviceAppManagement/vppTokens';

/** Options of {@link createSyncHarness}. */
export interface SyncHarnessOptions {
  readonly sim?: AppleSimOptions;
  /** Share a simulator between harnesses (two "processes" on one database). */
  readonly sharedSim?: AppleSim;
  /** `sqlite::memory:` (default) or a file URL shared by several harnesses. */
  readonly database?: string;
  readonly settings?: Partial<SyncSettings>;
  readonly clock?: FakeClock;
  readonly workerId?: string;
  /** Collects log lines (JSON) when given, to check what is (not) logged. */
  readonly logLines?: string[];
  /** Settings over the test configuration (e.g. `webhookAllow` for a local receiver). */
  readonly config?: RawSettings;
  /** Wraps the Apple client's transport (to watch the requests vppd sends and when they are answered). */
  readonly appleHttp?: (http: AppleHttp) => AppleHttp;
}

/**
 * A vppd context and app wired to a real Apple simulator over HTTP, with a fake clock (leases,
 * schedule) and an Apple client whose retries wait ~nothing. Syncs are driven by hand: `syncNow()`
 * polls the worker and waits until every run it started has finished.
 */
export interface SyncHarness {
  readonly sim: AppleSim;
  readonly context: AppContext;
  readonly app: FastifyInstance;
  readonly clock: FakeClock;
  readonly apple: AppleClient;
  readonly auth: string;
  worker(): Promise<SyncWorker>;
  /** Uploads the sim location's token file through the API; answers the created token JSON. */
  upload(
    locationId: string,
    extra?: Record<string, unknown>,
    index?: number,
  ): Promise<Record<string, unknown>>;
  /** POST syncLicenses through the API. */
  requestSync(tokenId: string): Promise<{ statusCode: number; body: Record<string, unknown> }>;
  /** GET the token through the API. */
  token(tokenId: string): Promise<Record<string, unknown>>;
  /** Polls the worker once and waits for the runs it started. */
  syncNow(): Promise<void>;
  close(): Promise<void>;
}

/** Builds a {@link SyncHarness}; close it in afterAll/afterEach. */
export async function createSyncHarness(options: SyncHarnessOptions = {}): Promise<SyncHarness> {
  const sim =
    options.sharedSim ??
    (await startAppleSim({ seed: 'sync-tests', rateLimit: false, pageSize: 100, ...options.sim }));
  const clock = options.clock ?? createFakeClock();
  const lines = options.logLines;
  const logger = lines
    ? pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) })
    : pino({ level: 'silent' });
  const http = options.appleHttp === undefined ? undefined : createUndiciHttp();
  const apple = createAppleClient({
    baseUrl: sim.baseUrl,
    ...(http === undefined || options.appleHttp === undefined ? {} : { http: options.appleHttp(http) }),
    retry: { baseDelayMs: 1, maxDelayMs: 4, internalErrorLongWaitMs: 4, maxAttempts: 4 },
    timeoutMs: 10_000,
    // Apple's 15 requests/s per location is the client's own concern (its tests and bench/sync.ts);
    // here it would only make the suite slower.
    rateLimiter: null,
  });
  const context = await createContext(
    testConfig({
      appleUrl: sim.baseUrl,
      database: options.database ?? 'sqlite::memory:',
      ...options.config,
    }),
    {
      clock: clock.now,
      logger,
      apple,
      syncOnTokenWrite: true,
      random: () => 0.5,
      sync: { pollMs: 20, leaseMs: 30_000, heartbeatMs: 50, ...options.settings },
    },
  );
  const app = buildApp(context);
  await app.ready();
  const auth = `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite], now: clock.now(), expiresIn: 90 * 86_400 })}`;
  let workerPromise: Promise<SyncWorker> | undefined;
  const worker = () => {
    workerPromise ??= context.sync.createWorker();
    return workerPromise;
  };
  return {
    sim,
    context,
    app,
    clock,
    apple,
    auth,
    worker,
    async upload(locationId, extra = {}, index = 0) {
      const response = await app.inject({
        method: 'POST',
        url: tokensPath,
        headers: { authorization: auth },
        payload: { token: sim.tokenFor(locationId, index), ...extra },
      });
      if (response.statusCode !== 201) throw new Error(`upload ${response.statusCode}: ${response.body}`);
      return response.json();
    },
    async requestSync(tokenId) {
      const response = await app.inject({
        method: 'POST',
        url: `${tokensPath}/${tokenId}/syncLicenses`,
        headers: { authorization: auth },
      });
      return { statusCode: response.statusCode, body: response.json() };
    },
    async token(tokenId) {
      const response = await app.inject({
        method: 'GET',
        url: `${tokensPath}/${tokenId}`,
        headers: { authorization: auth },
      });
      if (response.statusCode !== 200) throw new Error(`get ${response.statusCode}: ${response.body}`);
      return response.json();
    },
    async syncNow() {
      const w = await worker();
      await w.poll();
      await w.idle();
    },
    async close() {
      await app.close();
      await context.dispose();
      await apple.close();
      await http?.close();
      if (!options.sharedSim) await sim.close();
    },
  };
}

/** Every record of a paged endpoint, read with plain fetch (independent of vppd's client). */
export async function readAllPages(
  sim: AppleSim,
  locationId: string,
  endpoint: 'assets' | 'assignments',
): Promise<{ records: Record<string, unknown>[]; versionIds: Set<string> }> {
  const records: Record<string, unknown>[] = [];
  const versionIds = new Set<string>();
  for (let pageIndex = 0; ; pageIndex++) {
    const response = await fetch(`${sim.baseUrl}/${endpoint}?pageIndex=${pageIndex}`, {
      headers: { authorization: `Bearer ${sim.tokenFor(locationId)}` },
    });
    const page = (await response.json()) as Record<string, unknown>;
    versionIds.add(String(page.versionId));
    records.push(...((page[endpoint] as Record<string, unknown>[] | undefined) ?? []));
    if (page.nextPageIndex === undefined) break;
  }
  return { records, versionIds };
}

/** An assignment's identity as text, for set comparisons. */
export function assignmentKey(a: {
  adamId?: unknown;
  pricingParam?: unknown;
  serialNumber?: unknown;
  clientUserId?: unknown;
}): string {
  return `${String(a.adamId)}|${String(a.pricingParam)}|${String(a.serialNumber ?? '')}|${String(a.clientUserId ?? '')}`;
}
