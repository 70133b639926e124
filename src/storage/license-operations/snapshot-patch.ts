import { decodeChunk, type LicenseAssignmentInput } from '../assignment-chunks.js';
import type { StorageEngine } from '../engine.js';
import { appendEvent } from '../event-store.js';
import { changesByAsset, mergeAssetLicenses } from '../snapshot-merge.js';

// Bringing a token's current license snapshot up to date after a license operation without a full sync:
// the licenses Apple added (read as an assignments delta since the snapshot's versionId) and those a
// disassociation removed are written into the snapshot's chunks, asset by asset. Asset counts are
// refreshed separately (license-counts-store).

/** The snapshot a patch applies to. */
export interface SnapshotPointer {
  readonly runId: string;
  readonly runKey: number;
  readonly versionId: string;
}

/** What a patch did. */
export interface SnapshotPatchResult {
  /** False when the snapshot is no longer `runId` (a sync replaced it): nothing changed. */
  readonly applied: boolean;
  readonly added: number;
  readonly removed: number;
}

/** The holders of one asset in a snapshot. */
export interface SnapshotAssetHolders {
  readonly adamId: string;
  readonly pricingParam: string;
  readonly serialNumbers: string[];
  readonly clientUserIds: string[];
}

export interface SnapshotPatches {
  /** Every license of the token's current snapshot, by asset; undefined when it has none. */
  holdersByAsset(tenantId: string, tokenId: string): Promise<SnapshotAssetHolders[] | undefined>;
  /** The token's current snapshot, if it has one. */
  pointer(tenantId: string, tokenId: string): Promise<SnapshotPointer | undefined>;
  /**
   * In one transaction, the snapshot row locked: adds `added` (those already present are skipped),
   * removes `removed`, sets the snapshot's versionId to `versionId` and its assignment count.
   */
  apply(
    tenantId: string,
    tokenId: string,
    pointer: SnapshotPointer,
    changes: {
      readonly added: readonly LicenseAssignmentInput[];
      readonly removed: readonly LicenseAssignmentInput[];
      readonly versionId: string;
    },
  ): Promise<SnapshotPatchResult>;
}

export function createSnapshotPatches(options: { readonly storage: StorageEngine }): SnapshotPatches {
  const { storage } = options;
  const { db } = storage;
  return {
    async holdersByAsset(tenantId, tokenId) {
      const snapshot = await db
        .selectFrom('license_snapshots as s')
        .leftJoin('license_runs as r', 'r.run_id', 's.run_id')
        .select(['s.run_id', 'r.run_key'])
        .where('s.tenant_id', '=', tenantId)
        .where('s.token_id', '=', tokenId)
        .executeTakeFirst();
      if (!snapshot) return undefined;
      if (snapshot.run_key === null) return [];
      const rows = await db
        .selectFrom('license_assignment_chunks')
        .select(['adam_id', 'pricing_param', 'seqs', 'holders'])
        .where('run_key', '=', Number(snapshot.run_key))
        .orderBy('adam_id')
        .orderBy('pricing_param')
        .orderBy('first_seq')
        .execute();
      const out: SnapshotAssetHolders[] = [];
      let current: SnapshotAssetHolders | undefined;
      for (const row of rows) {
        if (
          current === undefined ||
          current.adamId !== row.adam_id ||
          current.pricingParam !== row.pricing_param
        ) {
          current = {
            adamId: row.adam_id,
            pricingParam: row.pricing_param,
            serialNumbers: [],
            clientUserIds: [],
          };
          out.push(current);
        }
        for (const license of decodeChunk(row)) {
          if (license.serialNumber !== null) current.serialNumbers.push(license.serialNumber);
          else if (license.clientUserId !== null) current.clientUserIds.push(license.clientUserId);
        }
      }
      return out;
    },

    async pointer(tenantId, tokenId) {
      const row = await db
        .selectFrom('license_snapshots as s')
        .innerJoin('license_runs as r', 'r.run_id', 's.run_id')
        .select(['s.run_id', 'r.run_key', 's.version_id'])
        .where('s.tenant_id', '=', tenantId)
        .where('s.token_id', '=', tokenId)
        .executeTakeFirst();
      return row ? { runId: row.run_id, runKey: Number(row.run_key), versionId: row.version_id } : undefined;
    },

    apply(tenantId, tokenId, pointer, changes) {
      return db.transaction().execute(async (trx) => {
        const snapshot = await storage
          .lockForUpdate(
            trx
              .selectFrom('license_snapshots')
              .select(['run_id', 'assignment_count'])
              .where('tenant_id', '=', tenantId)
              .where('token_id', '=', tokenId),
          )
          .executeTakeFirst();
        if (!snapshot || snapshot.run_id !== pointer.runId) return { applied: false, added: 0, removed: 0 };
        const { added, removed } = await mergeAssetLicenses(
          trx,
          pointer.runKey,
          changesByAsset(changes.added, changes.removed).values(),
        );
        await trx
          .updateTable('license_snapshots')
          .set({
            version_id: changes.versionId,
            assignment_count: snapshot.assignment_count + added - removed,
          })
          .where('tenant_id', '=', tenantId)
          .where('token_id', '=', tokenId)
          .where('run_id', '=', pointer.runId)
          .execute();
        // The patch has no clock of its own; the event's time only decides when it is pruned.
        await appendEvent(trx, storage, new Date(), {
          tenantId,
          tokenId,
          type: 'licensesChanged',
          payload: { source: 'operation', added, removed },
        });
        return { applied: true, added, removed };
      });
    },
  };
}
