import { hostname } from 'node:os';
import type { AppleClient } from '../apple/apple-client.js';
import type { AppleMdmInfo } from '../apple/apple-types.js';
import type { Logger } from '../domain/logger.js';
import type { SyncTrigger } from '../domain/sync-trigger.js';
import type { StorageEngine } from '../storage/engine.js';
import { createEventStore, eventsChannel, parseEventWake } from '../storage/event-store.js';
import { createLicenseStore, type LicenseStore } from '../storage/license-store.js';
import { createSnapshotReads } from '../storage/snapshot-reads.js';
import { loadInstallationId } from '../storage/sync-installation.js';
import { createSyncJobStore, type SyncJobStore, type SyncRequestResult } from '../storage/sync-job-store.js';
import { createSyncProgressStore } from '../storage/sync-progress-store.js';
import { createTokenExpiryStore } from '../storage/token-expiry-store.js';
import type { VppTokenStore } from '../storage/vpp-token-store.js';
import type { BackgroundLane } from './background-lane.js';
import { createDeltaSyncEngine } from './delta-sync-engine.js';
import { HistoryPruner } from './history-pruner.js';
import { createLicenseCountsSync } from './license-counts-sync.js';
import { createSyncEngine, createSyncPreparation, type SyncEngineOptions } from './sync-engine.js';
import { defaultSchedulePolicy, type SchedulePolicy } from './sync-schedule-policy.js';
import { SyncScheduler } from './sync-scheduler.js';
import { type SyncRunner, SyncWorker } from './sync-worker.js';

/** Which parts of the sync machinery a process runs (`--role`): the API only records jobs. */
export const syncRoles = ['all', 'api', 'worker'] as const;
export type SyncRole = (typeof syncRoles)[number];

/** Tunables of the sync machinery; every one has a production default. */
export interface SyncSettings {
  /** Automatic sync interval (`--sync-interval`, default 12 h). */
  readonly intervalMs: number;
  /** Delta syncs between full ones (`VPPD_DELTA_SYNC_INTERVAL`, default 15 min; 0 off). */
  readonly deltaIntervalMs?: number;
  /** Apps a delta re-reads alone when their counts do not add up before it reads everything (default 20). */
  readonly maxDeltaRereadApps?: number;
  /** Syncs this process runs at once (default 4). */
  readonly concurrency?: number;
  /** Syncs running at once across every process on the database (default: `concurrency`). */
  readonly maxActive?: number;
  /** Lease of a running sync (default 30 s) and its heartbeat (default a third of it). */
  readonly leaseMs?: number;
  readonly heartbeatMs?: number;
  /** Queue poll period of the worker (default 1 s) and scheduler tick (default 60 s). */
  readonly pollMs?: number;
  readonly tickMs?: number;
  /** Jitter and expired-token recheck; default {@link defaultSchedulePolicy}. */
  readonly schedule?: Partial<SchedulePolicy>;
  /** Full re-reads when Apple's data moves mid-sync (default 2). */
  readonly maxSnapshotRestarts?: number;
  /** Sync history older than this is pruned (default 90 days; see HistoryPruner for what is kept). */
  readonly historyRetentionMs?: number;
  /** How long events are kept once the alert scanner passed them (default 7 days). */
  readonly eventRetentionMs?: number;
  /** How often the history is pruned and an idle WAL checkpointed (default 1 h). */
  readonly historyTickMs?: number;
}

export interface SyncServiceOptions {
  /** The storage engine (and its database) the stores run on. */
  readonly storage: StorageEngine;
  readonly tokens: VppTokenStore;
  readonly apple: AppleClient;
  readonly clock: () => Date;
  readonly newId: () => string;
  readonly random?: () => number;
  readonly logger: Logger;
  readonly settings: SyncSettings;
  /** Unique name of this process in leases; default host, pid and a random suffix. */
  readonly workerId?: string;
  /** Request a sync when a token is created or its sToken renewed (the product behaviour). */
  readonly syncOnTokenWrite?: boolean;
  /** Where sync work waits for its turn so requests are answered first (default: it never waits). */
  readonly lane?: BackgroundLane;
  /**
   * Runs the worker somewhere else (sync-thread.ts: a worker thread of its own); `start` then starts
   * that runner instead of an in-thread {@link SyncWorker}, and the history pruner runs there too.
   */
  readonly startThread?: (workerId: string) => Promise<SyncRunner>;
  /** Told how many runs the in-thread worker has in flight each time one starts or ends. */
  readonly onActiveChange?: (active: number) => void;
}

