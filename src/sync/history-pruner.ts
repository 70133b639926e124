import type { Logger } from '../domain/logger.js';
import type { EventStore } from '../storage/event-store.js';
import type { SyncJobStore } from '../storage/sync-job-store.js';
import { type BackgroundLane, noLane } from './background-lane.js';

export interface HistoryPrunerOptions {
  readonly jobs: SyncJobStore;
  readonly clock: () => Date;
  readonly logger: Logger;
  /** Runs older than this may be deleted (`VPPD_HISTORY_RETENTION`, default 90 days). */
  readonly retentionMs: number;
  /** Newest runs kept per token whatever their age (default 50). */
  readonly keepPerToken?: number;
  /** Rows per delete (one short transaction each; default 500). */
  readonly batchRows?: number;
  /** How often the history is pruned (default 1 h; the first prune runs at start). */
  readonly tickMs?: number;
  /** No sync for this long and the WAL is checkpointed back to zero bytes (default 5 min). */
  readonly idleMs?: number;
  /** Where each delete waits for its turn, so requests are answered first (default none). */
  readonly lane?: BackgroundLane;
  /**
   * The event log, pruned in the same pass: events older than `retentionMs` (`VPPD_EVENT_RETENTION`,
   * default 7 days) that the alert scanner has passed, `batchRows` per delete.
   */
  readonly events?: { readonly store: EventStore; readonly retentionMs: number };
}

/** What one pass did. */
export interface PruneResult {
  readonly deleted: number;
  /** Events deleted from the event log. */
  readonly eventsDeleted: number;
  readonly checkpointed: boolean;
}

/**
 * Keeps `sync_runs` bounded (issue 18): every `tickMs`, walks every token and deletes its runs older
 * than the retention, in deletes of at most `batchRows` rows, always keeping each token's newest
 * `keepPerToken` runs, its last success and its last failure, and any run a snapshot or a live job
 * references (storage/sync-jobs/history-retention.ts). Then, if no sync ran for `idleMs`, shrinks
 * the SQLite WAL back to zero bytes. Runs in the worker role; several processes may prune at once
 * (each delete is one statement and re-checks everything it keeps).
 */
export class HistoryPruner {
  readonly #o: HistoryPrunerOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<PruneResult> | undefined;
  #stopping = false;

  constructor(options: HistoryPrunerOptions) {
    this.#o = options;
  }

  /** One pass now; concurrent calls share it. */
  prune(): Promise<PruneResult> {
    this.#running ??= this.#pruneOnce().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Prunes now and then every `tickMs` until {@link stop}. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#stopping = false;
    const run = () => {
      this.prune().catch((error: unknown) =>
        this.#o.logger.warn({ err: { message: String(error) } }, 'sync history pruning failed'),
      );
    };
    this.#timer = setInterval(run, this.#o.tickMs ?? 3_600_000);
    this.#timer.unref();
    run();
  }

  /** Stops; resolves when a pass in progress has stopped at its next delete. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  async #pruneOnce(): Promise<PruneResult> {
    const { jobs, clock, logger } = this.#o;
    const lane = this.#o.lane ?? noLane;
    const batchRows = Math.max(1, this.#o.batchRows ?? 500);
    const before = new Date(clock().getTime() - this.#o.retentionMs);
    const options = { before, keepPerToken: this.#o.keepPerToken ?? 50, limit: batchRows };
    let deleted = 0;
    let after: string | null = null;
    for (;;) {
      const tokenIds = await jobs.tokenIdsAfter(after, 200);
      for (const tokenId of tokenIds) {
        for (;;) {
          if (this.#stopping) return { deleted, eventsDeleted: 0, checkpointed: false };
          await lane.turn();
          const n = await jobs.pruneRunsOf(tokenId, options);
          deleted += n;
          if (n < batchRows) break;
        }
      }
      if (tokenIds.length < 200) break;
      after = tokenIds[tokenIds.length - 1] ?? null;
    }
    if (deleted > 0) logger.info({ deleted, before: before.toISOString() }, 'old sync history deleted');
    let eventsDeleted = 0;
    const events = this.#o.events;
    if (events !== undefined) {
      const eventsBefore = new Date(clock().getTime() - events.retentionMs);
      for (;;) {
        if (this.#stopping) return { deleted, eventsDeleted, checkpointed: false };
        await lane.turn();
        const n = await events.store.prune(eventsBefore, batchRows);
        eventsDeleted += n;
        if (n < batchRows) break;
      }
      if (eventsDeleted > 0) {
        logger.info({ deleted: eventsDeleted, before: eventsBefore.toISOString() }, 'old events deleted');
      }
    }
    const checkpoint = await jobs.checkpointWhenIdle(clock(), this.#o.idleMs ?? 300_000);
    return { deleted, eventsDeleted, checkpointed: checkpoint.ran };
  }
}
