// How a run's assignments are stored: not one row per license (200,000 rows for a large location,
// ~1 µs of SQLite work each, more than fetching and parsing them from Apple took), but in chunks of
// up to `assignmentChunkSize` licenses of one asset, in Apple's order. A chunk is one row of
// `license_assignment_chunks`:
//
//   run_key, adam_id, pricing_param  the asset (and the run that fetched it)
//   first_seq, last_seq             Apple-order positions of its first and last license
//   holder_count                    licenses in the chunk
//   seqs                            JSON array of [start, length, kind] triples flattened, ascending:
//                                   the positions (a run of consecutive positions held by one kind of
//                                   holder is one triple); kind 0 is a device, 1 a user
//   holders                         JSON array of strings, one per license in `seqs` order: the serial
//                                   number (a device) or the clientUserId (a user)
//
// Chunks of one asset never overlap in seq and each is in seq order, so an app's licenses in Apple's
// order are its chunks by `first_seq`, and keyset paging by seq reads only the chunks it needs.

/** A license held by a device (`serialNumber`) or a user (`clientUserId`). */
export interface LicenseAssignmentInput {
  readonly adamId: string;
  readonly pricingParam: string;
  readonly serialNumber?: string;
  readonly clientUserId?: string;
}

/**
 * Licenses per chunk: with serial numbers ~2 KB of text, which a SQLite rowid table keeps in its
 * B-tree leaf (no overflow pages); 64 wrote more rows, 256 more overflow pages, both slower.
 */
export const assignmentChunkSize = 128;

/** A chunk ready to be written (the columns after `run_key`). */
export interface AssignmentChunk {
  readonly adamId: string;
  readonly pricingParam: string;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly holderCount: number;
  readonly seqs: string;
  readonly holders: string;
}

/** One license decoded from a chunk. */
export interface DecodedAssignment {
  readonly seq: number;
  readonly serialNumber: string | null;
  readonly clientUserId: string | null;
}

/** A chunk whose text is not what {@link AssignmentChunker} writes. */
export class CorruptChunkError extends Error {
  override readonly name = 'CorruptChunkError';
}

interface OpenChunk {
  /** The {@link AssignmentChunker.closeIdle} round in which a license was last added. */
  round: number;
  /** Every holder was added as escape-free: the holders' JSON is a plain join. */
  escapeFree: boolean;
  readonly adamId: string;
  readonly pricingParam: string;
  /** The closed runs of positions, flattened [start, length, kind] triples (kind 0 device, 1 user). */
  readonly runs: number[];
  /** The run being extended: the positions `runStart` … `runStart + runLength - 1`, of `runKind`. */
  runStart: number;
  runLength: number;
  runKind: number;
  readonly holders: string[];
}

const device = 0;
const user = 1;

/**
 * Groups a run's assignments, added in Apple's order with increasing `seq`, into chunks per asset.
 * A chunk is ready when full; open (partial) chunks are closed all at once when they hold more than
 * `maxOpen` licenses together (memory stays bounded whatever the order of Apple's listing) and at the
 * end. Apple usually lists an asset's licenses together, so most chunks are full.
 */
export class AssignmentChunker {
  readonly #chunkSize: number;
  readonly #maxOpen: number;
  readonly #open = new Map<string, OpenChunk>();
  #last: OpenChunk | undefined;
  #openCount = 0;
  #ready: AssignmentChunk[] = [];
  #readyCount = 0;
  #round = 0;

  constructor(options: { readonly chunkSize?: number; readonly maxOpen?: number } = {}) {
    this.#chunkSize = Math.max(1, Math.floor(options.chunkSize ?? assignmentChunkSize));
    this.#maxOpen = Math.max(this.#chunkSize, Math.floor(options.maxOpen ?? 16_384));
  }

  /** Licenses in chunks ready to be written. */
  get readyCount(): number {
    return this.#readyCount;
  }

  /**
   * Adds the license at `seq` (greater than every seq added before). `escapeFree`: the caller knows
   * the holder has no character JSON escapes (`ApplePage.escapeFree`), so its chunk's holders may be
   * joined rather than stringified.
   */
  add(assignment: LicenseAssignmentInput, seq: number, escapeFree = false): void {
    const { adamId, pricingParam } = assignment;
    let chunk = this.#last;
    // Consecutive licenses of one asset (the usual case) skip the map.
    if (chunk === undefined || chunk.adamId !== adamId || chunk.pricingParam !== pricingParam) {
      // The chunk left behind was added to in this round; the one switched to is, now.
      if (chunk !== undefined) chunk.round = this.#round;
      const key = `${adamId}\u0000${pricingParam}`;
      chunk = this.#open.get(key);
      if (chunk === undefined) {
        chunk = {
          round: this.#round,
          escapeFree: true,
          adamId,
          pricingParam,
          runs: [],
          runStart: seq,
          runLength: 0,
          runKind: device,
          holders: [],
        };
        this.#open.set(key, chunk);
      } else {
        chunk.round = this.#round;
      }
      this.#last = chunk;
    }
    if (!escapeFree) chunk.escapeFree = false;
    const { serialNumber } = assignment;
    const kind = serialNumber !== undefined ? device : user;
    chunk.holders.push(serialNumber ?? assignment.clientUserId ?? '');
    // Positions are grouped into runs as they come: no array per license.
    if (seq === chunk.runStart + chunk.runLength && kind === chunk.runKind) {
      chunk.runLength++;
    } else {
      if (chunk.runLength > 0) chunk.runs.push(chunk.runStart, chunk.runLength, chunk.runKind);
      chunk.runStart = seq;
      chunk.runLength = 1;
      chunk.runKind = kind;
    }
    this.#openCount++;
    if (chunk.holders.length >= this.#chunkSize) {
      this.#open.delete(`${adamId}\u0000${pricingParam}`);
      this.#last = undefined;
      this.#close(chunk);
    } else if (this.#openCount > this.#maxOpen) {
      this.closeAll();
    }
  }

