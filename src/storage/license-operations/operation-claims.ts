import { sql } from 'kysely';
import type { AssetRef, HolderKind, PlannedBatch } from '../../domain/license-operation.js';
import { finalStatus } from '../../domain/license-operation.js';
import type { StorageEngine } from '../engine.js';
import { dateFromColumn, dateToColumn } from '../vpp-token-columns.js';
import {
  type LicenseOperation,
  type LicenseOperationFailure,
  operationFromRow,
  operationSummaryColumns,
  type SnapshotUpdate,
} from './operation-store.js';
import { type LicenseOperationsDatabase, licenseOperationsDatabaseOf } from './tables.js';

// The worker's side of license operations, modelled on the sync job queue (sync-jobs/queue.ts): an
// operation is run only by the worker holding its lease; any worker takes over an expired lease, so an
// operation survives the process that started it. Every write below is conditioned on the lease, so a
// worker that lost it (paused, then taken over) changes nothing.

/** One Apple call of a claimed operation, as stored. */
export interface OperationBatch {
  readonly index: number;
  readonly assets: readonly AssetRef[];
  readonly holders: readonly string[];
  readonly requestedCount: number;
  readonly status: 'pending' | 'submitted' | 'completed' | 'failed';
  readonly eventId: string | null;
  readonly submittedAt: Date | null;
  readonly nextPollAt: Date | null;
  readonly polls: number;
  readonly submissions: number;
  readonly callFailures: number;
}

/** An operation a worker holds the lease of. */
export interface ClaimedOperation {
  readonly operation: LicenseOperation;
  readonly holderKind: HolderKind;
  readonly workerId: string;
  /** All holders of the operation (to plan its batches on the first claim). */
  readonly holders: readonly string[];
  /** Empty until planned. */
  readonly batches: readonly OperationBatch[];
  /** 1 for the first claim; more after takeovers or later steps. */
  readonly claims: number;
}

/** What Apple answered for a batch. */
export interface BatchOutcome {
  readonly completed: number;
  readonly failures: readonly LicenseOperationFailure[];
  /** When vppd gave up on the batch itself (every item counted failed with this message). */
  readonly errorMessage?: string;
}

export interface OperationClaims {
  /** Takes the lease of one operation with work due (oldest due first), or undefined. */
  claimDue(workerId: string, now: Date, leaseMs: number): Promise<ClaimedOperation | undefined>;
  /** Extends the lease; false when it was lost. */
  renew(claim: ClaimedOperation, now: Date, leaseMs: number): Promise<boolean>;
  /** Stores the batches of a pending operation and makes it `running`. */
  planBatches(claim: ClaimedOperation, batches: readonly PlannedBatch[], now: Date): Promise<boolean>;
  /** Apple accepted a batch: its event id, and when to poll it first. */
  recordSubmitted(
    claim: ClaimedOperation,
    index: number,
    eventId: string,
    now: Date,
    nextPollAt: Date,
  ): Promise<boolean>;
  /** A poll answered PENDING: poll again at `nextPollAt`. */
  recordPending(claim: ClaimedOperation, index: number, now: Date, nextPollAt: Date): Promise<boolean>;
  /**
   * An Apple call of the batch failed after the client's retries: try again at `retryAt` (the batch is
   * re-sent when it has no event yet, else polled again).
   */
  recordCallFailure(
    claim: ClaimedOperation,
    index: number,
    message: string,
    retryAt: Date,
    now: Date,
  ): Promise<boolean>;
  /** The batch ended: its completed count and failures; the operation's counts move. */
  recordOutcome(claim: ClaimedOperation, index: number, outcome: BatchOutcome, now: Date): Promise<boolean>;
  /**
   * When every batch has ended: the operation's final status (completed, failed, partiallyFailed), lease
   * dropped. Undefined while a batch is still open or when the lease was lost.
   */
  finish(
    claim: ClaimedOperation,
    now: Date,
    snapshotUpdate: SnapshotUpdate,
  ): Promise<LicenseOperation | undefined>;
  /** Batches of the operation not yet ended (pending or submitted). */
  openBatches(claim: ClaimedOperation): Promise<number>;
  /** Batches vppd gave up on (Apple refused the call or never finished it): nothing of them is known done. */
  givenUpBatches(claim: ClaimedOperation): Promise<{ assets: AssetRef[]; holders: string[] }[]>;
  /** Gives the lease back; the operation is due again at `nextActionAt` (its earliest poll). */
  release(claim: ClaimedOperation, nextActionAt: Date, now: Date): Promise<void>;
  /**
   * Gives the lease back with the operation due at its earliest open batch's poll (now when none is
   * open), read after the operation's row is locked: a notification that ended a batch meanwhile (it
   * locks the same row) is seen, so its "due now" is never overwritten with a later poll.
   */
  releaseUntilNextPoll(claim: ClaimedOperation, now: Date): Promise<void>;
}