/**
 * The sync subsystem of one process: the job and license stores, `requestSync` (what the API's
 * syncLicenses, token creation, renewal and the scheduler call), and — when started — a worker and
 * a scheduler. Every state is in the database, so several processes on one database act as one.
 */
export interface SyncService {
  readonly jobs: SyncJobStore;
  readonly licenses: LicenseStore;
  /** True when creating a token or renewing its sToken requests a sync. */
  readonly syncOnTokenWrite: boolean;
  /**
   * Moves the token to inProgress and records a job, or coalesces with the sync in flight. `kind`
   * `delta` asks for a delta sync (the scheduler between full syncs); the default is a full sync.
   */
  requestSync(
    tenantId: string,
    tokenId: string,
    trigger: SyncTrigger,
    kind?: 'licenses' | 'delta',
  ): Promise<SyncRequestResult>;
  /**
   * Records a license-count refresh job of the token (syncLicenseCounts), or coalesces with the job
   * the token already has; the worker runs it under the same claim, limits and rate limit as syncs.
   */
  requestLicenseCounts(tenantId: string, tokenId: string): Promise<SyncRequestResult>;
  /** Starts the worker and/or scheduler of `role` (`api` starts nothing). */
  start(role?: SyncRole): Promise<void>;
  /** The worker (in this thread or a sync thread) and scheduler (undefined before start or for role api). */
  readonly worker: SyncRunner | undefined;
  readonly scheduler: SyncScheduler | undefined;
  /** Builds (once) the in-thread worker without starting it: tests drive `poll()` and `idle()` by hand. */
  createWorker(): Promise<SyncWorker>;
  /** Builds (once) what `start` starts: the sync thread when configured, else {@link createWorker}'s worker. */
  createRunner(): Promise<SyncRunner>;
  /** Builds (once) the scheduler without starting it. */
  createScheduler(): SyncScheduler;
  /** Builds (once) the history pruner without starting it (started with the worker). */
  createHistoryPruner(): HistoryPruner;
  /** Stops the scheduler and worker (runs in flight are given back to the queue). Safe to call twice. */
  stop(): Promise<void>;
}

