import type { Logger } from '../domain/logger.js';
import type { SyncFailure } from '../domain/sync-failure.js';
import type { SyncProgress } from '../domain/sync-phase.js';
import type { LicenseStore } from '../storage/license-store.js';
import {
  type ClaimedSync,
  DeltaSupersededError,
  LeaseLostError,
  type SyncJobStore,
} from '../storage/sync-job-store.js';
import type { SyncProgressStore } from '../storage/sync-progress-store.js';
import { type BackgroundLane, noLane } from './background-lane.js';
import type { DeltaSyncEngine } from './delta-sync-engine.js';
import type { PreparedSync, SyncEngine } from './sync-engine.js';
import { syncFailureOfError } from './sync-failure-of.js';
import { nextAutomaticSync, nextDeltaSync, type SchedulePolicy } from './sync-schedule-policy.js';

export interface SyncWorkerOptions {
  readonly jobs: SyncJobStore;
  readonly licenses: LicenseStore;
  readonly engine: SyncEngine;
  /** Runs `delta` jobs; absent: they run as full syncs. */
  readonly deltaEngine?: DeltaSyncEngine;
  readonly clock: () => Date;
  readonly newId: () => string;
  readonly random: () => number;
  readonly logger: Logger;
  readonly schedule: SchedulePolicy;
  /** This process's name in leases and history (unique per process). */
  readonly workerId: string;
  /** Lease length (default 30 s): a worker silent this long is presumed dead. */
  readonly leaseMs?: number;
  /** Heartbeat period (default a third of the lease). */
  readonly heartbeatMs?: number;
  /** Syncs this worker runs at once (default 4). */
  readonly concurrency?: number;
  /**
   * Syncs running at once across every process on the database (default: `concurrency`, so processes
   * that all keep the default share one limit of 4).
   */
  readonly maxActive?: number;
  /** How often the queue is polled when nothing wakes the worker (default 1 s). */
  readonly pollMs?: number;
  /** Claims per job: the first run plus one retry after an interruption (default 2). */
  readonly maxAttempts?: number;
  /** Where live progress of running syncs goes (phase, pages, records); none when absent. */
  readonly progress?: SyncProgressStore;
  /** Least time between two progress writes of one run (default 1 s). */
  readonly progressMs?: number;
  /** Where commits and clean-ups wait for their turn, so requests are answered first (default none). */
  readonly lane?: BackgroundLane;
  /**
   * Runs a `licenseCounts` job (Graph's syncLicenseCounts for one token): true when the counts were
   * refreshed (or there was no snapshot to refresh), false when it failed. Absent: such jobs fail.
   */
  readonly licenseCounts?: (claim: ClaimedSync, signal: AbortSignal) => Promise<boolean>;
  /** Told how many runs are in flight each time one starts or ends (a sync thread reports it). */
  readonly onActiveChange?: (active: number) => void;
}

/**
 * What runs sync jobs for a process: a {@link SyncWorker} in the request thread, or a sync thread
 * (sync-thread.ts) running one in a worker thread of its own.
 */
export interface SyncRunner {
  /** Runs in flight now. */
  readonly active: number;
  /** Starts claiming jobs until {@link stop}. */
  start(): void;
  /** Polls now (a sync was just requested in this process). */
  wake(): void;
  /** Claims nothing more and waits up to `graceMs` for the runs in flight; resolves with how many still run. */
  drain(graceMs: number): Promise<number>;
  /** Stops claiming, aborts the runs in flight and gives their jobs back. */
  stop(): Promise<void>;
  /** Releases what the runner holds beyond {@link stop} (a thread, its connections); absent when nothing. */
  close?(): Promise<void>;
  /** How a runner in a thread of its own fares (sync-thread.ts); absent on a worker in this thread. */
  health?(): SyncRunnerHealth;
}

/** A sync thread's supervision, as `/healthz` and the logs see it. */
export interface SyncRunnerHealth {
  /** A thread runs now (false between a death and its replacement). */
  readonly up: boolean;
  /** Threads started to replace one that died, since the runner started. */
  readonly restarts: number;
  /** Deaths (exits, replacements that did not start) since a thread last stayed up long enough. */
  readonly deathsInARow: number;
  /** The thread keeps dying: {@link deathsInARow} reached the limit (5 by default). */
  readonly failing: boolean;
}

/** What stopped a run on purpose. */
class WorkerStopping extends Error {
  override readonly name = 'WorkerStopping';
}

/**
 * Runs sync jobs from the database: claims them with a lease (fair across tenants, under a global
 * limit), keeps the lease alive with heartbeats while the engine fetches, then commits or fails the
 * run in one transaction. A lease that expires (its worker died) is taken over by any worker: retried
 * once, then failed as interrupted. Every piece of state is in the database, none only in memory.
 */
