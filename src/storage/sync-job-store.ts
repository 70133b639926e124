import type { StorageEngine } from './engine.js';
import { createDeltaCommits, type DeltaCommits } from './sync-jobs/delta-commit.js';
import { createSyncHistoryRetention, type SyncHistoryRetention } from './sync-jobs/history-retention.js';
import { createLocationClaims, type LocationClaims } from './sync-jobs/location-claims.js';
import { createSyncQueue, type SyncQueue } from './sync-jobs/queue.js';
import { createSyncRunHistory, type SyncRunHistory } from './sync-jobs/run-history.js';
import { createSyncRunOutcomes, type SyncRunOutcomes } from './sync-jobs/run-outcome.js';
import { createSyncSchedule, type SyncSchedule } from './sync-jobs/schedule.js';
import { type CheckpointResult, checkpointWhenIdle } from './wal-checkpoint.js';

export { type SyncTrigger, syncTriggers } from '../domain/sync-trigger.js';
export { type DeltaCommitResult, type DeltaCommits, DeltaSupersededError } from './sync-jobs/delta-commit.js';
export type { PruneRunsOptions, SyncHistoryRetention } from './sync-jobs/history-retention.js';
export type { LocationClaims } from './sync-jobs/location-claims.js';
export {
  type ClaimedSync,
  type ClaimOptions,
  type ClaimResult,
  interruptedFailure,
  type SyncJob,
  type SyncQueue,
  type SyncRequestResult,
} from './sync-jobs/queue.js';
export type { SyncRun, SyncRunHistory } from './sync-jobs/run-history.js';
export { LeaseLostError, type SnapshotCommit, type SyncRunOutcomes } from './sync-jobs/run-outcome.js';
export type { SyncSchedule } from './sync-jobs/schedule.js';
export type { DeltaBase, DeltaCommit, StoredAssetRow } from './sync-jobs/sync-job-types.js';
export type { SyncJobStoreOptions } from './sync-jobs/transaction.js';
export type { CheckpointResult } from './wal-checkpoint.js';

/**
 * Durable sync jobs, leases and history. Every status change is computed by the domain's transition
 * functions and applied with a conditional UPDATE on the state it was computed from, so concurrent
 * processes on one database cannot both win; one job per token is a unique constraint.
 *
 * One family of operations per file under `sync-jobs/`: the queue and its leases, the outcome of a
 * run, location claims, run history and clean-up, the schedule.
 */
export interface SyncJobStore
  extends SyncQueue,
    SyncRunOutcomes,
    DeltaCommits,
    LocationClaims,
    SyncRunHistory,
    SyncHistoryRetention,
    SyncSchedule {
  /**
   * When no sync ran for `idleMs`, the engine's write-ahead log is truncated back to zero bytes where it
   * keeps one (SQLite's WAL; storage/wal-checkpoint.ts); elsewhere nothing.
   */
  checkpointWhenIdle(now: Date, idleMs: number): Promise<CheckpointResult>;
  /**
   * True when a write failed because a row it references is gone (a foreign-key violation): the token
   * was deleted while its sync ran.
   */
  isForeignKeyViolation(error: unknown): boolean;
}

/** Builds the Kysely-backed job store. */
export function createSyncJobStore(options: {
  readonly storage: StorageEngine;
  readonly newId: () => string;
}): SyncJobStore {
  const parts = { ...options, db: options.storage.db };
  return {
    isForeignKeyViolation: (error) => options.storage.isForeignKeyViolation(error),
    ...createSyncQueue(parts),
    ...createSyncRunOutcomes(parts),
    ...createDeltaCommits(parts),
    ...createLocationClaims(parts),
    ...createSyncRunHistory(parts),
    ...createSyncHistoryRetention(parts),
    ...createSyncSchedule(parts),
    checkpointWhenIdle: (now, idleMs) => checkpointWhenIdle(options.storage, now, idleMs),
  };
}
