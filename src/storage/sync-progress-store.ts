import type { Selectable } from 'kysely';
import { isSyncPhase, type SyncPhase, type SyncProgress } from '../domain/sync-phase.js';
import type { SyncJobRow } from './database-schema.js';
import type { StorageEngine } from './engine.js';
import { appendEvent } from './event-store.js';
import { dateFromColumn, dateToColumn } from './vpp-token-columns.js';

/** The progress columns migration 0004 adds to `sync_jobs`. */
interface SyncJobProgressColumns {
  progress_phase: string | null;
  progress_pages: number | null;
  progress_records: number | null;
  progress_at: string | null;
}

/** The sync in flight for a token, as stored on its job row. */
export interface LiveSync {
  readonly jobId: string;
  /** `queued`: waiting for a worker; `running`: a worker holds a live lease. */
  readonly state: 'queued' | 'running';
  readonly trigger: string;
  readonly requestedAt: Date;
  readonly attempt: number;
  readonly runId: string | null;
  /** Undefined until the worker wrote its first progress note. */
  readonly phase: SyncPhase | undefined;
  readonly pages: number;
  readonly records: number;
  readonly progressAt: Date | undefined;
}

/** Live sync progress on the job rows: written by the worker, read by the API (any process). */
export interface SyncProgressStore {
  /** Writes a run's progress; ignored when the job moved on (lease lost, committed, failed). */
  record(jobId: string, runId: string, progress: SyncProgress, at: Date): Promise<void>;
  /** The queued or running sync of a token, or undefined when none is in flight. */
  live(tenantId: string, tokenId: string, now: Date): Promise<LiveSync | undefined>;
  /** Every queued or running sync of a tenant, by token id (the dashboard's live view). */
  liveOfTenant(tenantId: string, now: Date): Promise<Map<string, LiveSync>>;
}

/** Builds the Kysely-backed progress store. */
export function createSyncProgressStore(options: { readonly storage: StorageEngine }): SyncProgressStore {
  // The columns of migration 0004, added to this store's view of the schema only.
  const db = options.storage.db.withTables<{ sync_jobs: SyncJobRow & SyncJobProgressColumns }>();
  return {
    record(jobId, runId, progress, at) {
      // One `syncProgressed` event per write, appended only when the job row took it; the row's
      // tenant and token come back from the update itself (no read before it).
      return options.storage.db.transaction().execute(async (trx) => {
        const updated = await trx
          .withTables<{ sync_jobs: SyncJobProgressColumns }>()
          .updateTable('sync_jobs')
          .set({
            progress_phase: progress.phase,
            progress_pages: progress.pages,
            progress_records: progress.records,
            progress_at: dateToColumn(at),
          })
          .where('id', '=', jobId)
          .where('run_id', '=', runId)
          .returning(['tenant_id', 'token_id'])
          .executeTakeFirst();
        if (updated === undefined) return;
        await appendEvent(trx, options.storage, at, {
          tenantId: updated.tenant_id,
          tokenId: updated.token_id,
          type: 'syncProgressed',
          payload: { runId, phase: progress.phase, pages: progress.pages, records: progress.records },
        });
      });
    },

    async live(tenantId, tokenId, now) {
      const row = await db
        .selectFrom('sync_jobs')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('token_id', '=', tokenId)
        // A license-count refresh is not a sync of the token (a delta sync is).
        .where('kind', 'in', ['licenses', 'delta'])
        .executeTakeFirst();
      return row === undefined ? undefined : liveFromRow(row, now);
    },

    async liveOfTenant(tenantId, now) {
      const rows = await db
        .selectFrom('sync_jobs')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('kind', 'in', ['licenses', 'delta'])
        .execute();
      return new Map(rows.map((row) => [row.token_id, liveFromRow(row, now)]));
    },
  };
}

function liveFromRow(row: Selectable<SyncJobRow> & SyncJobProgressColumns, now: Date): LiveSync {
  const leased =
    row.lease_owner !== null &&
    row.lease_expires_at !== null &&
    dateFromColumn(row.lease_expires_at).getTime() > now.getTime();
  // Progress notes belong to the attempt that wrote them; a job given back starts over.
  const current = leased && row.run_id !== null;
  return {
    jobId: row.id,
    state: current ? 'running' : 'queued',
    trigger: row.trigger,
    requestedAt: dateFromColumn(row.requested_at),
    attempt: row.attempts,
    runId: row.run_id,
    phase: current && isSyncPhase(row.progress_phase) ? row.progress_phase : undefined,
    pages: current ? (row.progress_pages ?? 0) : 0,
    records: current ? (row.progress_records ?? 0) : 0,
    progressAt: current && row.progress_at !== null ? dateFromColumn(row.progress_at) : undefined,
  };
}
