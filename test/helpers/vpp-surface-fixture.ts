// A vppd app over a real socket, wired to the Apple simulator; tokens are synced by the real sync
// engine (`POST .../syncLicenses`, then the worker runs the job).
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { type AppleClient, createAppleClient } from '../../src/apple/apple-client.js';
import { type AppleSim, type AppleSimOptions, startAppleSim } from '../../src/apple-sim/apple-sim.js';
import { type AppContext, type ContextOverrides, createContext } from '../../src/context.js';
import { buildApp } from '../../src/server/app.js';
import type { SyncWorker } from '../../src/sync/sync-worker.js';
import { createFakeClock, type FakeClock } from './fake-clock.js';
import { testConfig } from './graph-test-app.js';
import { mintToken, roles } from './jwt.js';

export const surfaceTenantA = 'a5a5a5a5-1111-4111-8111-111111111111';
export const surfaceTenantB = 'b5b5b5b5-2222-4222-8222-222222222222';

export interface SurfaceFixture {
  readonly sim: AppleSim;
  readonly app: FastifyInstance;
  readonly context: AppContext;
  readonly clock: FakeClock;
  /** `http://127.0.0.1:<port>` of the listening app. */
  readonly origin: string;
  /** A separate Apple client for reading the simulator's truth in assertions. */
  readonly appleTruth: AppleClient;
  readonly auth: { readonly a: string; readonly b: string; readonly aReadOnly: string };
  /** Calls vppd over HTTP; `auth` is the Authorization header value. */
  call(
    method: string,
    path: string,
    auth: string,
    body?: unknown,
  ): Promise<{ status: number; body: unknown; text: string }>;
  /** Uploads a simulator location's token through `POST /vppTokens`; returns the token id. */
  upload(tenantAuth: string, locationId: string): Promise<string>;
  /** Syncs a token for real (`POST syncLicenses`, worker polled until idle); throws unless completed. */
  syncFromSim(tenantId: string, tokenId: string): Promise<void>;
  close(): Promise<void>;
}

export interface SurfaceFixtureOptions {
  readonly sim?: AppleSimOptions;
  /** Database URL (default in-memory SQLite). */
  readonly database?: string;
  /** License-operation timings (default: the product's; the fixture's clock is driven by hand). */
  readonly licenseOperations?: ContextOverrides['licenseOperations'];
}

/** Starts the simulator and vppd (listening on a free port) with immediate sleeps and a fake clock. */
export async function startSurfaceFixture(options: SurfaceFixtureOptions = {}): Promise<SurfaceFixture> {
  const sim = await startAppleSim({ seed: 'vpp-surface', rateLimit: false, ...options.sim });
  const clock = createFakeClock();
  const immediate = async () => {};
  const apple = createAppleClient({
    baseUrl: sim.baseUrl,
    metadataUrl: sim.metadataUrl,
    rateLimiter: null,
    sleep: immediate,
  });
  const appleTruth = createAppleClient({ baseUrl: sim.baseUrl, rateLimiter: null, sleep: immediate });
  const config = testConfig({
    appleUrl: sim.baseUrl,
    appleMetadataUrl: sim.metadataUrl,
    // The fixture's clock runs for months; its bearer tokens (minted once) live a year.
    jwtMaxLifetime: '365d',
    ...(options.database ? { database: options.database } : {}),
  });
  const context = await createContext(config, {
    clock: clock.now,
    logger: pino({ level: 'silent' }),
    apple,
    sleep: immediate,
    sync: { pollMs: 20, leaseMs: 30_000, heartbeatMs: 50 },
    ...(options.licenseOperations ? { licenseOperations: options.licenseOperations } : {}),
  });
  const app = buildApp(context);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const origin = `http://127.0.0.1:${address.port}`;
  const now = clock.now();
  const bearer = async (tenantId: string, permission: string) =>
    `Bearer ${await mintToken({ tenantId, roles: [permission], now, expiresIn: 86_400 * 365 })}`;
  const auth = {
    a: await bearer(surfaceTenantA, roles.readWrite),
    b: await bearer(surfaceTenantB, roles.readWrite),
    aReadOnly: await bearer(surfaceTenantA, roles.read),
  };

  const call: SurfaceFixture['call'] = async (method, path, authorization, body) => {
    const response = await fetch(`${origin}${path}`, {
      method,
      headers: {
        authorization,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: response.status, body: parsed, text };
  };

  let workerPromise: Promise<SyncWorker> | undefined;

  return {
    sim,
    app,
    context,
    clock,
    origin,
    appleTruth,
    auth,
    call,

    async upload(tenantAuth, locationId) {
      const response = await call('POST', '/beta/deviceAppManagement/vppTokens', tenantAuth, {
        token: sim.tokenFor(locationId),
        displayName: `Token of ${locationId}`,
        appleId: `vpp-${locationId}@example.com`,
      });
      if (response.status !== 201) throw new Error(`upload failed: ${response.status} ${response.text}`);
      return (response.body as { id: string }).id;
    },

    async syncFromSim(tenantId, tokenId) {
      const tenantAuth = tenantId === surfaceTenantA ? auth.a : auth.b;
      const response = await call(
        'POST',
        `/beta/deviceAppManagement/vppTokens/${tokenId}/syncLicenses`,
        tenantAuth,
      );
      if (response.status !== 200) throw new Error(`syncLicenses: ${response.status} ${response.text}`);
      workerPromise ??= context.sync.createWorker();
      const worker = await workerPromise;
      await worker.poll();
      await worker.idle();
      const token = await context.tokens.get(tenantId, tokenId);
      if (token?.lastSyncStatus !== 'completed') {
        throw new Error(`the sync of ${tokenId} ended ${token?.lastSyncStatus ?? 'without a token'}`);
      }
    },

    async close() {
      await app.close();
      await context.dispose();
      await apple.close();
      await appleTruth.close();
      await sim.close();
    },
  };
}

/** Reads every page of an Apple paged call into one array. */
export async function allRecords<T>(pages: AsyncIterable<{ readonly records: readonly T[] }>): Promise<T[]> {
  const out: T[] = [];
  for await (const page of pages) out.push(...page.records);
  return out;
}
