import type { Transaction } from 'kysely';
import {
  actionState,
  vppTokenActionFailureReason,
  vppTokenState,
  vppTokenSyncStatus,
} from '../domain/enums.js';
import { errors } from '../domain/errors.js';
import { type FailureOutcome, failureOutcome, type SyncFailure } from '../domain/sync-failure.js';
import {
  type ActionEvent,
  nextLastSyncDateTime,
  recordActionEvent,
  syncLicensesAction,
  type TokenActionResult,
  transitionSyncStatus,
} from '../domain/sync-lifecycle.js';
import { transitionTokenState } from '../domain/token-state.js';
import { actionResultFromRow, actionResultToRow, upsertActionResult } from './action-result-rows.js';
import type { DatabaseSchema, SyncJobRow, SyncRunOutcomeColumn, SyncRunRow } from './database-schema.js';
import type { VppdDatabase } from './open-database.js';
import { isUniqueViolation } from './storage-errors.js';
import { dateFromColumn, dateToColumn } from './vpp-token-columns.js';

/** Who asked for a sync. */
export const syncTriggers = ['api', 'created', 'renewed', 'scheduled'] as const;
export type SyncTrigger = (typeof syncTriggers)[number];

/** A durable sync job as the worker sees it. */
export interface SyncJob {
  readonly id: string;
  readonly tenantId: string;
  readonly tokenId: string;
  readonly trigger: SyncTrigger;
  readonly requestedAt: Date;
  readonly attempts: number;
  readonly leaseOwner: string | null;
  readonly leaseExpiresAt: Date | null;
  readonly runId: string | null;
}

/** A job a worker now holds the lease of, with the run (history row) it opened for this attempt. */
export interface ClaimedSync {
  readonly job: SyncJob;
  readonly runId: string;
  readonly attempt: number;
  readonly workerId: string;
}

/** One attempt in a token's sync history. */
export interface SyncRun {
  readonly id: string;
  readonly tenantId: string;
  readonly tokenId: string;
  readonly jobId: string;
  readonly trigger: string;
  readonly attempt: number;
  readonly workerId: string;
  readonly startedAt: Date;
  readonly finishedAt: Date | null;
  readonly outcome: SyncRunOutcomeColumn;
  readonly failure: (SyncFailure & { readonly reason: FailureOutcome['reason'] }) | null;
  readonly locationUid: string | null;
  readonly versionId: string | null;
  readonly assetCount: number | null;
  readonly assignmentCount: number | null;
  readonly pageCount: number | null;
}

/** What {@link SyncJobStore.requestSync} did. */
export type SyncRequestResult =
  | { readonly effect: 'started'; readonly jobId: string }
  | { readonly effect: 'coalesced' }
  | { readonly effect: 'notFound' };

/** Facts about the location and snapshot a successful run commits, besides the license rows. */
export interface SnapshotCommit {
  readonly locationUid: string;
  readonly locationName: string;
  readonly countryOrRegion: string | null;
  /** Apple's `tokenExpirationDate`, when it sent one. */
  readonly expirationDateTime: Date | undefined;
  readonly versionId: string;
  readonly assetCount: number;
  readonly assignmentCount: number;
  readonly pageCount: number;
  readonly totalLicenseCount: number;
  readonly usedLicenseCount: number;
  readonly availableLicenseCount: number;
}

/** Options of {@link SyncJobStore.claimNext}. */
export interface ClaimOptions {
  readonly workerId: string;
  readonly now: Date;
  readonly leaseMs: number;
  /** Syncs allowed to hold a live lease at once, across every process on this database. */
  readonly maxActive: number;
  /** Claims per job: 2 = the first run plus one retry after an interruption. */
  readonly maxAttempts: number;
  readonly newRunId: () => string;
}

/** What a claim found: a job to run, or a job whose retries were used up and was failed as interrupted. */
export type ClaimResult =
  | { readonly kind: 'claimed'; readonly claim: ClaimedSync }
  | { readonly kind: 'interrupted'; readonly job: SyncJob; readonly runId: string | null };

