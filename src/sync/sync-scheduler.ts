import type { Logger } from '../domain/logger.js';
import type { SyncTrigger } from '../domain/sync-trigger.js';
import type { LicenseStore } from '../storage/license-store.js';
import type { SyncJobStore } from '../storage/sync-job-store.js';
import type { TokenExpiryStore } from '../storage/token-expiry-store.js';

export interface SyncSchedulerOptions {
  readonly jobs: SyncJobStore;
  readonly licenses: LicenseStore;
  /** Stores `expired` on tokens whose expiration date passed. */
  readonly expiry: TokenExpiryStore;
  readonly clock: () => Date;
  readonly logger: Logger;
  /** Requests one sync (the same path as the API's syncLicenses); `delta` for a delta sync. */
  readonly requestSync: (
    tenantId: string,
    tokenId: string,
    trigger: SyncTrigger,
    kind?: 'licenses' | 'delta',
  ) => Promise<unknown>;
  /** Whether delta syncs are requested between full ones (`VPPD_DELTA_SYNC_INTERVAL` not off). */
  readonly deltaSyncs?: boolean;
  /** How often due tokens are looked for (default 60 s). */
  readonly tickMs?: number;
  /** Syncs requested per tick at most (default 200); the rest wait for the next tick. */
  readonly batch?: number;
}

/**
 * Automatic syncs: every tick, each token whose `next_sync_at` has passed (or that was never
 * scheduled) gets a full sync request; then, with delta syncs on, each valid token with a snapshot
 * whose `next_delta_at` has passed (and whose full sync is not due) gets a delta sync request. The first tick runs at start-up, so a token that became overdue
 * while vppd was down syncs once then. Requests go through the same compare-and-swap as the API,
 * so schedulers of several processes coalesce instead of syncing twice. Each tick also stores `expired`
 * on tokens whose expiration date has passed (and, while started, a tick runs at the next expiration date,
 * so the stored state turns when the date passes, not up to a tick later), and deletes the license rows of
 * old runs left behind (failed, interrupted, replaced).
 */
export class SyncScheduler {
  readonly #o: SyncSchedulerOptions;
  #timer: NodeJS.Timeout | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;
  #ticking: Promise<number> | undefined;

  constructor(options: SyncSchedulerOptions) {
    this.#o = options;
  }

  /** Runs one tick now; resolves with the number of syncs requested. Concurrent calls share one tick. */
  tick(): Promise<number> {
    this.#ticking ??= this.#tickOnce().finally(() => {
      this.#ticking = undefined;
    });
    return this.#ticking;
  }

  /** Ticks now and then every `tickMs` until {@link stop}. */
  start(): void {
    if (this.#timer !== undefined) return;
    const run = () => {
      this.tick().catch((error: unknown) =>
        this.#o.logger.error({ err: { message: String(error) } }, 'sync scheduler tick failed'),
      );
    };
    this.#timer = setInterval(run, this.#o.tickMs ?? 60_000);
    this.#run = run;
    run();
  }

  /** What {@link start} ticks with (undefined while stopped). */
  #run: (() => void) | undefined;

  /** Stops ticking; resolves when a tick in progress has finished. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#expiryTimer !== undefined) clearTimeout(this.#expiryTimer);
    this.#timer = undefined;
    this.#expiryTimer = undefined;
    this.#run = undefined;
    await this.#ticking?.catch(() => undefined);
  }

  async #tickOnce(): Promise<number> {
    const { jobs, clock, logger } = this.#o;
    await this.#expire();
    const due = await jobs.dueTokens(clock(), this.#o.batch ?? 200);
    let requested = 0;
    for (const { tenantId, tokenId } of due) {
      try {
        await this.#o.requestSync(tenantId, tokenId, 'scheduled');
        requested++;
      } catch (error) {
        logger.warn({ tenantId, tokenId, err: { message: String(error) } }, 'automatic sync request failed');
      }
    }
    // Then delta syncs of tokens whose full sync is not due (those due just became inProgress above).
    let deltas = 0;
    if (this.#o.deltaSyncs === true) {
      for (const { tenantId, tokenId } of await jobs.dueDeltaTokens(clock(), this.#o.batch ?? 200)) {
        try {
          await this.#o.requestSync(tenantId, tokenId, 'scheduled', 'delta');
          deltas++;
        } catch (error) {
          logger.warn({ tenantId, tokenId, err: { message: String(error) } }, 'delta sync request failed');
        }
      }
    }
    if (requested > 0 || deltas > 0) logger.info({ requested, deltas }, 'automatic syncs requested');
    requested += deltas;
    await this.#sweep();
    return requested;
  }

  /** Stores `expired` where the date passed, then arms a tick for the next expiration within a tick period. */
  async #expire(): Promise<void> {
    const { expiry, clock, logger } = this.#o;
    const now = clock();
    let expired = 0;
    for (let changed = -1; changed !== 0; ) {
      changed = await expiry.expireDue(now, 500);
      expired += changed;
    }
    if (expired > 0) logger.info({ expired }, 'tokens past their expiration date are now expired');
    if (this.#run === undefined) return;
    const next = await expiry.nextExpiry(now);
    if (this.#expiryTimer !== undefined) clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
    const wait = next === undefined ? undefined : next.getTime() - now.getTime();
    if (wait !== undefined && wait < (this.#o.tickMs ?? 60_000)) {
      const run = this.#run;
      this.#expiryTimer = setTimeout(run, wait + 1);
      this.#expiryTimer.unref();
    }
  }

  async #sweep(): Promise<void> {
    const { jobs, licenses, logger } = this.#o;
    for (const runId of await jobs.runsToClean(20)) {
      try {
        await licenses.clearRun(runId);
        await jobs.markCleaned(runId);
      } catch (error) {
        logger.warn(
          { runId, err: { message: String(error) } },
          'could not delete the rows of an old sync run',
        );
      }
    }
  }
}
