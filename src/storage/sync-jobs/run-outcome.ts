import type { Selectable } from 'kysely';
import { actionState, vppTokenState, vppTokenSyncStatus } from '../../domain/enums.js';
import type { SyncFailure } from '../../domain/sync-failure.js';
import {
  type ActionEvent,
  nextLastSyncDateTime,
  recordActionEvent,
  syncLicenseCountsAction,
  syncLicensesAction,
  type TokenActionResult,
  transitionSyncStatus,
} from '../../domain/sync-lifecycle.js';
import { transitionTokenState } from '../../domain/token-state.js';
import { actionResultFromRow, actionResultToRow, upsertActionResult } from '../action-result-rows.js';
import { answerNotNeeded } from '../answer-not-needed.js';
import type { VppTokenActionResultRow } from '../database-schema.js';
import { appendEvents, type NewEvent } from '../event-store.js';
import { dateFromColumn, dateToColumn } from '../vpp-token-columns.js';
import { closeRun, failureColumns } from './run-history.js';
import { setNextDelta, upsertSchedule } from './schedule.js';
import type { ClaimedSync, SnapshotCommit } from './sync-job-types.js';
import { inProgress, type SyncJobStoreOptions, type Trx } from './transaction.js';

export type { SnapshotCommit } from './sync-job-types.js';

/** Thrown when a worker no longer holds the lease of its job (expired and taken over, or token deleted). */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}

/** How a run ends: its snapshot committed, or the sync failed; the token's status and state follow. */
export interface SyncRunOutcomes {
  /**
   * One transaction: the run's rows become the token's current snapshot, counts and token fields are
   * updated and the status moves to `completed`. Returns the run id of the replaced snapshot.
   * Throws {@link LeaseLostError} when the lease is gone (nothing is changed then).
   */
  commit(
    claim: ClaimedSync,
    snapshot: SnapshotCommit,
    now: Date,
    nextSyncAt: Date,
    nextDeltaAt?: Date | null,
  ): Promise<{ readonly previousRunId: string | null }>;
  /**
   * One transaction: status `failed`, token state and action result per the failure, history row closed.
   * `nextSyncAt` null keeps the token's next full sync (a failed delta does not move it).
   */
  fail(
    claim: ClaimedSync,
    failure: SyncFailure,
    now: Date,
    nextSyncAt: Date | null,
    nextDeltaAt?: Date | null,
  ): Promise<boolean>;
}

/**
 * Records an action event of a token (`syncLicenses` unless `actionName` says otherwise); other
 * actions' results (revokeLicenses) stay as stored. A full sync refreshes the asset counts too, so
 * when it ends, a `syncLicenseCounts` still pending or active (its job was folded into this sync)
 * ends with it.
 */
export const applyActionEvent = async (
  trx: Trx,
  tenantId: string,
  tokenId: string,
  event: ActionEvent,
  at: Date,
  actionName: string = syncLicensesAction,
): Promise<void> => {
  const rows = await trx
    .selectFrom('vpp_token_action_results')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('token_id', '=', tokenId)
    .execute();
  await recordOn(trx, tenantId, tokenId, rows, actionName, event, at);
  if (actionName !== syncLicensesAction || (event !== 'succeeded' && event !== 'failed')) return;
  const counts = rows.find((r) => r.action_name === syncLicenseCountsAction);
  const state = counts === undefined ? undefined : actionState.fromValue(counts.action_state);
  if (state !== 'pending' && state !== 'active') return;
  const events: ActionEvent[] = state === 'pending' && event === 'succeeded' ? ['started', event] : [event];
  for (const e of events) {
    const fresh = await trx
      .selectFrom('vpp_token_action_results')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('token_id', '=', tokenId)
      .execute();
    await recordOn(trx, tenantId, tokenId, fresh, syncLicenseCountsAction, e, at);
  }
};

const recordOn = async (
  trx: Trx,
  tenantId: string,
  tokenId: string,
  rows: readonly Selectable<VppTokenActionResultRow>[],
  actionName: string,
  event: ActionEvent,
  at: Date,
): Promise<void> => {
  const existing = rows.find((r) => r.action_name === actionName);
  const current: TokenActionResult[] = existing ? [actionResultFromRow(existing)] : [];
  if (existing && event === 'started' && actionState.fromValue(existing.action_state) === 'active') {
    return; // the retry of an interrupted run: the action is already active
  }
  const next = recordActionEvent(current, actionName, event, at)[0];
  if (!next) return;
  const position = existing ? existing.position : rows.reduce((max, r) => Math.max(max, r.position + 1), 0);
  await upsertActionResult(trx, actionResultToRow(tenantId, tokenId, next, position));
};