/** Thrown when a worker no longer holds the lease of its job (expired and taken over, or token deleted). */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}

const inProgress = vppTokenSyncStatus.toValue('inProgress');

/**
 * Durable sync jobs, leases and history. Every status change is computed by the domain's transition
 * functions and applied with a conditional UPDATE on the state it was computed from, so concurrent
 * processes on one database cannot both win; one job per token is a unique constraint.
 */
export interface SyncJobStore {
  /** Moves a token to `inProgress` and records a job, or coalesces with the sync already in flight. */
  requestSync(tenantId: string, tokenId: string, trigger: SyncTrigger, now: Date): Promise<SyncRequestResult>;
  /** Claims the next runnable job (fair across tenants), or fails one whose lease expired too often. */
  claimNext(options: ClaimOptions): Promise<ClaimResult | undefined>;
  /** Extends the lease; false when the worker lost it (taken over, or the token was deleted). */
  heartbeat(claim: ClaimedSync, now: Date, leaseMs: number): Promise<boolean>;
  /** Gives a job back without counting the attempt (graceful shutdown); its run is marked interrupted. */
  release(claim: ClaimedSync, now: Date): Promise<void>;
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
  ): Promise<{ readonly previousRunId: string | null }>;
  /** One transaction: status `failed`, token state and action result per the failure, history row closed. */
  fail(claim: ClaimedSync, failure: SyncFailure, now: Date, nextSyncAt: Date): Promise<boolean>;
  /**
   * Records that the token holds an Apple location; answers the id of another token of the tenant that
   * already holds it (the database's unique constraint decides races), or undefined when it is ours.
   */
  claimLocation(
    tenantId: string,
    tokenId: string,
    location: { readonly uid: string; readonly name: string },
    now: Date,
  ): Promise<string | undefined>;
  /** Records how far a run got (location, version, counts) while it is running. */
  recordProgress(runId: string, progress: Partial<Omit<SnapshotCommit, 'expirationDateTime'>>): Promise<void>;
  /** The job of a token, if one is pending or running. */
  jobOf(tenantId: string, tokenId: string): Promise<SyncJob | undefined>;
  /** A token's sync history, newest first. */
  listRuns(tenantId: string, tokenId: string, limit?: number): Promise<SyncRun[]>;
  /** The newest run of each of a tenant's tokens whose last sync failed (the dashboard's failure reasons). */
  newestRunsOfFailedTokens(tenantId: string): Promise<Map<string, SyncRun>>;
  /** Runs that are not current and still have license rows (failed, interrupted, replaced). */
  runsToClean(limit: number): Promise<string[]>;
  /** Marks a run's license rows as deleted. */
  markCleaned(runId: string): Promise<void>;
  /** Records when the scheduler should next sync a token. */
  schedule(tenantId: string, tokenId: string, nextSyncAt: Date): Promise<void>;
  /** Tokens whose automatic sync is due (or never scheduled) and that are not syncing now. */
  dueTokens(now: Date, limit: number): Promise<{ tenantId: string; tokenId: string }[]>;
}

export interface SyncJobStoreOptions {
  readonly db: VppdDatabase;
  readonly newId: () => string;
}

type Trx = Transaction<DatabaseSchema>;