export class SyncWorker implements SyncRunner {
  readonly workerId: string;
  readonly #o: SyncWorkerOptions;
  readonly #leaseMs: number;
  readonly #heartbeatMs: number;
  readonly #concurrency: number;
  readonly #maxActive: number;
  readonly #pollMs: number;
  readonly #maxAttempts: number;
  readonly #progressMs: number;
  readonly #running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  #stopping = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #polling: Promise<number> | undefined;
  /** When slots freed (monotonic ms), oldest first, until a claim fills them: for the `slotIdleMs` log field. */
  readonly #freedAt: number[] = [];

  constructor(options: SyncWorkerOptions) {
    this.#o = options;
    this.workerId = options.workerId;
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#heartbeatMs = options.heartbeatMs ?? Math.max(10, Math.floor(this.#leaseMs / 3));
    this.#concurrency = Math.max(1, options.concurrency ?? 4);
    this.#maxActive = Math.max(1, options.maxActive ?? this.#concurrency);
    this.#pollMs = options.pollMs ?? 1000;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 2);
    this.#progressMs = Math.max(10, options.progressMs ?? 1000);
  }

  /** Syncs this worker is running now. */
  get active(): number {
    return this.#running.size;
  }

  /** Starts polling in the background until {@link stop}. */
  start(): void {
    if (this.#loop !== undefined) return;
    this.#stopping = false;
    this.#loop = this.#runLoop();
  }

  /** Polls now instead of at the next period (a sync was just requested in this process). */
  wake(): void {
    this.#wake?.();
  }

  /**
   * Claims and starts as many jobs as there are free slots; resolves with how many it started (the
   * runs go on in the background, see {@link idle}). Concurrent calls share one poll.
   */
  poll(): Promise<number> {
    this.#polling ??= this.#pollOnce().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  /** Resolves when no run of this worker is in flight. */
  async idle(): Promise<void> {
    while (this.#running.size > 0) {
      await Promise.all([...this.#running.values()].map((r) => r.done));
    }
  }

  /**
   * Stops polling, aborts the runs in flight and gives their jobs back (not counted as an attempt),
   * so the next worker to start runs them at once. Resolves when everything has wound down.
   */
  async stop(): Promise<void> {
    await this.#stopClaiming();
    for (const run of this.#running.values()) run.controller.abort(new WorkerStopping('vppd is stopping'));
    await this.idle();
  }

  /**
   * Graceful shutdown, first half: claims nothing more and waits up to `graceMs` for the runs in
   * flight to finish (they keep their leases alive meanwhile). Resolves with how many are still
   * running; {@link stop} then gives those back to the queue for another process.
   */
  async drain(graceMs: number): Promise<number> {
    await this.#stopClaiming();
    let timer: NodeJS.Timeout | undefined;
    const timeUp = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, graceMs));
      timer.unref();
    });
    await Promise.race([this.idle(), timeUp]);
    clearTimeout(timer);
    return this.#running.size;
  }

  async #stopClaiming(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#loop;
    this.#loop = undefined;
    await this.#polling;
  }

