import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { type AlertService, type AlertSettings, createAlertService } from './alerts/alert-service.js';
import { createWebhookAddressPolicy } from './alerts/webhook-address-policy.js';
import { createWebhookFetch, type WebhookLookup } from './alerts/webhook-fetch.js';
import { type AppleClient, createAppleClient, realSleep } from './apple/apple-client.js';
import type { Config } from './config.js';
import { type Authenticator, createAuthenticator } from './http/auth/authenticator.js';
import {
  createNotificationService,
  type NotificationService,
  type NotificationSettings,
} from './notifications/notification-service.js';
import { createLogger } from './ops/logging.js';
import { createMetrics, type VppdMetrics } from './ops/metrics.js';
import { createDatabaseRateLimiter } from './storage/apple-rate-store.js';
import type { StorageEngine } from './storage/engine.js';
import { createLicenseReadStore, type LicenseReadStore } from './storage/license-read-store.js';
import { openStorage, type VppdDatabase } from './storage/open-database.js';
import { createTokenCipher } from './storage/token-cipher.js';
import { createVppTokenStore, type VppTokenStore } from './storage/vpp-token-store.js';
import { type BackgroundLane, createBackgroundLane } from './sync/background-lane.js';
import {
  createLicenseOperationService,
  type LicenseOperationService,
  type LicenseOperationSettings,
} from './sync/license-operations.js';
import { createRevokeService, type RevokeService } from './sync/revoke-licenses.js';
import { createSyncService, type SyncService, type SyncSettings } from './sync/sync-service.js';
import { type SyncThreadRestartPolicy, startSyncThread } from './sync/sync-thread.js';
import { createTokenService, type TokenService } from './tokens/token-service.js';

/** Everything that varies between production and tests comes in here. */
export interface ContextOverrides {
  readonly clock?: () => Date;
  /** New GUIDs (token ids, request ids). */
  readonly newId?: () => string;
  readonly randomBytes?: (size: number) => Buffer;
  readonly logger?: Logger;
  /** The fetch used for outgoing HTTP (JWKS today, Apple later). */
  readonly fetch?: typeof fetch;
  /** The Apple Apps and Books client (default: one built from `config.apple`, closed on dispose). */
  readonly apple?: AppleClient;
  /** How background work waits (revoke status polls); default real timers. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Randomness of sync jitter. */
  readonly random?: () => number;
  /** Sync tunables over the configuration's (short leases and polls in tests). */
  readonly sync?: Partial<SyncSettings>;
  /** Creating a token or renewing its sToken requests a sync (on in `vppd serve`). */
  readonly syncOnTokenWrite?: boolean;
  /** Alert loop periods and delivery policy (short ones in tests). */
  readonly alerts?: Partial<AlertSettings>;
  /** License-operation poll intervals and leases (short ones in tests). */
  readonly licenseOperations?: Partial<LicenseOperationSettings>;
  /** Resolves webhook host names, at creation and at connect time (tests inject DNS answers). */
  readonly webhookLookup?: WebhookLookup;
  /** Apple notification loop periods (short ones in tests). */
  readonly notifications?: Partial<NotificationSettings>;
  /** How a sync thread that died is replaced (short back-offs in tests). */
  readonly syncThreadRestart?: Partial<SyncThreadRestartPolicy>;
}

/** The composition root: every service built once from the configuration, disposed once. */
export interface AppContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly clock: () => Date;
  readonly newId: () => string;
  /** The storage engine the configuration names (SQLite or PostgreSQL); stores that need it take it. */
  readonly storage: StorageEngine;
  /** Its database (`storage.db`). */
  readonly db: VppdDatabase;
  readonly tokens: VppTokenStore;
  /** Creating, renewing, deleting and syncing a token, whoever asks (Graph routes, demo seeding). */
  readonly tokenService: TokenService;
  readonly authenticator: Authenticator;
  readonly apple: AppleClient;
  /** Tenant-scoped reads of the current license snapshots (VPP apps, licenses, sums). */
  readonly licenseReads: LicenseReadStore;
  /** Graph's `revokeLicenses`: background revokes recorded in tokenActionResults. */
  readonly revokes: RevokeService;
  /** Graph's `syncLicenses`: sync jobs, license snapshots, the worker and the scheduler. */
  readonly sync: SyncService;
  /** Where sync work takes turns so requests are answered first; the API notes each request here. */
  readonly lane: BackgroundLane;
  /** License operations (associate, disassociate) and their worker (started by `startServer`). */
  readonly licenseOperations: LicenseOperationService;
  /** Prometheus metrics of this context (its own registry), served at `/metrics`. */
  readonly metrics: VppdMetrics;
  /** Webhook endpoints, the alert outbox and its scanner/deliverer loops (started by `startAlerts`). */
  readonly alerts: AlertService;
  /** Apple's notifications: registration (with VPPD_PUBLIC_URL), the receiver's store, the processor. */
  readonly notifications: NotificationService;
  /** Closes the database and everything else the context opened; safe to call twice. */
  dispose(): Promise<void>;
}

