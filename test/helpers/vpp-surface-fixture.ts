// A vppd app over a real socket, wired to the Apple simulator, plus a test-only "sync" that fills a
// token's license snapshot through the real storage path (sync job store: request → claim → stage
// rows in the license store → commit). Only the orchestration of the Apple calls stands in for the
// sync engine, which lands separately; the data is the simulator's, fetched with vppd's Apple client.
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { type AppleClient, createAppleClient } from '../../src/apple/apple-client.js';
import type { AppleAsset, AppleAssignment } from '../../src/apple/apple-types.js';
import { type AppleSim, type AppleSimOptions, startAppleSim } from '../../src/apple-sim/apple-sim.js';
import { type AppContext, createContext } from '../../src/context.js';
import { buildApp } from '../../src/graph/app.js';
import { createLicenseStore } from '../../src/storage/license-store.js';
import { createSyncJobStore } from '../../src/storage/sync-job-store.js';
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
  /** Fills the token's current snapshot from the simulator (see the file comment). */
  syncFromSim(tenantId: string, tokenId: string): Promise<void>;
  close(): Promise<void>;
}

export interface SurfaceFixtureOptions {
  readonly sim?: AppleSimOptions;
  /** Database URL (default in-memory SQLite). */
  readonly database?: string;
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
    ...(options.database ? { database: options.database } : {}),
  });
  const context = await createContext(config, {
    clock: clock.now,
    logger: pino({ level: 'silent' }),
    apple,
    sleep: immediate,
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

  const jobs = createSyncJobStore({ db: context.db, newId: () => crypto.randomUUID() });
  const licenses = createLicenseStore({ db: context.db });

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
      const now = clock.now();
      const requested = await jobs.requestSync(tenantId, tokenId, 'api', now);
      if (requested.effect === 'notFound') throw new Error('token not found');
      const claimed = await jobs.claimNext({
        workerId: 'vpp-surface-test',
        now,
        leaseMs: 600_000,
        maxActive: 100,
        maxAttempts: 2,
        newRunId: () => crypto.randomUUID(),
      });
      if (claimed?.kind !== 'claimed' || claimed.claim.job.tokenId !== tokenId) {
        throw new Error('could not claim the sync job');
      }
      const { claim } = claimed;
      const sToken = await context.tokens.readSToken(tenantId, tokenId);
      if (sToken === undefined) throw new Error('no sToken');
      const client = await apple.getClientConfig(sToken);
      const run = { runId: claim.runId, tenantId, tokenId };
      const assets: AppleAsset[] = [];
      let versionId = '';
      let pages = 0;
      for await (const page of apple.assets(sToken)) {
        assets.push(...page.records);
        pages += 1;
      }
      await licenses.insertAssets(run, assets);
      let seq = 0;
      for await (const page of apple.assignments(sToken)) {
        versionId = page.versionId;
        pages += 1;
        const records: AppleAssignment[] = [...page.records];
        await licenses.insertAssignments(claim.runId, seq, records);
        seq += records.length;
      }
      const country = client.countryISO2ACode ?? 'us';
      const platform = client.defaultPlatform ?? 'volumestore';
      const metadata = await apple.lookupMetadata(
        assets.map((a) => a.adamId),
        { platform, country },
      );
      await licenses.upsertMetadata(
        [...metadata.values()].map((m) => ({
          adamId: m.adamId,
          name: m.name,
          bundleId: m.bundleId,
          kind: m.kind,
          artworkUrl: m.artworkUrl,
          deviceFamilies: m.deviceFamilies,
        })),
        { platform, country },
        now,
      );
      const sum = (f: (a: AppleAsset) => number) => assets.reduce((n, a) => n + f(a), 0);
      await jobs.commit(
        claim,
        {
          locationUid: client.uId,
          locationName: client.locationName,
          countryOrRegion: client.countryISO2ACode?.toLowerCase() ?? null,
          expirationDateTime: client.tokenExpirationDate ? new Date(client.tokenExpirationDate) : undefined,
          versionId,
          assetCount: assets.length,
          assignmentCount: seq,
          pageCount: pages,
          totalLicenseCount: sum((a) => a.totalCount),
          usedLicenseCount: sum((a) => a.assignedCount),
          availableLicenseCount: sum((a) => a.availableCount),
        },
        clock.now(),
        new Date(clock.now().getTime() + 12 * 3_600_000),
      );
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
