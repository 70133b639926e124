import type { Transaction } from 'kysely';
import {
  type AssignmentChunk,
  AssignmentChunker,
  assignmentChunkSize,
  chunkHolderTexts,
  type DecodedAssignment,
  decodeChunk,
  type LicenseAssignmentInput,
} from './assignment-chunks.js';
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

// Assets whose chunks are read in one statement, and chunk rows written (or deleted) per statement:
// 8 bound parameters per inserted row, 4 per deleted one, far below either engine's limit.
const assetsPerRead = 100;
const chunkRowsPerWrite = 500;

interface StoredChunk {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly holderCount: number;
  /** The row's texts; decoded into `held` only when needed (a delta's additions need the last chunk's). */
  readonly row: { readonly seqs: string; readonly holders: string };
  held?: DecodedAssignment[];
}

const heldOf = (chunk: StoredChunk): DecodedAssignment[] => {
  chunk.held ??= decodeChunk(chunk.row);
  return chunk.held;
};

/**
 * Patches the chunks of each changed asset of the run `runKey` (the snapshot's license rows) inside
 * `trx`: only the chunks that lose a license are rewritten, and new licenses go into the asset's last
 * chunk while it has room, then into new chunks; every other chunk stays as it is. The chunks are read
 * in one statement per 100 assets, the touched ones deleted and written in one statement each per 500
 * rows. Assets whose licenses end up the same are not written. Answers how many licenses were added and
 * removed.
 */