/**
 * Builds the services from a validated configuration: logger, database (migrated), stores, auth. It starts
 * nothing: background work (sync worker and scheduler, alert loops, revoke recovery) is started by `startServer`.
 */
export async function createContext(config: Config, overrides: ContextOverrides = {}): Promise<AppContext> {
  const clock = overrides.clock ?? (() => new Date());
  const newId = overrides.newId ?? randomUUID;
  const logger = overrides.logger ?? createLogger(config);
  const storage = await openStorage(config.database, {
    migrate: config.migrate,
    onInsecureMode: (path, mode) =>
      logger.warn(
        { path, mode: `0${mode.toString(8)}` },
        `${path} is accessible to group/others (mode 0${mode.toString(8)}); it holds every tenant's data: chmod it (0700 directory, 0600 files)`,
      ),
  });
  const { db } = storage;
  const metrics = createMetrics({ db, clock, appLicenseSeries: config.metricsAppLicenses });
  const cipher = createTokenCipher(config.encryptionKey, overrides.randomBytes ?? randomBytes);
  const tokens = createVppTokenStore({ storage, cipher, clock });
  const authenticator = createAuthenticator(config.auth, {
    clock,
    maxLifetimeSeconds: config.security.jwtMaxLifetimeSeconds,
    ...(overrides.fetch ? { fetch: overrides.fetch } : {}),
  });
  // Syncs run in a thread of their own (VPPD_SYNC_THREADS=1) unless the database lives in this
  // thread's memory or a test injected what cannot cross threads (a clock, ids, randomness, Apple).
  const syncThread =
    config.sync.threads === 1 &&
    config.database.kind !== 'sqlite-memory' &&
    overrides.apple === undefined &&
    overrides.clock === undefined &&
    overrides.newId === undefined &&
    overrides.random === undefined;
  // Apple's per-location rate is one budget for everything that calls Apple: kept in the database when
  // replicas on other machines share it, or when this process's sync thread calls Apple beside the
  // request thread's revokes and license operations; in this process's memory otherwise.
  const sharedAppleRate = storage.sharedAcrossHosts || syncThread;
  // Sync work (page parsing, staging, commits) takes turns here so requests are answered first.
  const lane = createBackgroundLane();
  const apple =
    overrides.apple ??
    createAppleClient({
      baseUrl: config.apple.baseUrl,
      connections: appleConnections(overrides.sync?.concurrency ?? config.sync.concurrency),
      beforeParse: lane.turn,
      ...(config.apple.metadataUrl ? { metadataUrl: config.apple.metadataUrl } : {}),
      logger: logger.child({ component: 'apple' }),
      observer: metrics.apple,
      ...(sharedAppleRate ? { rateLimiter: createDatabaseRateLimiter(storage, realSleep) } : {}),
    });
  const licenseReads = createLicenseReadStore({ db });
  const revokes = createRevokeService({
    storage,
    tokens,
    licenseReads,
    apple,
    clock,
    sleep: overrides.sleep ?? realSleep,
    logger: logger.child({ component: 'revoke' }),
    // Apple's data changed: a sync brings the snapshot (apps, counts, licenses) up to date.
    onRevokeEnded: async (tenantId, tokenId) => {
      await sync.requestSync(tenantId, tokenId, 'api');
    },
  });
  const syncSettings: SyncSettings = {
    intervalMs: config.syncIntervalMs,
    deltaIntervalMs: config.deltaSyncIntervalMs,
    concurrency: config.sync.concurrency,
    maxActive: config.sync.maxActive,
    leaseMs: config.sync.leaseMs,
    historyRetentionMs: config.sync.historyRetentionMs,
    eventRetentionMs: config.sync.eventRetentionMs,
    ...overrides.sync,
  };
  const sync = createSyncService({
    storage,
    tokens,
    apple,
    clock,
    newId,
    ...(overrides.random ? { random: overrides.random } : {}),
    logger: logger.child({ component: 'sync' }),
    settings: syncSettings,
    ...(overrides.syncOnTokenWrite === undefined ? {} : { syncOnTokenWrite: overrides.syncOnTokenWrite }),
    lane,
    ...(syncThread
      ? {
          startThread: (workerId: string) =>
            startSyncThread({
              data: {
                database: config.database,
                encryptionKey: config.encryptionKey,
                apple: {
                  baseUrl: config.apple.baseUrl,
                  metadataUrl: config.apple.metadataUrl,
                  connections: appleConnections(syncSettings.concurrency ?? config.sync.concurrency),
                  sharedRate: sharedAppleRate,
                },
                settings: syncSettings,
                workerId,
                logLevel: logger.level,
                nice: 10,
              },
              logger,
              observer: metrics.apple,
              onRestart: () => metrics.observeSyncThreadRestart(),
              ...(overrides.syncThreadRestart ? { restart: overrides.syncThreadRestart } : {}),
            }),
        }
      : {}),
  });
  // Deliveries reach public addresses only (plus VPPD_WEBHOOK_ALLOW), checked at connect time.
  const addressPolicy = createWebhookAddressPolicy(config.security.webhookAllow);
  const webhookFetch = createWebhookFetch(addressPolicy, overrides.webhookLookup);
  const alerts = createAlertService({
    db,
    storage,
    cipher,
    clock,
    newId,
    randomBytes: overrides.randomBytes ?? randomBytes,
    random: overrides.random ?? Math.random,
    fetch: webhookFetch.fetch,
    addressPolicy,
    ...(overrides.webhookLookup ? { lookup: overrides.webhookLookup } : {}),
    logger: logger.child({ component: 'alerts' }),
    // Not newId(): tests predict the ids it hands out.
    owner: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    ...(overrides.alerts ? { settings: overrides.alerts } : {}),
    // Sync durations are observed once per finished run, by whichever process scans it.
    onRunScanned: (run) => metrics.observeSyncRun(run),
    onDeliveryAttempt: (attempt) => metrics.observeAlertDelivery(attempt),
  });
  const licenseOperations = createLicenseOperationService({
    storage,
    tokens,
    apple,
    clock,
    newId,
    logger: logger.child({ component: 'license-operations' }),
    workerId: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    requestFullSync: async (tenantId, tokenId) => {
      await sync.requestSync(tenantId, tokenId, 'api');
    },
    // Leased like syncs (VPPD_SYNC_LEASE): a dead worker's operation is taken over as soon as its sync would be.
    settings: { leaseMs: config.sync.leaseMs, ...overrides.licenseOperations },
    onOperationEnded: (operation, failures) => {
      const facts = {
        ...operation,
        finishedAt: operation.finishedAt ?? clock(),
        failureErrorNumbers: failures.map((f) => f.errorNumber),
      };
      metrics.observeLicenseOperation(facts);
      alerts.queueOperationEnded(facts).catch((error: unknown) => {
        logger.warn(
          { err: error, operationId: operation.id },
          'license operation: its alert could not be queued',
        );
      });
    },
  });
  const tokenService = createTokenService({ tokens, sync, clock, newId });
  const notifications = createNotificationService({
    storage,
    tokens,
    apple,
    cipher,
    publicUrl: config.externalUrl.publicUrl,
    clock,
    newId,
    logger: logger.child({ component: 'apple-notifications' }),
    // A change that does not fit the snapshot: a delta sync re-reads the assets and the apps whose
    // counts no longer add up (it becomes a full sync when it must).
    requestSync: (tenantId, tokenId, trigger) => sync.requestSync(tenantId, tokenId, trigger, 'delta'),
    requestCounts: (tenantId, tokenId) => sync.requestLicenseCounts(tenantId, tokenId),
    // Counts moved without a sync: license alerts look at that app now.
    onCountsChanged: async (tenantId, tokenId, counts) => {
      await alerts.licenses.evaluateApp(tenantId, tokenId, counts);
    },
    // Apple told how an operation's event ended: the worker finishes it now instead of at its next poll.
    onOperationDue: () => licenseOperations.wake(),
    ...(overrides.notifications ? { settings: overrides.notifications } : {}),
  });
  let disposed: Promise<void> | undefined;
  return {
    config,
    logger,
    clock,
    newId,
    storage,
    db,
    tokens,
    tokenService,
    authenticator,
    apple,
    licenseReads,
    revokes,
    sync,
    lane,
    licenseOperations,
    metrics,
    alerts,
    notifications,
    dispose() {
      disposed ??= (async () => {
        await notifications.stop();
        await alerts.stop();
        await licenseOperations.stop();
        await webhookFetch.close();
        await sync.stop();
        await revokes.close();
        if (!overrides.apple) await apple.close();
        await storage.close();
      })();
      return disposed;
    },
  };
}

/**
 * Connections per Apple origin for `concurrency` syncs at once: Apple allows 5 requests in flight
 * per location, so 5 per running sync (at least 16, at most 256); idle ones close after keep-alive.
 */
export function appleConnections(concurrency: number): number {
  return Math.min(256, Math.max(16, 5 * Math.max(1, concurrency)));
}
