import { vppTokenActionFailureReason, vppTokenSyncStatus } from '../../domain/enums.js';
import { type FailureOutcome, failureOutcome, type SyncFailure } from '../../domain/sync-failure.js';
import { answerNotNeeded } from '../answer-not-needed.js';
import type { SyncRunOutcomeColumn, SyncRunRow } from '../database-schema.js';
import { dateFromColumn } from '../vpp-token-columns.js';
import type { SnapshotCommit } from './sync-job-types.js';
import type { SyncJobStoreOptions, Trx } from './transaction.js';

/** One attempt in a token's sync history. */
export interface SyncRun {
  readonly id: string;
  readonly tenantId: string;
  readonly tokenId: string;
  readonly jobId: string;
  readonly trigger: string;
  /** `licenses` (a full sync, also a delta that read everything instead) or `delta`. */
  readonly kind: 'licenses' | 'delta';
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

/** Each attempt's history row, from its start to its clean-up. */
export interface SyncRunHistory {
  /** Records how far a run got (location, version, counts) while it is running. */
  recordProgress(runId: string, progress: Partial<Omit<SnapshotCommit, 'expirationDateTime'>>): Promise<void>;
  /** A token's sync history, newest first. */
  listRuns(tenantId: string, tokenId: string, limit?: number): Promise<SyncRun[]>;
  /** The newest run of each of a tenant's tokens whose last sync failed (the dashboard's failure reasons). */
  newestRunsOfFailedTokens(tenantId: string): Promise<Map<string, SyncRun>>;
  /** Runs that are not current and still have license rows (failed, interrupted, replaced). */
  runsToClean(limit: number): Promise<string[]>;
  /** Marks a run's license rows as deleted. */
  markCleaned(runId: string): Promise<void>;
}

/** Closes a run that is still running (a run closed already keeps its outcome). */
export const closeRun = (trx: Trx, runId: string, values: Partial<SyncRunRow>) =>
  trx
    .updateTable('sync_runs')
    .set(values)
    .where('id', '=', runId)
    .where('outcome', '=', 'running')
    .modifyEnd(answerNotNeeded)
    .execute();

/** The history columns that describe a failure. */
export const failureColumns = (failure: SyncFailure): Partial<SyncRunRow> => ({
  failure_kind: failure.kind,
  failure_reason: vppTokenActionFailureReason.toValue(failureOutcome(failure.kind).reason),
  error_message: failure.message,
  apple_error_number: failure.appleErrorNumber ?? null,
  http_status: failure.httpStatus ?? null,
});

export function createSyncRunHistory({ db }: SyncJobStoreOptions): SyncRunHistory {
  return {
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
    kind: row.kind === 'delta' ? 'delta' : 'licenses',
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
