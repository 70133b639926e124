import type { Transaction } from 'kysely';
import { AssignmentChunker, decodeChunk, type LicenseAssignmentInput } from './assignment-chunks.js';
import type { DatabaseSchema } from './database-schema.js';

// Changing a committed snapshot's licenses in place, asset by asset, inside the caller's transaction:
// the one merge both a license operation's follow-up (license-operations/snapshot-patch.ts) and a
// delta sync (sync-jobs/delta-commit.ts) use. An asset's licenses that stay keep their positions
// (seq); new ones are appended after its last position, in the order given.

/** A holder as one string: `d:<serialNumber>` for a device, `u:<clientUserId>` for a user. */
export const holderKey = (a: { serialNumber?: string | null; clientUserId?: string | null }): string =>
  a.serialNumber != null ? `d:${a.serialNumber}` : `u:${a.clientUserId ?? ''}`;

/** An asset's identity as one string. */
export const assetKey = (a: { adamId: string; pricingParam: string }): string =>
  `${a.adamId}\u0000${a.pricingParam}`;

/** What changes for one asset of a snapshot. */
export interface AssetLicenseChanges {
  readonly adamId: string;
  readonly pricingParam: string;
  /** Holder keys to add (those already present are skipped). */
  readonly add: ReadonlySet<string>;
  /** Holder keys to remove (wins over `add`). */
  readonly remove: ReadonlySet<string>;
  /**
   * When set, the asset's licenses become exactly these holders (Apple's own listing of the app):
   * the others are removed, and `add`/`remove` are ignored.
   */
  readonly replace?: readonly string[];
}

/** Groups added and removed licenses by asset. */
export function changesByAsset(
  added: readonly LicenseAssignmentInput[],
  removed: readonly LicenseAssignmentInput[],
): Map<string, { adamId: string; pricingParam: string; add: Set<string>; remove: Set<string> }> {
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
  for (const a of added) entry(a).add.add(holderKey(a));
  for (const r of removed) entry(r).remove.add(holderKey(r));
  return byAsset;
}

/**
 * Rewrites the chunks of each changed asset of the run `runKey` (the snapshot's license rows) inside
 * `trx`; assets whose licenses end up the same are not written. Answers how many licenses were added
 * and removed.
 */
export async function mergeAssetLicenses(
  trx: Transaction<DatabaseSchema>,
  runKey: number,
  assets: Iterable<AssetLicenseChanges>,
): Promise<{ added: number; removed: number }> {
  let added = 0;
  let removed = 0;
  for (const asset of assets) {
    const chunks = await trx
      .selectFrom('license_assignment_chunks')
      .select(['seqs', 'holders'])
      .where('run_key', '=', runKey)
      .where('adam_id', '=', asset.adamId)
      .where('pricing_param', '=', asset.pricingParam)
      .orderBy('first_seq')
      .execute();
    const held = chunks.flatMap((c) => decodeChunk(c));
    const present = new Set(held.map(holderKey));
    let kept: typeof held;
    let fresh: string[];
    if (asset.replace !== undefined) {
      const wanted = new Set(asset.replace);
      kept = held.filter((h) => wanted.has(holderKey(h)));
      fresh = [...wanted].filter((k) => !present.has(k));
    } else {
      kept = held.filter((h) => !asset.remove.has(holderKey(h)));
      fresh = [...asset.add].filter((k) => !present.has(k) && !asset.remove.has(k));
    }
    if (kept.length === held.length && fresh.length === 0) continue;
    removed += held.length - kept.length;
    added += fresh.length;
    const chunker = new AssignmentChunker();
    let lastSeq = -1;
    for (const h of held) lastSeq = Math.max(lastSeq, h.seq);
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
    }
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
      .where('run_key', '=', runKey)
      .where('adam_id', '=', asset.adamId)
      .where('pricing_param', '=', asset.pricingParam)
      .execute();
    const ready = chunker.takeReady();
    for (let i = 0; i < ready.length; i += 100) {
      await trx
        .insertInto('license_assignment_chunks')
        .values(
          ready.slice(i, i + 100).map((c) => ({
            run_key: runKey,
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
  return { added, removed };
}