export async function mergeAssetLicenses(
  trx: Transaction<DatabaseSchema>,
  runKey: number,
  assets: Iterable<AssetLicenseChanges>,
): Promise<{ added: number; removed: number }> {
  let added = 0;
  let removed = 0;
  const all = [...assets];
  const gone: { adamId: string; pricingParam: string; firstSeq: number }[] = [];
  const written: AssignmentChunk[] = [];
  for (let i = 0; i < all.length; i += assetsPerRead) {
    const batch = all.slice(i, i + assetsPerRead);
    const rows = await trx
      .selectFrom('license_assignment_chunks')
      .select(['adam_id', 'pricing_param', 'first_seq', 'last_seq', 'holder_count', 'seqs', 'holders'])
      .where('run_key', '=', runKey)
      .where((eb) =>
        eb.or(
          batch.map((a) => eb.and([eb('adam_id', '=', a.adamId), eb('pricing_param', '=', a.pricingParam)])),
        ),
      )
      .execute();
    const byAsset = new Map<string, StoredChunk[]>();
    for (const r of rows) {
      const key = assetKey({ adamId: r.adam_id, pricingParam: r.pricing_param });
      const chunk: StoredChunk = {
        firstSeq: Number(r.first_seq),
        lastSeq: Number(r.last_seq),
        holderCount: Number(r.holder_count),
        row: r,
      };
      const list = byAsset.get(key);
      if (list === undefined) byAsset.set(key, [chunk]);
      else list.push(chunk);
    }
    for (const asset of batch) {
      const chunks = (byAsset.get(assetKey(asset)) ?? []).sort((x, y) => x.firstSeq - y.firstSeq);
      const patch = patchAsset(asset, chunks);
      if (patch === undefined) continue;
      added += patch.added;
      removed += patch.removed;
      for (const firstSeq of patch.gone) gone.push({ ...asset, firstSeq });
      for (const c of patch.written) written.push(c);
    }
  }
  for (let i = 0; i < gone.length; i += chunkRowsPerWrite) {
    const slice = gone.slice(i, i + chunkRowsPerWrite);
    await trx
      .deleteFrom('license_assignment_chunks')
      .where('run_key', '=', runKey)
      .where((eb) =>
        eb.or(
          slice.map((c) =>
            eb.and([
              eb('adam_id', '=', c.adamId),
              eb('pricing_param', '=', c.pricingParam),
              eb('first_seq', '=', c.firstSeq),
            ]),
          ),
        ),
      )
      .execute();
  }
  for (let i = 0; i < written.length; i += chunkRowsPerWrite) {
    await trx
      .insertInto('license_assignment_chunks')
      .values(
        written.slice(i, i + chunkRowsPerWrite).map((c) => ({
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
  return { added, removed };
}

/**
 * One asset's patch: the first_seq of each chunk to delete and the chunks to write in their place
 * (undefined: nothing changes). A chunk that loses licenses is rewritten with the rest, at their
 * positions; new licenses follow the asset's last position, filling its last chunk first.
 */
function patchAsset(
  asset: AssetLicenseChanges,
  chunks: readonly StoredChunk[],
): { added: number; removed: number; gone: number[]; written: AssignmentChunk[] } | undefined {
  if (asset.replace === undefined && asset.remove.size === 0) {
    const patch = addOnly(asset, chunks);
    if (patch !== 'decode') return patch;
  }
  const present = new Set<string>();
  for (const c of chunks) for (const h of heldOf(c)) present.add(holderKey(h));
  let stays: (key: string) => boolean;
  let fresh: string[];
  if (asset.replace !== undefined) {
    const wanted = new Set(asset.replace);
    stays = (key) => wanted.has(key);
    fresh = [...wanted].filter((k) => !present.has(k));
  } else {
    const { remove } = asset;
    stays = (key) => !remove.has(key);
    fresh = [...asset.add].filter((k) => !present.has(k) && !remove.has(k));
  }
  let removed = 0;
  const gone: number[] = [];
  const written: AssignmentChunk[] = [];
  const last = chunks[chunks.length - 1];
  const lastSeq = last === undefined ? -1 : last.lastSeq;
  for (const chunk of chunks) {
    const held = heldOf(chunk);
    const kept = held.filter((h) => stays(holderKey(h)));
    const lost = held.length - kept.length;
    // The last chunk takes new licenses while it has room: it is rewritten with them below.
    const fills = chunk === last && fresh.length > 0 && kept.length < assignmentChunkSize;
    if (lost === 0 && !fills) continue;
    removed += lost;
    gone.push(chunk.firstSeq);
    if (fills) continue;
    const chunker = new AssignmentChunker();
    for (const h of kept) chunker.add(inputOf(asset, h), h.seq);
    chunker.closeAll();
    for (const c of chunker.takeReady()) written.push(c);
  }
  if (removed === 0 && fresh.length === 0) return undefined;
  if (fresh.length > 0) {
    // The last chunk's remaining licenses (when it has room) and the new ones, chunked together.
    const kept =
      last !== undefined && gone.includes(last.firstSeq)
        ? heldOf(last).filter((h) => stays(holderKey(h)))
        : [];
    for (const c of appended(asset, kept, fresh, lastSeq)) written.push(c);
  }
  return { added: fresh.length, removed, gone, written };
}

/**
 * An asset that only gains licenses (a delta's usual case): no chunk loses one, so only the last chunk,
 * which the new licenses fill, is decoded; the others are only searched for the new holders' texts.
 * 'decode' when one of them is there: the full patch then tells whether it is the same holder.
 */
function addOnly(
  asset: AssetLicenseChanges,
  chunks: readonly StoredChunk[],
): { added: number; removed: number; gone: number[]; written: AssignmentChunk[] } | undefined | 'decode' {
  const texts = new Set<string>();
  for (const c of chunks) for (const t of chunkHolderTexts(c.row)) texts.add(t);
  const fresh: string[] = [];
  for (const key of asset.add) {
    if (texts.has(key.slice(2))) return 'decode';
    fresh.push(key);
  }
  if (fresh.length === 0) return undefined;
  const last = chunks[chunks.length - 1];
  const fills = last !== undefined && last.holderCount < assignmentChunkSize;
  const kept = fills ? heldOf(last) : [];
  return {
    added: fresh.length,
    removed: 0,
    gone: fills ? [last.firstSeq] : [],
    written: appended(asset, kept, fresh, last === undefined ? -1 : last.lastSeq),
  };
}

/** Chunks of `kept` (at their positions) and the `fresh` holder keys after `lastSeq`, in that order. */
function appended(
  asset: { readonly adamId: string; readonly pricingParam: string },
  kept: readonly DecodedAssignment[],
  fresh: readonly string[],
  lastSeq: number,
): AssignmentChunk[] {
  const chunker = new AssignmentChunker();
  for (const h of kept) chunker.add(inputOf(asset, h), h.seq);
  let seq = lastSeq;
  for (const key of fresh) {
    seq += 1;
    const id = key.slice(2);
    chunker.add(
      {
        adamId: asset.adamId,
        pricingParam: asset.pricingParam,
        ...(key.startsWith('d:') ? { serialNumber: id } : { clientUserId: id }),
      },
      seq,
    );
  }
  chunker.closeAll();
  return chunker.takeReady();
}

const inputOf = (
  asset: { readonly adamId: string; readonly pricingParam: string },
  h: DecodedAssignment,
): LicenseAssignmentInput => ({
  adamId: asset.adamId,
  pricingParam: asset.pricingParam,
  ...(h.serialNumber !== null ? { serialNumber: h.serialNumber } : { clientUserId: h.clientUserId ?? '' }),
});