/** Holds the job's lease right now (inside the transaction): the guard of commit and fail. */
export const holdsLease = async (trx: Trx, claim: ClaimedSync, now: Date): Promise<boolean> => {
  const result = await trx
    .updateTable('sync_jobs')
    .set({ heartbeat_at: dateToColumn(now) })
    .where('id', '=', claim.job.id)
    .where('lease_owner', '=', claim.workerId)
    .where('run_id', '=', claim.runId)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
};

/**
 * Fails a token's sync inside a transaction (shared by fail and the interrupted path of claims).
 * Answers the events to append last in the transaction (with the caller's `syncFailed`): the token's
 * `stateChanged` when the failure changed its state; none when the token was not syncing.
 */
export const failToken = async (
  trx: Trx,
  tenantId: string,
  tokenId: string,
  failure: SyncFailure,
  now: Date,
): Promise<NewEvent[]> => {
  const token = await trx
    .selectFrom('vpp_tokens')
    .select(['last_sync_status', 'state'])
    .where('tenant_id', '=', tenantId)
    .where('id', '=', tokenId)
    .executeTakeFirst();
  if (!token) return [];
  const from = vppTokenSyncStatus.fromValue(token.last_sync_status);
  // Only a sync in flight can fail; anything else means this job no longer owns the status.
  if (from !== 'inProgress') return [];
  const transition = transitionSyncStatus(from, 'syncFailed');
  const state = transitionTokenState(vppTokenState.fromValue(token.state), {
    type: 'syncFailed',
    kind: failure.kind,
  });
  const updated = await trx
    .updateTable('vpp_tokens')
    .set({
      last_sync_status: vppTokenSyncStatus.toValue(transition.to),
      state: vppTokenState.toValue(state),
    })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', tokenId)
    .where('last_sync_status', '=', inProgress)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) !== 1) return [];
  await applyActionEvent(trx, tenantId, tokenId, 'failed', now);
  const before = vppTokenState.fromValue(token.state);
  return state === before
    ? []
    : [{ tenantId, tokenId, type: 'stateChanged', payload: { from: before, to: state } }];
};

/** What a successful run writes on its token: the location facts it read. */
export type CompletedLocation = Pick<
  SnapshotCommit,
  'locationName' | 'countryOrRegion' | 'expirationDateTime'
>;

/**
 * A sync (full or delta) completed, inside its commit transaction: the token's status moves from
 * `inProgress` to `completed` and its location facts are written. Answers the `stateChanged` event when
 * the state changed. Throws {@link LeaseLostError} when the token is gone or no longer syncing.
 */
export const completeToken = async (
  trx: Trx,
  claim: ClaimedSync,
  snapshot: CompletedLocation,
  now: Date,
): Promise<NewEvent[]> => {
  const { tenantId, tokenId } = claim.job;
  const token = await trx
    .selectFrom('vpp_tokens')
    .select(['last_sync_status', 'state', 'last_sync_date_time'])
    .where('tenant_id', '=', tenantId)
    .where('id', '=', tokenId)
    .executeTakeFirst();
  if (!token) throw new LeaseLostError('the token was deleted');
  const transition = transitionSyncStatus(
    vppTokenSyncStatus.fromValue(token.last_sync_status),
    'snapshotCommitted',
  );
  const state = transitionTokenState(vppTokenState.fromValue(token.state), { type: 'syncSucceeded' });
  const lastSync = nextLastSyncDateTime(dateFromColumn(token.last_sync_date_time), transition, now);
  const updated = await trx
    .updateTable('vpp_tokens')
    .set({
      last_sync_status: vppTokenSyncStatus.toValue(transition.to),
      state: vppTokenState.toValue(state),
      last_sync_date_time: dateToColumn(lastSync),
      location_name: snapshot.locationName,
      ...(snapshot.countryOrRegion === null ? {} : { country_or_region: snapshot.countryOrRegion }),
      ...(snapshot.expirationDateTime === undefined
        ? {}
        : { expiration_date_time: dateToColumn(snapshot.expirationDateTime) }),
    })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', tokenId)
    .where('last_sync_status', '=', inProgress)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) !== 1) throw new LeaseLostError('the token is no longer syncing');
  const stateBefore = vppTokenState.fromValue(token.state);
  return state === stateBefore
    ? []
    : [{ tenantId, tokenId, type: 'stateChanged', payload: { from: stateBefore, to: state } }];
};

