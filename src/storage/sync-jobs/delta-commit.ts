import type { CountsReadColumns } from '../apple-notification-store.js';
import { appendEvents, type NewEvent } from '../event-store.js';
import { type AssetLicenseChanges, assetKey, changesByAsset, mergeAssetLicenses } from '../snapshot-merge.js';
import { readAssetRows, snapshotSums } from '../snapshot-reads.js';
import { dateToColumn } from '../vpp-token-columns.js';
import { closeRun } from './run-history.js';
import { applyActionEvent, completeToken, LeaseLostError } from './run-outcome.js';
import { setNextDelta } from './schedule.js';
import type { ClaimedSync, DeltaCommit, SnapshotSums, StoredAssetRow } from './sync-job-types.js';
import type { SyncJobStoreOptions, Trx } from './transaction.js';

/**
 * A delta run cannot commit, and nothing of it was written: the job was turned into a full sync while it
 * ran, or the snapshot it started from changed meanwhile (a full sync or a license operation). The worker
 * reads everything in the same run instead.
 */
export class DeltaSupersededError extends Error {
  override readonly name = 'DeltaSupersededError';
}

/** What a delta commit changed in the snapshot. */
export interface DeltaCommitResult {
  readonly added: number;
  readonly removed: number;
  readonly assignmentCount: number;
}

export interface DeltaCommits {
  /**
   * One transaction: the delta is merged into the token's current snapshot (which must still be the
   * base it was read against), its assets replaced by Apple's list, the snapshot's version and counts
   * set, the status moved to `completed` exactly as a full commit does, the run closed as a `delta`, the
   * next delta scheduled (the next full sync keeps its time). Throws {@link LeaseLostError} when the
   * lease is gone and {@link DeltaSupersededError} when the delta may not commit; nothing changes then.
   */
  commitDelta(
    claim: ClaimedSync,
    delta: DeltaCommit,
    now: Date,
    nextDeltaAt: Date | null,
  ): Promise<DeltaCommitResult>;
}

// Rows per asset insert: 13 bound parameters each.
const assetRows = 300;

export function createDeltaCommits({ db, storage }: SyncJobStoreOptions): DeltaCommits {
  return {
    commitDelta(claim, delta, now, nextDeltaAt) {
      const { tenantId, tokenId } = claim.job;
      return db.transaction().execute(async (trx) => {
        // The lease and the job's kind in one statement: the heartbeat's update answers the kind.
        const job = await trx
          .updateTable('sync_jobs')
          .set({ heartbeat_at: dateToColumn(now) })
          .where('id', '=', claim.job.id)
          .where('lease_owner', '=', claim.workerId)
          .where('run_id', '=', claim.runId)
          .returning('kind')
          .executeTakeFirst();
        if (job === undefined) throw new LeaseLostError('the sync lease was lost');
        if (job.kind !== 'delta')
          throw new DeltaSupersededError('a full sync was requested while the delta ran');
        const snapshot = await storage
          .lockForUpdate(
            trx
              .selectFrom('license_snapshots')
              .select([
                'run_id',
                'version_id',
                'assignment_count',
                'asset_count',
                'total_license_count',
                'used_license_count',
                'available_license_count',
              ])
              .where('tenant_id', '=', tenantId)
              .where('token_id', '=', tokenId),
          )
          .executeTakeFirst();
        if (snapshot?.run_id !== delta.base.runId || snapshot.version_id !== delta.base.versionId) {
          throw new DeltaSupersededError('the license snapshot changed while the delta ran');
        }
        const stateEvents = await completeToken(trx, claim, delta, now);

        const changes = new Map<string, AssetLicenseChanges>(changesByAsset(delta.added, []));
        for (const [key, app] of delta.replaced) {
          changes.set(key, { ...app, add: new Set(), remove: new Set(), replace: app.holders });
        }
        const merged = await mergeAssetLicenses(trx, delta.base.runKey, changes.values());
        // The asset rows read with the base stand unless the snapshot's sums moved since (an ASSET_COUNT
        // notification applied while the lease had lapsed): then they are read again here.
        const stored = sameSums(snapshotSums(snapshot), delta.base.sums)
          ? delta.storedAssets
          : await readAssetRows(trx, delta.base.runId);
        await replaceAssets(trx, delta, tenantId, tokenId, stored);

        let total = 0;
        let used = 0;
        let available = 0;
        for (const a of delta.assets) {
          total += a.totalCount;
          used += a.assignedCount;
          available += a.availableCount;
        }
        const assignmentCount = snapshot.assignment_count + merged.added - merged.removed;
        // This run read Apple's assets anew: ASSET_COUNT notifications are placed against its read from
        // now on (apple-notification-store.ts), not against the full sync the snapshot came from. The
        // read began when the run did (its history row's started_at, taken in the same statement).
        await trx
          .withTables<CountsReadColumns>()
          .updateTable('license_snapshots')
          .set((eb) => ({
            version_id: delta.versionId,
            location_uid: delta.locationUid,
            committed_at: dateToColumn(now),
            asset_count: delta.assets.length,
            assignment_count: assignmentCount,
            total_license_count: total,
            used_license_count: used,
            available_license_count: available,
            counts_read_started_at: eb.fn.coalesce(
              eb.selectFrom('sync_runs').select('started_at').where('id', '=', claim.runId),
              eb.val(dateToColumn(now)),
            ),
            counts_read_finished_at: dateToColumn(now),
          }))
          .where('token_id', '=', tokenId)
          .where('run_id', '=', delta.base.runId)
          .execute();
        await applyActionEvent(trx, tenantId, tokenId, 'succeeded', now);
        await closeRun(trx, claim.runId, {
          outcome: 'completed',
          finished_at: dateToColumn(now),
          location_uid: delta.locationUid,
          version_id: delta.versionId,
          asset_count: delta.assets.length,
          assignment_count: assignmentCount,
          page_count: delta.pageCount,
        });
        await trx.deleteFrom('sync_jobs').where('id', '=', claim.job.id).execute();
        await setNextDelta(trx, tokenId, nextDeltaAt);
        const events: NewEvent[] = [
          {
            tenantId,
            tokenId,
            type: 'syncCompleted',
            payload: {
              kind: 'delta',
              runId: claim.runId,
              assets: delta.assets.length,
              assignments: assignmentCount,
              added: merged.added,
              removed: merged.removed,
            },
          },
          ...stateEvents,
        ];
        await appendEvents(trx, storage, now, events);
        return { added: merged.added, removed: merged.removed, assignmentCount };
      });
    },
  };
}