/** Builds the Kysely-backed job store. */
export function createSyncJobStore(options: SyncJobStoreOptions): SyncJobStore {
  const { db, newId } = options;

  // Only the syncLicenses entry is touched: other actions' results (revokeLicenses) stay as stored.
  const applyActionEvent = async (
    trx: Trx,
    tenantId: string,
    tokenId: string,
    event: ActionEvent,
    at: Date,
  ): Promise<void> => {
    const rows = await trx
      .selectFrom('vpp_token_action_results')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('token_id', '=', tokenId)
      .execute();
    const existing = rows.find((r) => r.action_name === syncLicensesAction);
    const current: TokenActionResult[] = existing ? [actionResultFromRow(existing)] : [];
    if (existing && event === 'started' && actionState.fromValue(existing.action_state) === 'active') {
      return; // the retry of an interrupted run: the action is already active
    }
    const next = recordActionEvent(current, syncLicensesAction, event, at)[0];
    if (!next) return;
    const position = existing ? existing.position : rows.reduce((max, r) => Math.max(max, r.position + 1), 0);
    await upsertActionResult(trx, actionResultToRow(tenantId, tokenId, next, position));
  };

  /** Holds the job's lease right now (inside the transaction): the guard of commit and fail. */
  const holdsLease = async (trx: Trx, claim: ClaimedSync, now: Date): Promise<boolean> => {
    const result = await trx
      .updateTable('sync_jobs')
      .set({ heartbeat_at: dateToColumn(now) })
      .where('id', '=', claim.job.id)
      .where('lease_owner', '=', claim.workerId)
      .where('run_id', '=', claim.runId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  };

  const closeRun = (trx: Trx, runId: string, values: Partial<SyncRunRow>) =>
    trx
      .updateTable('sync_runs')
      .set(values)
      .where('id', '=', runId)
      .where('outcome', '=', 'running')
      .execute();

  /** Fails a token's sync inside a transaction (shared by fail and the interrupted path of claims). */
  const failToken = async (
    trx: Trx,
    tenantId: string,
    tokenId: string,
    failure: SyncFailure,
    now: Date,
  ): Promise<boolean> => {
    const token = await trx
      .selectFrom('vpp_tokens')
      .select(['last_sync_status', 'state'])
      .where('tenant_id', '=', tenantId)
      .where('id', '=', tokenId)
      .executeTakeFirst();
    if (!token) return false;
    const from = vppTokenSyncStatus.fromValue(token.last_sync_status);
    // Only a sync in flight can fail; anything else means this job no longer owns the status.
    if (from !== 'inProgress') return false;
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
    if (Number(updated.numUpdatedRows) !== 1) return false;
    await applyActionEvent(trx, tenantId, tokenId, 'failed', now);
    return true;
  };

  const failureColumns = (failure: SyncFailure): Partial<SyncRunRow> => ({
    failure_kind: failure.kind,
    failure_reason: vppTokenActionFailureReason.toValue(failureOutcome(failure.kind).reason),
    error_message: failure.message,
    apple_error_number: failure.appleErrorNumber ?? null,
    http_status: failure.httpStatus ?? null,
  });

  const upsertSchedule = (trx: Trx, tenantId: string, tokenId: string, nextSyncAt: Date) =>
    trx
      .insertInto('sync_schedule')
      .values({ token_id: tokenId, tenant_id: tenantId, next_sync_at: dateToColumn(nextSyncAt) })
      .onConflict((oc) => oc.column('token_id').doUpdateSet({ next_sync_at: dateToColumn(nextSyncAt) }))
      .execute();

  return {
    async requestSync(tenantId, tokenId, trigger, now) {
      // Compare-and-swap: compute the transition from the status read, apply it only if the status is
      // still that one. Losing the race means someone else started the sync: read again, coalesce.
      for (let round = 0; round < 5; round++) {
        const token = await db
          .selectFrom('vpp_tokens')
          .select(['last_sync_status'])
          .where('tenant_id', '=', tenantId)
          .where('id', '=', tokenId)
          .executeTakeFirst();
        if (!token) return { effect: 'notFound' };
        const from = vppTokenSyncStatus.fromValue(token.last_sync_status);
        const transition = transitionSyncStatus(from, 'syncRequested');
        if (transition.effect === 'coalesced') return { effect: 'coalesced' };
        const jobId = newId();
        const won = await db.transaction().execute(async (trx) => {
          const updated = await trx
            .updateTable('vpp_tokens')
            .set({ last_sync_status: vppTokenSyncStatus.toValue(transition.to) })
            .where('tenant_id', '=', tenantId)
            .where('id', '=', tokenId)
            .where('last_sync_status', '=', token.last_sync_status)
            .executeTakeFirst();
          if (Number(updated.numUpdatedRows) !== 1) return false;
          // A job row can only exist while the token is inProgress; one left over is stale.
          await trx.deleteFrom('sync_jobs').where('token_id', '=', tokenId).execute();
          await trx
            .insertInto('sync_jobs')
            .values({
              id: jobId,
              tenant_id: tenantId,
              token_id: tokenId,
              trigger,
              requested_at: dateToColumn(now),
              attempts: 0,
              lease_owner: null,
              lease_expires_at: null,
              heartbeat_at: null,
              run_id: null,
            })
            .execute();
          await applyActionEvent(trx, tenantId, tokenId, 'requested', now);
          return true;
        });
        if (won) return { effect: 'started', jobId };
      }
      throw errors.conflict('The sync status of this token keeps changing; try again.');
    },

    async claimNext(options) {
      const nowText = dateToColumn(options.now);
      const candidates = await db
        .selectFrom('sync_jobs as j')
        .selectAll('j')
        .select((eb) =>
          eb
            .selectFrom('sync_jobs as a')
            .select((e) => e.fn.countAll<number>().as('n'))
            .whereRef('a.tenant_id', '=', 'j.tenant_id')
            .where('a.lease_expires_at', '>', nowText)
            .as('tenant_active'),
        )
        .where((eb) => eb.or([eb('j.lease_expires_at', 'is', null), eb('j.lease_expires_at', '<=', nowText)]))
        // Fairness: tenants with the fewest running syncs first, then the oldest request.
        .orderBy('tenant_active')
        .orderBy('j.requested_at')
        .orderBy('j.id')
        .limit(20)
        .execute();
      for (const candidate of candidates) {
        const job = jobFromRow(candidate);
        const expiredLease = candidate.lease_owner !== null;
        const sameAsSeen = (trx: Trx) => {
          let query = trx
            .updateTable('sync_jobs')
            .where('id', '=', candidate.id)
            .where('attempts', '=', candidate.attempts);
          query =
            candidate.lease_expires_at === null
              ? query.where('lease_expires_at', 'is', null)
              : query.where('lease_expires_at', '=', candidate.lease_expires_at);
          return query;
        };
        if (expiredLease && candidate.attempts >= options.maxAttempts) {
          // The retry died too: fail the sync as interrupted instead of running it a third time.
          const failed = await db.transaction().execute(async (trx) => {
            const taken = await sameAsSeen(trx)
              .set({ lease_owner: options.workerId, lease_expires_at: nowText })
              .executeTakeFirst();
            if (Number(taken.numUpdatedRows) !== 1) return false;
            const failure = interruptedFailure(candidate.attempts);
            if (candidate.run_id !== null) {
              await closeRun(trx, candidate.run_id, {
                outcome: 'interrupted',
                finished_at: nowText,
                ...failureColumns(failure),
              });
            }
            await failToken(trx, candidate.tenant_id, candidate.token_id, failure, options.now);
            await trx.deleteFrom('sync_jobs').where('id', '=', candidate.id).execute();
            return true;
          });
          if (failed) return { kind: 'interrupted', job, runId: candidate.run_id };
          continue;
        }
        const runId = options.newRunId();
        const claimed = await db.transaction().execute(async (trx) => {
          // The global limit is checked in the same statement that takes the lease, so two processes
          // cannot both take the last slot (SQLite serializes writers).
          const taken = await sameAsSeen(trx)
            .set({
              lease_owner: options.workerId,
              lease_expires_at: dateToColumn(new Date(options.now.getTime() + options.leaseMs)),
              heartbeat_at: nowText,
              attempts: candidate.attempts + 1,
              run_id: runId,
            })
            .where((eb) =>
              eb(
                eb
                  .selectFrom('sync_jobs as a')
                  .select((e) => e.fn.countAll<number>().as('n'))
                  .where('a.lease_expires_at', '>', nowText),
                '<',
                options.maxActive,
              ),
            )
            .executeTakeFirst();
          if (Number(taken.numUpdatedRows) !== 1) return false;
          if (candidate.run_id !== null) {
            await closeRun(trx, candidate.run_id, {
              outcome: 'interrupted',
              finished_at: nowText,
              ...failureColumns({
                kind: 'interrupted',
                message: 'The worker running this sync stopped before it finished; the sync was retried.',
              }),
            });
          }
          await trx
            .insertInto('sync_runs')
            .values({
              id: runId,
              tenant_id: candidate.tenant_id,
              token_id: candidate.token_id,
              job_id: candidate.id,
              trigger: candidate.trigger,
              attempt: candidate.attempts + 1,
              worker_id: options.workerId,
              started_at: nowText,
              finished_at: null,
              outcome: 'running',
              failure_kind: null,
              failure_reason: null,
              error_message: null,
              apple_error_number: null,
              http_status: null,
              location_uid: null,
              version_id: null,
              asset_count: null,
              assignment_count: null,
              page_count: null,
              staging_cleared: 0,
            })
            .execute();
          await applyActionEvent(trx, candidate.tenant_id, candidate.token_id, 'started', options.now);
          return true;
        });
        if (claimed) {
          return {
            kind: 'claimed',
            claim: {
              job: { ...job, attempts: candidate.attempts + 1, leaseOwner: options.workerId, runId },
              runId,
              attempt: candidate.attempts + 1,
              workerId: options.workerId,
            },
          };
        }
      }
      return undefined;
    },

    async heartbeat(claim, now, leaseMs) {
      const result = await db
        .updateTable('sync_jobs')
        .set({
          heartbeat_at: dateToColumn(now),
          lease_expires_at: dateToColumn(new Date(now.getTime() + leaseMs)),
        })
        .where('id', '=', claim.job.id)
        .where('lease_owner', '=', claim.workerId)
        .where('run_id', '=', claim.runId)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async release(claim, now) {
      await db.transaction().execute(async (trx) => {
        const released = await trx
          .updateTable('sync_jobs')
          .set((eb) => ({
            lease_owner: null,
            lease_expires_at: null,
            run_id: null,
            attempts: eb('attempts', '-', 1),
          }))
          .where('id', '=', claim.job.id)
          .where('lease_owner', '=', claim.workerId)
          .where('run_id', '=', claim.runId)
          .executeTakeFirst();
        if (Number(released.numUpdatedRows) !== 1) return;
        await closeRun(trx, claim.runId, {
          outcome: 'interrupted',
          finished_at: dateToColumn(now),
          ...failureColumns({
            kind: 'interrupted',
            message: 'vppd was stopped during this sync; it runs again when a worker starts.',
          }),
        });
      });
    },

    async commit(claim, snapshot, now, nextSyncAt) {
      const { tenantId, tokenId } = claim.job;
      return db.transaction().execute(async (trx) => {
        if (!(await holdsLease(trx, claim, now))) throw new LeaseLostError('the sync lease was lost');
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
          .execute();
        await applyActionEvent(trx, tenantId, tokenId, 'succeeded', now);
        await closeRun(trx, claim.runId, {
          outcome: 'completed',
          finished_at: dateToColumn(now),
          location_uid: snapshot.locationUid,
          version_id: snapshot.versionId,
          asset_count: snapshot.assetCount,
          assignment_count: snapshot.assignmentCount,
          page_count: snapshot.pageCount,
        });
        await trx.deleteFrom('sync_jobs').where('id', '=', claim.job.id).execute();
        await upsertSchedule(trx, tenantId, tokenId, nextSyncAt);
        return { previousRunId: previous?.run_id ?? null };
      });
    },

    async fail(claim, failure, now, nextSyncAt) {
      const { tenantId, tokenId } = claim.job;
      return db.transaction().execute(async (trx) => {
        if (!(await holdsLease(trx, claim, now))) return false;
        await failToken(trx, tenantId, tokenId, failure, now);
        await closeRun(trx, claim.runId, {
          outcome: 'failed',
          finished_at: dateToColumn(now),
          ...failureColumns(failure),
        });
        await trx.deleteFrom('sync_jobs').where('id', '=', claim.job.id).execute();
        await upsertSchedule(trx, tenantId, tokenId, nextSyncAt);
        return true;
      });
    },

    async claimLocation(tenantId, tokenId, location, now) {
      const holderOf = async () => {
        const row = await db
          .selectFrom('token_locations')
          .select('token_id')
          .where('tenant_id', '=', tenantId)
          .where('location_uid', '=', location.uid)
          .executeTakeFirst();
        return row?.token_id;
      };
      const holder = await holderOf();
      if (holder !== undefined && holder !== tokenId) return holder;
      const values = {
        location_uid: location.uid,
        location_name: location.name,
        claimed_at: dateToColumn(now),
      };
      try {
        await db
          .insertInto('token_locations')
          .values({ token_id: tokenId, tenant_id: tenantId, ...values })
          .onConflict((oc) => oc.column('token_id').doUpdateSet(values))
          .execute();
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        const winner = await holderOf();
        if (winner !== undefined && winner !== tokenId) return winner;
        throw error;
      }
      return undefined;
    },

    async recordProgress(runId, progress) {
      const values: Partial<SyncRunRow> = {};
      if (progress.locationUid !== undefined) values.location_uid = progress.locationUid;
      if (progress.versionId !== undefined) values.version_id = progress.versionId;
      if (progress.assetCount !== undefined) values.asset_count = progress.assetCount;
      if (progress.assignmentCount !== undefined) values.assignment_count = progress.assignmentCount;
      if (progress.pageCount !== undefined) values.page_count = progress.pageCount;
      if (Object.keys(values).length === 0) return;
      await db.updateTable('sync_runs').set(values).where('id', '=', runId).execute();
    },

    async jobOf(tenantId, tokenId) {
      const row = await db
        .selectFrom('sync_jobs')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('token_id', '=', tokenId)
        .executeTakeFirst();
      return row ? jobFromRow(row) : undefined;
    },

    async newestRunsOfFailedTokens(tenantId) {
      const failed = vppTokenSyncStatus.toValue('failed');
      // The newest run of each failed token: no run of the same token started later (ties: the later attempt).
      const rows = await db
        .selectFrom('sync_runs as r')
        .selectAll('r')
        .where('r.tenant_id', '=', tenantId)
        .where('r.token_id', 'in', (eb) =>
          eb
            .selectFrom('vpp_tokens')
            .select('id')
            .where('tenant_id', '=', tenantId)
            .where('last_sync_status', '=', failed),
        )
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('sync_runs as later')
                .select('later.id')
                .whereRef('later.token_id', '=', 'r.token_id')
                .where((eb) =>
                  eb.or([
                    eb('later.started_at', '>', eb.ref('r.started_at')),
                    eb.and([
                      eb('later.started_at', '=', eb.ref('r.started_at')),
                      eb('later.attempt', '>', eb.ref('r.attempt')),
                    ]),
                  ]),
                ),
            ),
          ),
        )
        .execute();
      return new Map(rows.map((row) => [row.token_id, runFromRow(row)]));
    },

    async listRuns(tenantId, tokenId, limit = 50) {
      const rows = await db
        .selectFrom('sync_runs')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('token_id', '=', tokenId)
        .orderBy('started_at', 'desc')
        .orderBy('attempt', 'desc')
        .limit(limit)
        .execute();
      return rows.map(runFromRow);
    },

    async runsToClean(limit) {
      const rows = await db
        .selectFrom('sync_runs as r')
        .select('r.id')
        .where('r.staging_cleared', '=', 0)
        .where('r.outcome', '!=', 'running')
        .where((eb) =>
          eb.not(
            eb.exists(
              eb.selectFrom('license_snapshots as s').select('s.run_id').whereRef('s.run_id', '=', 'r.id'),
            ),
          ),
        )
        .orderBy('r.started_at')
        .limit(limit)
        .execute();
      return rows.map((r) => r.id);
    },

    async markCleaned(runId) {
      await db.updateTable('sync_runs').set({ staging_cleared: 1 }).where('id', '=', runId).execute();
    },

    async schedule(tenantId, tokenId, nextSyncAt) {
      try {
        await db.transaction().execute((trx) => upsertSchedule(trx, tenantId, tokenId, nextSyncAt));
      } catch (error) {
        // The token was deleted meanwhile: nothing to schedule.
        if (!isUniqueViolation(error) && !isForeignKeyViolation(error)) throw error;
      }
    },

    async dueTokens(now, limit) {
      const rows = await db
        .selectFrom('vpp_tokens as t')
        .leftJoin('sync_schedule as s', 's.token_id', 't.id')
        .select(['t.tenant_id', 't.id'])
        .where('t.last_sync_status', '!=', inProgress)
        .where((eb) =>
          eb.or([eb('s.next_sync_at', 'is', null), eb('s.next_sync_at', '<=', dateToColumn(now))]),
        )
        .orderBy('s.next_sync_at')
        .orderBy('t.id')
        .limit(limit)
        .execute();
      return rows.map((r) => ({ tenantId: r.tenant_id, tokenId: r.id }));
    },
  };
}