  async #runLoop(): Promise<void> {
    while (!this.#stopping) {
      try {
        await this.poll();
      } catch (error) {
        this.#o.logger.error({ err: errorDetails(error) }, 'sync worker: polling the job queue failed');
      }
      if (this.#stopping) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.#pollMs);
        const self = this;
        function done() {
          clearTimeout(timer);
          self.#wake = undefined;
          resolve();
        }
        this.#wake = done;
      });
    }
  }

  async #pollOnce(): Promise<number> {
    let started = 0;
    while (!this.#stopping && this.#running.size < this.#concurrency) {
      // Half the free slots (at least one) per claim: one transaction, one turn of the cluster-wide claim
      // lock, fills several slots, and between two turns of this worker a replica waiting on the lock
      // gets one, so a burst of jobs spreads over the replicas polling at once instead of going to the
      // first. While claims are slow, more slots free meanwhile and the batches grow.
      const free = Math.ceil((this.#concurrency - this.#running.size) / 2);
      const claimStarted = performance.now();
      const results = await this.#o.jobs.claimMany(
        {
          workerId: this.workerId,
          now: this.#o.clock(),
          leaseMs: this.#leaseMs,
          maxActive: this.#maxActive,
          maxAttempts: this.#maxAttempts,
          newRunId: this.#o.newId,
        },
        free,
      );
      const claimed = performance.now();
      let launched = 0;
      for (const result of results) {
        if (result.kind === 'interrupted') {
          this.#o.logger.warn(
            { tenantId: result.job.tenantId, tokenId: result.job.tokenId, jobId: result.job.id },
            'sync failed as interrupted: its worker stopped on the first attempt and on the retry',
          );
          if (result.runId !== null) await this.#cleanRun(result.runId);
          continue;
        }
        const freed = this.#freedAt.shift();
        this.#launch(result.claim, {
          claimMs: Math.round(claimed - claimStarted),
          ...(freed === undefined ? {} : { slotIdleMs: Math.round(claimed - freed) }),
        });
        launched++;
      }
      started += launched;
      // Nothing runnable, or every slot of the cluster taken: wait for a wake-up or the next period.
      if (results.length === 0 || (launched < free && results.every((r) => r.kind === 'claimed'))) break;
    }
    return started;
  }

  /** `timing`: how long the claim took and how long its slot stood free before it (logged with the start). */
  #launch(claim: ClaimedSync, timing: { claimMs: number; slotIdleMs?: number }): void {
    const controller = new AbortController();
    const done = this.#run(claim, controller, timing).finally(() => {
      this.#running.delete(claim.job.id);
      this.#freedAt.push(performance.now());
      this.#o.onActiveChange?.(this.#running.size);
      // A slot is free: look for the next job now rather than at the next period.
      if (!this.#stopping) this.wake();
    });
    this.#running.set(claim.job.id, { controller, done });
    this.#o.onActiveChange?.(this.#running.size);
  }

  async #run(
    claim: ClaimedSync,
    controller: AbortController,
    timing: { claimMs: number; slotIdleMs?: number },
  ): Promise<void> {
    const { jobs, clock, logger } = this.#o;
    const { tenantId, tokenId } = claim.job;
    const context = { tenantId, tokenId, jobId: claim.job.id, runId: claim.runId, attempt: claim.attempt };
    let leaseLost = false;
    let beating: Promise<void> = Promise.resolve();
    const heartbeat = () => {
      beating = jobs.heartbeat(claim, clock(), this.#leaseMs).then(
        (held) => {
          if (!held && !controller.signal.aborted) {
            leaseLost = true;
            controller.abort(new LeaseLostError('the sync lease was lost'));
          }
        },
        (error: unknown) => logger.warn({ ...context, err: errorDetails(error) }, 'sync heartbeat failed'),
      );
    };
    const startBeat = () => setInterval(heartbeat, this.#heartbeatMs);
    let beat = startBeat();
    // The lease counts from the claim's start: a claim that took half a period already (a busy
    // database) renews it at once rather than a full period later.
    if (timing.claimMs >= this.#heartbeatMs / 2) heartbeat();
    if (claim.job.kind === 'licenseCounts') {
      try {
        const refreshed = (await this.#o.licenseCounts?.(claim, controller.signal)) ?? false;
        clearInterval(beat);
        await beating;
        await (this.#o.lane ?? noLane).turn();
        const recorded = await jobs.finishLicenseCounts(claim, refreshed, clock());
        logger.info({ ...context, refreshed, recorded }, 'license counts refresh ended');
      } catch (error) {
        clearInterval(beat);
        await beating;
        const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
        if (reason instanceof WorkerStopping) {
          await jobs.release(claim, clock()).catch(() => undefined);
        } else if (!leaseLost) {
          await jobs.finishLicenseCounts(claim, false, clock()).catch(() => undefined);
          logger.warn({ ...context, err: errorDetails(error) }, 'license counts refresh failed');
        }
      } finally {
        clearInterval(beat);
      }
      return;
    }
    const started = Date.now();
    let progress = this.#progressWriter(claim);
    logger.info({ ...context, trigger: claim.job.trigger, kind: claim.job.kind, ...timing }, 'sync started');
    try {
      let prepared: PreparedSync | undefined;
      const { deltaEngine } = this.#o;
      if (claim.job.kind === 'delta' && deltaEngine !== undefined) {
        const outcome = await deltaEngine(claim, controller.signal, progress.note);
        prepared = outcome.prepared;
        let reason = outcome.kind === 'full' ? outcome.reason : undefined;
        if (outcome.kind === 'delta') {
          await progress.close();
          const now = clock();
          clearInterval(beat);
          await beating;
          await (this.#o.lane ?? noLane).turn();
          const committing = Date.now();
          try {
            const result = await jobs.commitDelta(
              claim,
              outcome.commit,
              now,
              nextDeltaSync(now, this.#o.schedule, this.#o.random),
            );
            logger.info(
              {
                ...context,
                versionId: outcome.commit.versionId,
                added: result.added,
                removed: result.removed,
                assignments: result.assignmentCount,
                reread: outcome.commit.replaced.size,
                ms: Date.now() - started,
                commitMs: Date.now() - committing,
              },
              'delta sync completed',
            );
            return;
          } catch (error) {
            if (!(error instanceof DeltaSupersededError)) throw error;
            reason = error.message;
            beat = startBeat();
            progress = this.#progressWriter(claim);
          }
        }
        logger.info(
          { ...context, reason },
          'delta sync reads everything instead (a full sync in the same run)',
        );
      }
      const snapshot = await this.#o.engine(claim, controller.signal, progress.note, prepared);
      const fetched = Date.now();
      await progress.close();
      const now = clock();
      const next = nextAutomaticSync(now, this.#o.schedule, { expired: false, random: this.#o.random });
      clearInterval(beat);
      await beating;
      await (this.#o.lane ?? noLane).turn();
      const { previousRunId } = await jobs.commit(
        claim,
        snapshot,
        now,
        next,
        nextDeltaSync(now, this.#o.schedule, this.#o.random),
      );
      logger.info(
        {
          ...context,
          versionId: snapshot.versionId,
          assets: snapshot.assetCount,
          assignments: snapshot.assignmentCount,
          pages: snapshot.pageCount,
          ms: Date.now() - started,
          commitMs: Date.now() - fetched,
        },
        'sync completed',
      );
      if (previousRunId !== null) await this.#cleanRun(previousRunId);
    } catch (error) {
      clearInterval(beat);
      await beating;
      await progress.close();
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
      if (reason instanceof WorkerStopping) {
        await jobs
          .release(claim, clock())
          .catch((e: unknown) =>
            logger.warn({ ...context, err: errorDetails(e) }, 'could not give the sync job back'),
          );
        logger.info(context, 'sync stopped with vppd; it runs again when a worker starts');
      } else if (leaseLost || error instanceof LeaseLostError || jobs.isForeignKeyViolation(error)) {
        // Another worker took the job over, or the token was deleted: nothing of this run may be committed.
        logger.warn(
          { ...context, err: errorDetails(error) },
          'sync abandoned: the lease or the token is gone',
        );
      } else {
        await this.#fail(claim, syncFailureOfError(error), context);
      }
      await this.#cleanRun(claim.runId);
    } finally {
      clearInterval(beat);
    }
  }

  /**
   * Keeps the latest progress the engine reported and writes it every `progressMs` while it changed,
   * so a 100-page sync costs a handful of writes and a sync shorter than `progressMs` none: each write
   * appends a `syncProgressed` event, and a tenant's appends take turns on its event head (the
   * `syncStarted` event already shows the sync running). Write failures only log.
   */
  #progressWriter(claim: ClaimedSync): { note: (p: SyncProgress) => void; close: () => Promise<void> } {
    const store = this.#o.progress;
    if (store === undefined) return { note: () => undefined, close: async () => undefined };
    let latest: SyncProgress | undefined;
    let written: SyncProgress | undefined;
    let writing: Promise<void> = Promise.resolve();
    const flush = () => {
      const next = latest;
      if (next === undefined || next === written) return;
      written = next;
      writing = writing
        .then(() => store.record(claim.job.id, claim.runId, next, this.#o.clock()))
        .catch((error: unknown) =>
          this.#o.logger.warn(
            { jobId: claim.job.id, err: errorDetails(error) },
            'sync progress not recorded',
          ),
        );
    };
    const timer = setInterval(flush, this.#progressMs);
    return {
      note: (p) => {
        latest = p;
      },
      close: async () => {
        clearInterval(timer);
        await writing;
      },
    };
  }

  async #fail(claim: ClaimedSync, failure: SyncFailure, context: object): Promise<void> {
    const now = this.#o.clock();
    const next = nextAutomaticSync(now, this.#o.schedule, {
      expired: failure.kind === 'expired',
      random: this.#o.random,
    });
    // A failed delta keeps the token's next full sync where it was.
    const recorded =
      claim.job.kind === 'delta'
        ? await this.#o.jobs.fail(
            claim,
            failure,
            now,
            null,
            nextDeltaSync(now, this.#o.schedule, this.#o.random),
          )
        : await this.#o.jobs.fail(claim, failure, now, next);
    this.#o.logger.warn(
      { ...context, failure, recorded },
      recorded ? 'sync failed' : 'sync failed after its lease was lost; not recorded',
    );
  }

  /** Deletes the license rows of a run that is not (or no longer) a token's current snapshot. */
  async #cleanRun(runId: string): Promise<void> {
    try {
      await (this.#o.lane ?? noLane).turn();
      await this.#o.licenses.clearRun(runId);
      await this.#o.jobs.markCleaned(runId);
    } catch (error) {
      // The periodic sweep (SyncScheduler) retries what is left.
      this.#o.logger.warn(
        { runId, err: errorDetails(error) },
        'could not delete the rows of an old sync run',
      );
    }
  }
}

function errorDetails(error: unknown): { message: string; name?: string } {
  return error instanceof Error ? { name: error.name, message: error.message } : { message: String(error) };
}