/**
 * The snapshot's assets become Apple's list as read by the delta (counts move; apps come and go): only
 * the rows that differ are written, since between two syncs most of a location's apps do not change.
 */
async function replaceAssets(
  trx: Trx,
  delta: DeltaCommit,
  tenantId: string,
  tokenId: string,
  stored: readonly StoredAssetRow[],
): Promise<void> {
  const runId = delta.base.runId;
  // Apple lists an asset once; a repeat keeps the last counts, as the full sync's upsert does.
  const wanted = new Map(
    delta.assets.map((a) => [
      assetKey(a),
      {
        run_id: runId,
        tenant_id: tenantId,
        token_id: tokenId,
        adam_id: a.adamId,
        pricing_param: a.pricingParam,
        product_type: a.productType ?? null,
        total_count: a.totalCount,
        assigned_count: a.assignedCount,
        available_count: a.availableCount,
        retired_count: a.retiredCount,
        device_assignable: a.deviceAssignable === undefined ? null : a.deviceAssignable ? 1 : 0,
        revocable: a.revocable === undefined ? null : a.revocable ? 1 : 0,
        supported_platforms: JSON.stringify(a.supportedPlatforms),
      },
    ]),
  );
  const gone: { adamId: string; pricingParam: string }[] = [];
  const changed: NonNullable<ReturnType<typeof wanted.get>>[] = [];
  for (const row of stored) {
    const key = assetKey({ adamId: row.adam_id, pricingParam: row.pricing_param });
    const next = wanted.get(key);
    if (next === undefined) {
      gone.push({ adamId: row.adam_id, pricingParam: row.pricing_param });
      continue;
    }
    wanted.delete(key);
    const same =
      row.product_type === next.product_type &&
      Number(row.total_count) === next.total_count &&
      Number(row.assigned_count) === next.assigned_count &&
      Number(row.available_count) === next.available_count &&
      Number(row.retired_count) === next.retired_count &&
      row.device_assignable === next.device_assignable &&
      row.revocable === next.revocable &&
      row.supported_platforms === next.supported_platforms;
    if (!same) changed.push(next);
  }
  for (let i = 0; i < gone.length; i += assetRows) {
    const slice = gone.slice(i, i + assetRows);
    await trx
      .deleteFrom('license_assets')
      .where('run_id', '=', runId)
      .where((eb) =>
        eb.or(
          slice.map((a) => eb.and([eb('adam_id', '=', a.adamId), eb('pricing_param', '=', a.pricingParam)])),
        ),
      )
      .execute();
  }
  // Changed and new assets in one statement per 300: an insert that updates the rows already there.
  const rows = [...changed, ...wanted.values()];
  for (let i = 0; i < rows.length; i += assetRows) {
    await trx
      .insertInto('license_assets')
      .values(rows.slice(i, i + assetRows))
      .onConflict((oc) =>
        oc.columns(['run_id', 'adam_id', 'pricing_param']).doUpdateSet((eb) => ({
          product_type: eb.ref('excluded.product_type'),
          total_count: eb.ref('excluded.total_count'),
          assigned_count: eb.ref('excluded.assigned_count'),
          available_count: eb.ref('excluded.available_count'),
          retired_count: eb.ref('excluded.retired_count'),
          device_assignable: eb.ref('excluded.device_assignable'),
          revocable: eb.ref('excluded.revocable'),
          supported_platforms: eb.ref('excluded.supported_platforms'),
        })),
      )
      .execute();
  }
}

const sameSums = (a: SnapshotSums, b: SnapshotSums): boolean =>
  a.assets === b.assets && a.total === b.total && a.used === b.used && a.available === b.available;