export function createOperationClaims(options: { readonly storage: StorageEngine }): OperationClaims {
  const db: LicenseOperationsDatabase = licenseOperationsDatabaseOf(options.storage.db);

  const leased = (claim: ClaimedOperation) =>
    db
      .updateTable('license_operations')
      .where('id', '=', claim.operation.id)
      .where('lease_owner', '=', claim.workerId)
      .where('claims', '=', claim.claims);

  const holdsLease = async (trx: LicenseOperationsDatabase, claim: ClaimedOperation, now: Date) => {
    const result = await trx
      .updateTable('license_operations')
      .set({ updated_at: dateToColumn(now) })
      .where('id', '=', claim.operation.id)
      .where('lease_owner', '=', claim.workerId)
      .where('claims', '=', claim.claims)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  };

  return {
    async claimDue(workerId, now, leaseMs) {
      const nowText = dateToColumn(now);
      const candidates = await db
        .selectFrom('license_operations')
        .select(['id', 'claims'])
        .where('next_action_at', '<=', nowText)
        .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', nowText)]))
        .orderBy('next_action_at')
        .orderBy('id')
        .limit(10)
        .execute();
      for (const candidate of candidates) {
        const taken = await db
          .updateTable('license_operations')
          .set({
            lease_owner: workerId,
            lease_expires_at: dateToColumn(new Date(now.getTime() + leaseMs)),
            claims: candidate.claims + 1,
            updated_at: nowText,
          })
          .where('id', '=', candidate.id)
          .where('claims', '=', candidate.claims)
          .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', nowText)]))
          .where('next_action_at', 'is not', null)
          .executeTakeFirst();
        if (Number(taken.numUpdatedRows) !== 1) continue;
        const row = await db
          .selectFrom('license_operations')
          .select([...operationSummaryColumns, 'holders'])
          .where('id', '=', candidate.id)
          .executeTakeFirst();
        if (!row) continue;
        const batchRows = await db
          .selectFrom('license_operation_batches')
          .selectAll()
          .where('operation_id', '=', candidate.id)
          .orderBy('batch_index')
          .execute();
        return {
          operation: operationFromRow(row),
          holderKind: row.holder_kind as HolderKind,
          workerId,
          holders: JSON.parse(row.holders) as string[],
          claims: candidate.claims + 1,
          batches: batchRows.map((b) => ({
            index: b.batch_index,
            assets: JSON.parse(b.assets) as AssetRef[],
            holders: JSON.parse(b.holders) as string[],
            requestedCount: b.requested_count,
            status: b.status as OperationBatch['status'],
            eventId: b.event_id,
            submittedAt: b.submitted_at === null ? null : dateFromColumn(b.submitted_at),
            nextPollAt: b.next_poll_at === null ? null : dateFromColumn(b.next_poll_at),
            polls: b.polls,
            submissions: b.submissions,
            callFailures: b.call_failures,
          })),
        };
      }
      return undefined;
    },

    async renew(claim, now, leaseMs) {
      const result = await leased(claim)
        .set({ lease_expires_at: dateToColumn(new Date(now.getTime() + leaseMs)) })
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    planBatches(claim, batches, now) {
      return db.transaction().execute(async (trx) => {
        const updated = await trx
          .updateTable('license_operations')
          .set({ status: 'running', updated_at: dateToColumn(now) })
          .where('id', '=', claim.operation.id)
          .where('lease_owner', '=', claim.workerId)
          .where('claims', '=', claim.claims)
          .where('status', '=', 'pending')
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) !== 1) return false;
        for (let i = 0; i < batches.length; i += 200) {
          await trx
            .insertInto('license_operation_batches')
            .values(
              batches.slice(i, i + 200).map((b) => ({
                operation_id: claim.operation.id,
                batch_index: b.index,
                assets: JSON.stringify(b.assets),
                holders: JSON.stringify(b.holders),
                requested_count: b.requestedCount,
                status: 'pending',
                event_id: null,
                submitted_at: null,
                next_poll_at: null,
                polls: 0,
                submissions: 0,
                call_failures: 0,
                completed_count: 0,
                failed_count: 0,
                error_message: null,
              })),
            )
            .execute();
        }
        return true;
      });
    },

    recordSubmitted(claim, index, eventId, now, nextPollAt) {
      return db.transaction().execute(async (trx) => {
        if (!(await holdsLease(trx, claim, now))) return false;
        await trx
          .updateTable('license_operation_batches')
          .set((eb) => ({
            status: 'submitted',
            event_id: eventId,
            submitted_at: dateToColumn(now),
            next_poll_at: dateToColumn(nextPollAt),
            submissions: eb('submissions', '+', 1),
            call_failures: 0,
          }))
          .where('operation_id', '=', claim.operation.id)
          .where('batch_index', '=', index)
          .execute();
        return true;
      });
    },

    recordPending(claim, index, now, nextPollAt) {
      return db.transaction().execute(async (trx) => {
        if (!(await holdsLease(trx, claim, now))) return false;
        await trx
          .updateTable('license_operation_batches')
          .set((eb) => ({
            next_poll_at: dateToColumn(nextPollAt),
            polls: eb('polls', '+', 1),
            call_failures: 0,
          }))
          .where('operation_id', '=', claim.operation.id)
          .where('batch_index', '=', index)
          .execute();
        return true;
      });
    },

    recordCallFailure(claim, index, message, retryAt, now) {
      return db.transaction().execute(async (trx) => {
        if (!(await holdsLease(trx, claim, now))) return false;
        await trx
          .updateTable('license_operation_batches')
          .set((eb) => ({
            next_poll_at: dateToColumn(retryAt),
            call_failures: eb('call_failures', '+', 1),
            error_message: message,
          }))
          .where('operation_id', '=', claim.operation.id)
          .where('batch_index', '=', index)
          .execute();
        return true;
      });
    },

    recordOutcome(claim, index, outcome, now) {
      return db.transaction().execute(async (trx) => {
        if (!(await holdsLease(trx, claim, now))) return false;
        await writeBatchOutcome(trx, claim.operation.id, index, outcome);
        return true;
      });
    },

    async givenUpBatches(claim) {
      const rows = await db
        .selectFrom('license_operation_batches')
        .select(['assets', 'holders'])
        .where('operation_id', '=', claim.operation.id)
        .where('status', '=', 'failed')
        .where('error_message', 'is not', null)
        .execute();
      return rows.map((r) => ({
        assets: JSON.parse(r.assets) as AssetRef[],
        holders: JSON.parse(r.holders) as string[],
      }));
    },

    async openBatches(claim) {
      const open = await db
        .selectFrom('license_operation_batches')
        .select(sql<number>`count(*)`.as('n'))
        .where('operation_id', '=', claim.operation.id)
        .where('status', 'in', ['pending', 'submitted'])
        .executeTakeFirstOrThrow();
      return Number(open.n);
    },

    finish(claim, now, snapshotUpdate) {
      return db.transaction().execute(async (trx) => {
        const open = await trx
          .selectFrom('license_operation_batches')
          .select(sql<number>`count(*)`.as('n'))
          .where('operation_id', '=', claim.operation.id)
          .where('status', 'in', ['pending', 'submitted'])
          .executeTakeFirstOrThrow();
        if (Number(open.n) > 0) return undefined;
        const row = await trx
          .selectFrom('license_operations')
          .select(['completed_count', 'failed_count'])
          .where('id', '=', claim.operation.id)
          .where('lease_owner', '=', claim.workerId)
          .where('claims', '=', claim.claims)
          .executeTakeFirst();
        if (!row) return undefined;
        const nowText = dateToColumn(now);
        // The operation names why vppd gave up on a batch, if it did (the first such batch).
        const givenUp = await trx
          .selectFrom('license_operation_batches')
          .select('error_message')
          .where('operation_id', '=', claim.operation.id)
          .where('error_message', 'is not', null)
          .where('status', '=', 'failed')
          .orderBy('batch_index')
          .executeTakeFirst();
        await trx
          .updateTable('license_operations')
          .set({
            error_message: givenUp?.error_message ?? null,
            status: finalStatus(row.completed_count, row.failed_count),
            finished_at: nowText,
            updated_at: nowText,
            next_action_at: null,
            lease_owner: null,
            lease_expires_at: null,
            snapshot_update: snapshotUpdate,
          })
          .where('id', '=', claim.operation.id)
          .execute();
        const done = await trx
          .selectFrom('license_operations')
          .select(operationSummaryColumns)
          .where('id', '=', claim.operation.id)
          .executeTakeFirstOrThrow();
        return operationFromRow(done);
      });
    },

    async release(claim, nextActionAt, now) {
      await leased(claim)
        .set({
          lease_owner: null,
          lease_expires_at: null,
          next_action_at: dateToColumn(nextActionAt),
          updated_at: dateToColumn(now),
        })
        .execute();
    },

    async releaseUntilNextPoll(claim, now) {
      await db.transaction().execute(async (trx) => {
        if (!(await holdsLease(trx, claim, now))) return;
        const row = await trx
          .selectFrom('license_operation_batches')
          .select(sql<string | null>`min(coalesce(next_poll_at, ${dateToColumn(now)}))`.as('next'))
          .where('operation_id', '=', claim.operation.id)
          .where('status', 'in', ['pending', 'submitted'])
          .executeTakeFirst();
        await trx
          .updateTable('license_operations')
          .set({
            lease_owner: null,
            lease_expires_at: null,
            next_action_at: row?.next ?? dateToColumn(now),
            updated_at: dateToColumn(now),
          })
          .where('id', '=', claim.operation.id)
          .execute();
      });
    },
  };
}

