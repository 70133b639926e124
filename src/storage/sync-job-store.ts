import type { StorageEngine } from './engine.js';
import { createLocationClaims, type LocationClaims } from './sync-jobs/location-claims.js';
import { createSyncQueue, type SyncQueue } from './sync-jobs/queue.js';
import { createSyncRunHistory, type SyncRunHistory } from './sync-jobs/run-history.js';
import { createSyncRunOutcomes, type SyncRunOutcomes } from './sync-jobs/run-outcome.js';
import { createSyncSchedule, type SyncSchedule } from './sync-jobs/schedule.js';

export { type SyncTrigger, syncTriggers } from '../domain/sync-trigger.js';
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
export type { SyncJobStoreOptions } from './sync-jobs/transaction.js';

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
    LocationClaims,
    SyncRunHistory,
    SyncSchedule {
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
    ...createLocationClaims(parts),
    ...createSyncRunHistory(parts),
    ...createSyncSchedule(parts),
  };
}