export function createSyncRunOutcomes({ db, storage }: SyncJobStoreOptions): SyncRunOutcomes {
  return {
    async commit(claim, snapshot, now, nextSyncAt, nextDeltaAt) {
      const { tenantId, tokenId } = claim.job;
      return db.transaction().execute(async (trx) => {
        if (!(await holdsLease(trx, claim, now))) throw new LeaseLostError('the sync lease was lost');
        const stateEvents = await completeToken(trx, claim, snapshot, now);
        const previous = await trx
          .selectFrom('license_snapshots')
          .select('run_id')
          .where('token_id', '=', tokenId)
          .executeTakeFirst();
        const pointer = {
          run_id: claim.runId,
          version_id: snapshot.versionId,
          location_uid: snapshot.locationUid,
          committed_at: dateToColumn(now),
          asset_count: snapshot.assetCount,
          assignment_count: snapshot.assignmentCount,
          total_license_count: snapshot.totalLicenseCount,
          used_license_count: snapshot.usedLicenseCount,
          available_license_count: snapshot.availableLicenseCount,
        };
        await trx
          .insertInto('license_snapshots')
          .values({ token_id: tokenId, tenant_id: tenantId, ...pointer })
          .onConflict((oc) => oc.column('token_id').doUpdateSet(pointer))
          .modifyEnd(answerNotNeeded)
          .execute();
        await applyActionEvent(trx, tenantId, tokenId, 'succeeded', now);
        await closeRun(trx, claim.runId, {
          outcome: 'completed',
          // A delta that fell back to a full read ends as a full sync.
          kind: 'licenses',
          finished_at: dateToColumn(now),
          location_uid: snapshot.locationUid,
          version_id: snapshot.versionId,
          asset_count: snapshot.assetCount,
          assignment_count: snapshot.assignmentCount,
          page_count: snapshot.pageCount,
        });
        await trx.deleteFrom('sync_jobs').where('id', '=', claim.job.id).modifyEnd(answerNotNeeded).execute();
        await upsertSchedule(trx, tenantId, tokenId, nextSyncAt, nextDeltaAt);
        const events: NewEvent[] = [
          {
            tenantId,
            tokenId,
            type: 'syncCompleted',
            payload: {
              kind: 'licenses',
              runId: claim.runId,
              assets: snapshot.assetCount,
              assignments: snapshot.assignmentCount,
            },
          },
        ];
        events.push(...stateEvents);
        await appendEvents(trx, storage, now, events);
        return { previousRunId: previous?.run_id ?? null };
      });
    },

    async fail(claim, failure, now, nextSyncAt, nextDeltaAt) {
      const { tenantId, tokenId } = claim.job;
      return db.transaction().execute(async (trx) => {
        if (!(await holdsLease(trx, claim, now))) return false;
        const stateEvents = await failToken(trx, tenantId, tokenId, failure, now);
        await closeRun(trx, claim.runId, {
          outcome: 'failed',
          finished_at: dateToColumn(now),
          ...failureColumns(failure),
        });
        await trx.deleteFrom('sync_jobs').where('id', '=', claim.job.id).execute();
        if (nextSyncAt !== null) await upsertSchedule(trx, tenantId, tokenId, nextSyncAt, nextDeltaAt);
        else if (nextDeltaAt !== undefined) await setNextDelta(trx, tokenId, nextDeltaAt);
        await appendEvents(trx, storage, now, [
          {
            tenantId,
            tokenId,
            type: 'syncFailed',
            payload: {
              kind: claim.job.kind,
              jobId: claim.job.id,
              runId: claim.runId,
              failureKind: failure.kind,
            },
          },
          ...stateEvents,
        ]);
        return true;
      });
    },
  };
}
