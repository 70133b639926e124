import { AssignmentChunker, decodeChunk, type LicenseAssignmentInput } from '../assignment-chunks.js';
import type { StorageEngine } from '../engine.js';
import { appendEvent } from '../event-store.js';

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

const holderKey = (a: { serialNumber?: string | null; clientUserId?: string | null }) =>
  a.serialNumber != null ? `d:${a.serialNumber}` : `u:${a.clientUserId ?? ''}`;
const assetKey = (a: { adamId: string; pricingParam: string }) => `${a.adamId}\u0000${a.pricingParam}`;

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
        const byAsset = new Map<
          string,
          { adamId: string; pricingParam: string; add: Set<string>; remove: Set<string> }
        >();
        const entry = (a: LicenseAssignmentInput) => {
          const key = assetKey(a);
          let e = byAsset.get(key);
          if (e === undefined) {
            e = { adamId: a.adamId, pricingParam: a.pricingParam, add: new Set(), remove: new Set() };
            byAsset.set(key, e);
          }
          return e;
        };
        for (const a of changes.added) entry(a).add.add(holderKey(a));
        for (const r of changes.removed) entry(r).remove.add(holderKey(r));
        let added = 0;
        let removed = 0;
        for (const asset of byAsset.values()) {
          const chunks = await trx
            .selectFrom('license_assignment_chunks')
            .select(['seqs', 'holders'])
            .where('run_key', '=', pointer.runKey)
            .where('adam_id', '=', asset.adamId)
            .where('pricing_param', '=', asset.pricingParam)
            .orderBy('first_seq')
            .execute();
          const held = chunks.flatMap((c) => decodeChunk(c));
          const present = new Set(held.map(holderKey));
          const kept = held.filter((h) => !asset.remove.has(holderKey(h)));
          const fresh = [...asset.add].filter((k) => !present.has(k) && !asset.remove.has(k));
          if (kept.length === held.length && fresh.length === 0) continue;
          removed += held.length - kept.length;
          added += fresh.length;
          const chunker = new AssignmentChunker();
          let lastSeq = -1;
          for (const h of kept) {
            chunker.add(
              {
                adamId: asset.adamId,
                pricingParam: asset.pricingParam,
                ...(h.serialNumber !== null
                  ? { serialNumber: h.serialNumber }
                  : { clientUserId: h.clientUserId ?? '' }),
              },
              h.seq,
            );
            lastSeq = Math.max(lastSeq, h.seq);
          }
          if (held.length > 0) lastSeq = Math.max(lastSeq, ...held.map((h) => h.seq));
          for (const key of fresh) {
            lastSeq += 1;
            const id = key.slice(2);
            chunker.add(
              {
                adamId: asset.adamId,
                pricingParam: asset.pricingParam,
                ...(key.startsWith('d:') ? { serialNumber: id } : { clientUserId: id }),
              },
              lastSeq,
            );
          }
          chunker.closeAll();
          await trx
            .deleteFrom('license_assignment_chunks')
            .where('run_key', '=', pointer.runKey)
            .where('adam_id', '=', asset.adamId)
            .where('pricing_param', '=', asset.pricingParam)
            .execute();
          const ready = chunker.takeReady();
          for (let i = 0; i < ready.length; i += 100) {
            await trx
              .insertInto('license_assignment_chunks')
              .values(
                ready.slice(i, i + 100).map((c) => ({
                  run_key: pointer.runKey,
                  adam_id: c.adamId,
                  pricing_param: c.pricingParam,
                  first_seq: c.firstSeq,
                  last_seq: c.lastSeq,
                  holder_count: c.holderCount,
                  seqs: c.seqs,
                  holders: c.holders,
                })),
              )
              .execute();
          }
        }
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
        await appendEvent(trx, storage.notifier, new Date(), {
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
