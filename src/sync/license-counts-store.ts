import { sql } from 'kysely';
import type { CountsReadColumns } from '../storage/apple-notification-store.js';
import type { StorageEngine } from '../storage/engine.js';
import { appendEvent } from '../storage/event-store.js';
import { dateToColumn } from '../storage/vpp-token-columns.js';

/** Apple's counts of one asset (`GET /assets`). */
export interface AssetCounts {
  readonly adamId: string;
  readonly pricingParam: string;
  readonly totalCount: number;
  readonly assignedCount: number;
  readonly availableCount: number;
  readonly retiredCount: number;
}

/** What {@link LicenseCountsStore.applyCounts} changed. */
export interface ApplyCountsResult {
  /** False when the token's current snapshot is no longer `runId` (a sync replaced it): nothing changed. */
  readonly applied: boolean;
  /** Assets of the snapshot whose counts were updated. */
  readonly updated: number;
  /** Assets Apple listed that the snapshot does not hold (a full sync adds them). */
  readonly unknown: number;
}

/** Writes fresh asset counts into a token's current snapshot. */
export interface LicenseCountsStore {
  /** The run of the token's current snapshot, if it has one. */
  currentRunId(tenantId: string, tokenId: string): Promise<string | undefined>;
  /**
   * In one transaction: if the token's current snapshot is still `runId`, updates the counts of its
   * assets that Apple listed and the snapshot's sums. Assignments are not touched.
   */
  applyCounts(
    tenantId: string,
    tokenId: string,
    runId: string,
    counts: readonly AssetCounts[],
    read: { readonly startedAt: Date; readonly finishedAt: Date },
  ): Promise<ApplyCountsResult>;
}

/** Builds the Kysely-backed store of asset count refreshes. */
export function createLicenseCountsStore(options: { readonly storage: StorageEngine }): LicenseCountsStore {
  const { storage } = options;
  const { db } = storage;
  return {
    async currentRunId(tenantId, tokenId) {
      const row = await db
        .selectFrom('license_snapshots')
        .select('run_id')
        .where('tenant_id', '=', tenantId)
        .where('token_id', '=', tokenId)
        .executeTakeFirst();
      return row?.run_id;
    },

    applyCounts(tenantId, tokenId, runId, counts, read) {
      return db.transaction().execute(async (trx) => {
        // Re-check the pointer inside the transaction, its row locked until the counts are written: a
        // sync that committed meanwhile holds newer data, and one committing now waits for this.
        const snapshot = await storage
          .lockForUpdate(
            trx
              .selectFrom('license_snapshots')
              .select('run_id')
              .where('tenant_id', '=', tenantId)
              .where('token_id', '=', tokenId),
          )
          .executeTakeFirst();
        if (!snapshot || snapshot.run_id !== runId) return { applied: false, updated: 0, unknown: 0 };
        let updated = 0;
        for (const c of counts) {
          const result = await trx
            .updateTable('license_assets')
            .set({
              total_count: c.totalCount,
              assigned_count: c.assignedCount,
              available_count: c.availableCount,
              retired_count: c.retiredCount,
            })
            .where('run_id', '=', runId)
            .where('adam_id', '=', c.adamId)
            .where('pricing_param', '=', c.pricingParam)
            .executeTakeFirst();
          updated += Number(result.numUpdatedRows);
        }
        const sums = await trx
          .selectFrom('license_assets')
          .select([
            sql<number | string | bigint>`coalesce(sum(total_count), 0)`.as('total'),
            sql<number | string | bigint>`coalesce(sum(assigned_count), 0)`.as('used'),
            sql<number | string | bigint>`coalesce(sum(available_count), 0)`.as('available'),
          ])
          .where('run_id', '=', runId)
          .executeTakeFirstOrThrow();
        await trx
          .withTables<CountsReadColumns>()
          .updateTable('license_snapshots')
          .set({
            total_license_count: Number(sums.total),
            used_license_count: Number(sums.used),
            available_license_count: Number(sums.available),
            // Where Apple's ASSET_COUNT notifications stand against these counts (notification store).
            counts_read_started_at: dateToColumn(read.startedAt),
            counts_read_finished_at: dateToColumn(read.finishedAt),
          })
          .where('tenant_id', '=', tenantId)
          .where('token_id', '=', tokenId)
          .where('run_id', '=', runId)
          .execute();
        // Readers of the log (the read cache, license alerts) learn that the counts moved.
        await appendEvent(trx, storage, read.finishedAt, {
          tenantId,
          tokenId,
          type: 'licensesChanged',
          payload: { source: 'licenseCounts', runId },
        });
        return { applied: true, updated, unknown: counts.length - updated };
      });
    },
  };
}