/** The failure of a sync whose worker died on every attempt. */
export function interruptedFailure(attempts: number): SyncFailure {
  return {
    kind: 'interrupted',
    message: `The sync was interrupted: the worker running it stopped before it finished (${attempts} attempt${attempts === 1 ? '' : 's'}, the last one a retry). Request a new sync; if it keeps happening, check that vppd is not being killed during syncs.`,
  };
}

/** True for a foreign-key violation on any supported engine (SQLite, PostgreSQL 23503). */
export function isForeignKeyViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  return code === 'SQLITE_CONSTRAINT_FOREIGNKEY' || code === '23503';
}

function jobFromRow(row: SyncJobRow): SyncJob {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    tokenId: row.token_id,
    trigger: (syncTriggers as readonly string[]).includes(row.trigger) ? (row.trigger as SyncTrigger) : 'api',
    requestedAt: dateFromColumn(row.requested_at),
    attempts: row.attempts,
    leaseOwner: row.lease_owner,
    leaseExpiresAt: row.lease_expires_at === null ? null : dateFromColumn(row.lease_expires_at),
    runId: row.run_id,
  };
}

function runFromRow(row: SyncRunRow): SyncRun {
  const failure =
    row.failure_kind === null
      ? null
      : {
          kind: row.failure_kind as SyncFailure['kind'],
          message: row.error_message ?? '',
          ...(row.apple_error_number === null ? {} : { appleErrorNumber: row.apple_error_number }),
          ...(row.http_status === null ? {} : { httpStatus: row.http_status }),
          reason: vppTokenActionFailureReason.fromValue(row.failure_reason ?? 0),
        };
  return {
    id: row.id,
    tenantId: row.tenant_id,
    tokenId: row.token_id,
    jobId: row.job_id,
    trigger: row.trigger,
    attempt: row.attempt,
    workerId: row.worker_id,
    startedAt: dateFromColumn(row.started_at),
    finishedAt: row.finished_at === null ? null : dateFromColumn(row.finished_at),
    outcome: row.outcome,
    failure,
    locationUid: row.location_uid,
    versionId: row.version_id,
    assetCount: row.asset_count,
    assignmentCount: row.assignment_count,
    pageCount: row.page_count,
  };
}