  /** Closes every open chunk (the end of the run, or too many licenses held open). */
  closeAll(): void {
    for (const chunk of this.#open.values()) this.#close(chunk);
    this.#open.clear();
    this.#last = undefined;
  }

  /**
   * Closes the open chunks no license was added to since the previous call, and starts a new round.
   * Apple lists an asset's licenses together (as far as seen), so an asset not seen for a whole batch
   * is done: its partial chunk goes with the next batch instead of waiting for the end of the run.
   * An asset that does come back starts a new chunk after it (chunks of an asset never overlap).
   */
  closeIdle(): void {
    const round = this.#round++;
    for (const [key, chunk] of this.#open) {
      if (chunk === this.#last || chunk.round >= round) continue;
      this.#open.delete(key);
      this.#close(chunk);
    }
  }

  /** The chunks ready to be written, handed over once. */
  takeReady(): AssignmentChunk[] {
    const ready = this.#ready;
    this.#ready = [];
    this.#readyCount = 0;
    return ready;
  }

  #close(chunk: OpenChunk): void {
    const { runs, holders } = chunk;
    const count = holders.length;
    this.#openCount -= count;
    this.#readyCount += count;
    runs.push(chunk.runStart, chunk.runLength, chunk.runKind);
    this.#ready.push({
      adamId: chunk.adamId,
      pricingParam: chunk.pricingParam,
      firstSeq: runs[0] as number,
      lastSeq: chunk.runStart + chunk.runLength - 1,
      holderCount: count,
      // Safe integers: their join is their JSON.
      seqs: `[${runs.join(',')}]`,
      holders: chunk.escapeFree ? `["${holders.join('","')}"]` : JSON.stringify(holders),
    });
  }
}

/** The licenses of a chunk, in seq order. Throws {@link CorruptChunkError} on text it did not write. */
export function decodeChunk(chunk: { readonly seqs: string; readonly holders: string }): DecodedAssignment[] {
  let runs: unknown;
  let holders: unknown;
  try {
    runs = JSON.parse(chunk.seqs);
    holders = JSON.parse(chunk.holders);
  } catch {
    throw new CorruptChunkError('an assignment chunk is not JSON');
  }
  if (!Array.isArray(runs) || runs.length % 3 !== 0 || !Array.isArray(holders)) {
    throw new CorruptChunkError('an assignment chunk has the wrong shape');
  }
  const out: DecodedAssignment[] = [];
  let h = 0;
  for (let r = 0; r < runs.length; r += 3) {
    const start = runs[r];
    const length = runs[r + 1];
    const kind = runs[r + 2];
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || (length as number) < 1) {
      throw new CorruptChunkError('an assignment chunk has a bad seq run');
    }
    if (kind !== device && kind !== user) {
      throw new CorruptChunkError('an assignment chunk has a holder of unknown kind');
    }
    for (let i = 0; i < (length as number); i++) {
      const holder = holders[h++];
      if (typeof holder !== 'string') {
        throw new CorruptChunkError('an assignment chunk has fewer holders than seqs');
      }
      const seq = (start as number) + i;
      out.push(
        kind === device
          ? { seq, serialNumber: holder, clientUserId: null }
          : { seq, serialNumber: null, clientUserId: holder },
      );
    }
  }
  if (h !== holders.length) throw new CorruptChunkError('an assignment chunk has more holders than seqs');
  return out;
}

/**
 * A chunk's holder texts (serial numbers and clientUserIds alike, in `seqs` order) without decoding its
 * positions: enough to know that a holder is not in it.
 */
export function chunkHolderTexts(chunk: { readonly holders: string }): string[] {
  let holders: unknown;
  try {
    holders = JSON.parse(chunk.holders);
  } catch {
    throw new CorruptChunkError('an assignment chunk is not JSON');
  }
  if (!Array.isArray(holders)) throw new CorruptChunkError('an assignment chunk has the wrong shape');
  return holders as string[];
}

/** What {@link readAppLicenses} needs of a chunk row. */
export interface StoredChunk {
  readonly first_seq: number | string;
  readonly seqs: string;
  readonly holders: string;
}

/**
 * One app's licenses from position `fromSeq` on, in seq order, at most `limit`: the app's chunks in
 * `first_seq` order hold them in that order, so only enough chunks are read. `next` returns up to
 * `count` of the app's chunks with `first_seq > afterFirstSeq` and `last_seq >= fromSeq`, ordered by
 * `first_seq`.
 */
export async function readAppLicenses(
  next: (afterFirstSeq: number, count: number) => Promise<readonly StoredChunk[]>,
  fromSeq: number,
  limit: number,
): Promise<DecodedAssignment[]> {
  const out: DecodedAssignment[] = [];
  let afterFirstSeq = -1;
  while (out.length < limit) {
    // A chunk holds up to 128 licenses; partial ones are rare, hence the margin.
    const rows = await next(afterFirstSeq, Math.ceil((limit - out.length) / 64) + 1);
    for (const row of rows) {
      for (const license of decodeChunk(row)) {
        if (license.seq >= fromSeq) out.push(license);
      }
    }
    const last = rows[rows.length - 1];
    if (last === undefined) break;
    afterFirstSeq = Number(last.first_seq);
  }
  return out.slice(0, limit);
}