/**
 * Ends a batch with Apple's outcome and moves its operation's counts, unless the batch already ended
 * (then nothing changes: a batch keeps its first outcome). Call inside a transaction that holds the
 * operation's row (the lease update of the worker, or the lock of a notification applying it), so a
 * poll and a notification for the same event never both count it. True when this call ended it.
 */
export async function writeBatchOutcome(
  trx: LicenseOperationsDatabase,
  operationId: string,
  index: number,
  outcome: BatchOutcome,
): Promise<boolean> {
  const batch = await trx
    .selectFrom('license_operation_batches')
    .select(['status', 'requested_count'])
    .where('operation_id', '=', operationId)
    .where('batch_index', '=', index)
    .executeTakeFirst();
  if (!batch || batch.status === 'completed' || batch.status === 'failed') return false;
  // Apple's failures list items it did not do; whatever it neither did nor listed counts as failed too.
  const failed =
    outcome.errorMessage !== undefined
      ? batch.requested_count
      : Math.max(outcome.failures.length, batch.requested_count - outcome.completed);
  const completed = Math.min(outcome.completed, batch.requested_count - failed);
  const ended = await trx
    .updateTable('license_operation_batches')
    .set({
      status: completed === 0 && failed > 0 ? 'failed' : 'completed',
      next_poll_at: null,
      completed_count: completed,
      failed_count: failed,
      error_message: outcome.errorMessage ?? null,
    })
    .where('operation_id', '=', operationId)
    .where('batch_index', '=', index)
    .where('status', 'in', ['pending', 'submitted'])
    .executeTakeFirst();
  if (Number(ended.numUpdatedRows) !== 1) return false;
  const failures = outcome.failures.slice(0, 10_000);
  for (let i = 0; i < failures.length; i += 200) {
    await trx
      .insertInto('license_operation_failures')
      .values(
        failures.slice(i, i + 200).map((f, j) => ({
          operation_id: operationId,
          batch_index: index,
          seq: i + j,
          adam_id: f.adamId,
          pricing_param: f.pricingParam,
          serial_number: f.serialNumber,
          client_user_id: f.clientUserId,
          error_number: f.errorNumber,
          error_message: f.errorMessage.slice(0, 1000),
        })),
      )
      .execute();
  }
  await trx
    .updateTable('license_operations')
    .set((eb) => ({
      completed_count: eb('completed_count', '+', completed),
      failed_count: eb('failed_count', '+', failed),
    }))
    .where('id', '=', operationId)
    .execute();
  return true;
}