/** Builds the sync subsystem; nothing runs until {@link SyncService.start}. */
export function createSyncService(options: SyncServiceOptions): SyncService {
  const { storage, tokens, apple, clock, newId, logger, settings } = options;
  const { db } = storage;
  const random = options.random ?? Math.random;
  const jobs = createSyncJobStore({ storage, newId });
  const licenses = createLicenseStore({ storage });
  const schedule: SchedulePolicy = {
    ...defaultSchedulePolicy(settings.intervalMs),
    ...(settings.deltaIntervalMs === undefined ? {} : { deltaIntervalMs: settings.deltaIntervalMs }),
    ...settings.schedule,
  };
  const workerId = options.workerId ?? `${hostname()}:${process.pid}:${newId().slice(0, 8)}`;
  let worker: SyncWorker | undefined;
  let workerBuilt: Promise<SyncWorker> | undefined;
  let runner: SyncRunner | undefined;
  let runnerBuilt: Promise<SyncRunner> | undefined;
  let scheduler: SyncScheduler | undefined;
  let started: { worker?: SyncRunner; scheduler?: SyncScheduler } = {};
  const wake = () => (runner ?? worker)?.wake();

  const requestSync = async (
    tenantId: string,
    tokenId: string,
    trigger: SyncTrigger,
    kind: 'licenses' | 'delta' = 'licenses',
  ) => {
    const result = await jobs.requestSync(tenantId, tokenId, trigger, clock(), kind);
    if (result.effect === 'started') {
      logger.info({ tenantId, tokenId, trigger, kind, jobId: result.jobId }, 'sync requested');
      wake();
    }
    return result;
  };

  const requestLicenseCounts = async (tenantId: string, tokenId: string) => {
    const result = await jobs.requestLicenseCounts(tenantId, tokenId, clock());
    if (result.effect === 'started') wake();
    return result;
  };

  const counts = createLicenseCountsSync({
    storage,
    tokens,
    apple,
    clock,
    logger: logger.child({ component: 'license-counts' }),
  });

  const buildWorker = async (): Promise<SyncWorker> => {
    const installationId = await loadInstallationId(db, newId);
    const mdmInfo: AppleMdmInfo = { id: installationId, name: 'vppd', metadata: `vppd on ${hostname()}` };
    const engineOptions: SyncEngineOptions = {
      apple,
      tokens,
      licenses,
      jobs,
      mdmInfo,
      clock,
      logger,
      ...(options.lane === undefined ? {} : { lane: options.lane }),
      ...(settings.maxSnapshotRestarts === undefined
        ? {}
        : { maxSnapshotRestarts: settings.maxSnapshotRestarts }),
    };
    worker = new SyncWorker({
      jobs,
      licenses,
      engine: createSyncEngine(engineOptions),
      deltaEngine: createDeltaSyncEngine({
        apple,
        licenses,
        snapshots: createSnapshotReads({ storage }),
        prepare: createSyncPreparation(engineOptions),
        clock,
        logger,
        ...(options.lane === undefined ? {} : { lane: options.lane }),
        ...(settings.maxSnapshotRestarts === undefined
          ? {}
          : { maxSnapshotRestarts: settings.maxSnapshotRestarts }),
        ...(settings.maxDeltaRereadApps === undefined ? {} : { maxRereadApps: settings.maxDeltaRereadApps }),
      }),
      clock,
      newId,
      random,
      logger,
      schedule,
      workerId,
      progress: createSyncProgressStore({ storage }),
      licenseCounts: async (claim, signal) => {
        const outcome = await counts.refreshToken(claim.job.tenantId, claim.job.tokenId, signal);
        return outcome.outcome !== 'failed';
      },
      ...(options.lane === undefined ? {} : { lane: options.lane }),
      ...(options.onActiveChange === undefined ? {} : { onActiveChange: options.onActiveChange }),
      ...(settings.leaseMs === undefined ? {} : { leaseMs: settings.leaseMs }),
      ...(settings.heartbeatMs === undefined ? {} : { heartbeatMs: settings.heartbeatMs }),
      ...(settings.concurrency === undefined ? {} : { concurrency: settings.concurrency }),
      ...(settings.maxActive === undefined ? {} : { maxActive: settings.maxActive }),
      ...(settings.pollMs === undefined ? {} : { pollMs: settings.pollMs }),
    });
    return worker;
  };

  const createScheduler = (): SyncScheduler => {
    scheduler ??= new SyncScheduler({
      jobs,
      licenses,
      expiry: createTokenExpiryStore({ storage }),
      clock,
      logger,
      requestSync,
      deltaSyncs: (schedule.deltaIntervalMs ?? 0) > 0,
      ...(settings.tickMs === undefined ? {} : { tickMs: settings.tickMs }),
    });
    return scheduler;
  };

  let pruner: HistoryPruner | undefined;
  const createHistoryPruner = (): HistoryPruner => {
    pruner ??= new HistoryPruner({
      jobs,
      clock,
      logger,
      retentionMs: settings.historyRetentionMs ?? 90 * 86_400_000,
      events: {
        store: createEventStore({ storage }),
        retentionMs: settings.eventRetentionMs ?? 7 * 86_400_000,
      },
      ...(settings.historyTickMs === undefined ? {} : { tickMs: settings.historyTickMs }),
      ...(options.lane === undefined ? {} : { lane: options.lane }),
    });
    return pruner;
  };

  let stopping: Promise<void> | undefined;
  let stopWakes: (() => void) | undefined;
  return {
    jobs,
    licenses,
    syncOnTokenWrite: options.syncOnTokenWrite ?? false,
    requestSync,
    requestLicenseCounts,
    get worker() {
      return runner ?? worker;
    },
    get scheduler() {
      return scheduler;
    },
    createWorker() {
      workerBuilt ??= buildWorker();
      return workerBuilt;
    },
    createRunner() {
      const { startThread } = options;
      runnerBuilt ??= (startThread === undefined ? this.createWorker() : startThread(workerId)).then(
        (built) => {
          runner = built;
          return built;
        },
      );
      return runnerBuilt;
    },
    createScheduler,
    createHistoryPruner,
    async start(role = 'all') {
      if (role === 'api') return;
      const built = await this.createRunner();
      built.start();
      const ticking = createScheduler();
      ticking.start();
      // A sync thread prunes the history itself, beside its worker.
      if (options.startThread === undefined) createHistoryPruner().start();
      // A sync requested by any process (PostgreSQL) or this one wakes the worker at once; it polls too.
      stopWakes = storage.notifier.listen(eventsChannel, (payload) => {
        const wake = parseEventWake(payload);
        if (wake === undefined || wake.type === 'syncRequested') built.wake();
      });
      started = { worker: built, scheduler: ticking };
      logger.info(
        { workerId, role, intervalMs: schedule.intervalMs, deltaIntervalMs: schedule.deltaIntervalMs ?? 0 },
        'sync worker and scheduler started',
      );
    },
    stop() {
      stopping ??= (async () => {
        stopWakes?.();
        await scheduler?.stop();
        await pruner?.stop();
        const stopped = started.worker ?? runner ?? worker;
        await stopped?.stop();
        await runner?.close?.();
      })();
      return stopping;
    },
  };
}
