export type { LicenseAssignmentInput } from './assignment-chunks.js';

import type { Transaction } from 'kysely';
import { type AssignmentChunk, AssignmentChunker, type LicenseAssignmentInput } from './assignment-chunks.js';
import type { DatabaseSchema } from './database-schema.js';
import type { BulkInsertSpec, StorageEngine } from './engine.js';
import { dateToColumn } from './vpp-token-columns.js';

/** A licensed asset as Apple counts it (`GET /assets`); identity `(adamId, pricingParam)`. */
export interface LicenseAssetInput {
  readonly adamId: string;
  readonly pricingParam: string;
  readonly productType: string | undefined;
  readonly totalCount: number;
  readonly assignedCount: number;
  readonly availableCount: number;
  readonly retiredCount: number;
  readonly deviceAssignable: boolean | undefined;
  readonly revocable: boolean | undefined;
  readonly supportedPlatforms: readonly string[];
}

/** Content metadata of one adamId (from Apple's lookup). */
export interface AppMetadataInput {
  readonly adamId: string;
  readonly name: string | undefined;
  readonly bundleId: string | undefined;
  readonly kind: string | undefined;
  readonly artworkUrl: string | undefined;
  readonly deviceFamilies: readonly string[];
}

export interface AssignmentWriter {
  /**
   * Adds the next records in Apple's order. Once enough licenses are in full chunks and no batch is
   * being written, it starts writing them as a batch (with the partial chunks of assets no longer
   * listed) and returns without waiting for it, so the caller fetches and parses the next pages while
   * the database writes; one batch at a time. It waits for the batch being written only when far more
   * is ready than one batch. A failed batch fails the next `write` that starts one, or `close`.
   * `escapeFree`: no holder of these records has a character JSON escapes (`ApplePage.escapeFree`).
   */
  write(assignments: readonly LicenseAssignmentInput[], escapeFree?: boolean): Promise<void>;
  /** Writes what is still buffered (partial chunks included) and waits for every batch. */
  close(): Promise<void>;
  /**
   * Waits for the batch being written, whatever its outcome, and drops what is buffered: the caller
   * stops staging (a failed fetch) and may then clear the run without a batch landing after it.
   */
  discard(): Promise<void>;
}

export interface AssignmentWriterOptions {
  /** `seq` of the first record written (default 0). */
  readonly firstSeq?: number;
  /**
   * Licenses in ready chunks before a batch is started, once the one before has landed (default
   * {@link defaultFlushRows}); `write` waits for the batch being written only when four times as many
   * are ready.
   */
  readonly flushRows?: number;
  /** Told of each batch as it starts: its size and when it landed (`written` never rejects). */
  readonly onBatch?: (batch: StagedBatch) => void;
}

/** A batch of a writer, as {@link AssignmentWriterOptions.onBatch} sees it. */
export interface StagedBatch {
  readonly licenses: number;
  readonly rows: number;
  /** Settles once the batch is written or failed. */
  readonly written: Promise<void>;
}

/**
 * Least licenses in ready chunks for a batch (~40 chunks, one transaction). A batch starts once the
 * one before it landed, so under way batches hold what accumulated meanwhile, and what is left for
 * `close` is small: before, the last batch also held the assets' partial chunks (~18,000 licenses,
 * 7-14 ms after the last page); now ~4,000 licenses, ~3 ms. 2,048 left a smaller tail but ~60 COPYs
 * a sync cost the server and vppd more CPU than they saved; 8,192 and 16,384 left larger tails for no
 * saving measured (docs/architecture.md, "Batches as the database keeps up").
 */
export const defaultFlushRows = 4096;

/** Licenses held in ready chunks, in batches of `flushRows`, before a write waits for the batch being written. */
const heldBatches = 4;

/** Where staging rows of a run go. */
export interface RunKey {
  readonly runId: string;
  readonly tenantId: string;
  readonly tokenId: string;
}

/**
 * License data, written. Writers stage rows under the run that fetched them; readers (license-read-store.ts)
 * see only the rows of the run named by the token's `license_snapshots` pointer, so a sync in flight (or a
 * failed one) is never visible and the swap to a new snapshot is one row update.
 */
export interface LicenseStore {
  /** Stages a batch of assets of a run. */
  insertAssets(run: RunKey, assets: readonly LicenseAssetInput[]): Promise<void>;
  /** Stages a batch of assignments of a run, numbered from `firstSeq`, in one transaction. */
  insertAssignments(
    runId: string,
    firstSeq: number,
    assignments: readonly LicenseAssignmentInput[],
  ): Promise<void>;
  /** A buffered writer of a run's assignments (the sync's hot path). */
  assignmentWriter(runId: string, options?: AssignmentWriterOptions): AssignmentWriter;
  /** Deletes every license row of a run (in bounded ranges, so writers are never blocked long). */
  clearRun(runId: string): Promise<void>;
  /** Which of `adamIds` already have stored metadata. */
  knownMetadata(adamIds: readonly string[]): Promise<Set<string>>;
  /** Stores (or refreshes) the metadata of adamIds. */
  upsertMetadata(
    entries: readonly AppMetadataInput[],
    lookup: { readonly platform: string; readonly country: string },
    now: Date,
  ): Promise<void>;
}

// Rows per statement (bound parameters: SQLite allows 32,766 per statement, PostgreSQL 65,535).
const chunkInsertRows = 200;
const assetChunk = 500;
const metadataChunk = 200;
const deleteChunk = 2000;

type Trx = Transaction<DatabaseSchema>;

/** The chunk insert: columns in the order writeChunks gives the values. */
const chunkInsert: BulkInsertSpec = {
  table: 'license_assignment_chunks',
  columns: [
    { name: 'run_key', type: 'bigint' },
    { name: 'adam_id', type: 'text' },
    { name: 'pricing_param', type: 'text' },
    { name: 'first_seq', type: 'integer' },
    { name: 'last_seq', type: 'integer' },
    { name: 'holder_count', type: 'integer' },
    { name: 'seqs', type: 'text' },
    { name: 'holders', type: 'text' },
  ],
  maxRows: chunkInsertRows,
  // Chunks count only once the snapshot swap commits (durably, flushing these too).
  staging: true,
};

/** The asset upsert: Apple lists an (adamId, pricingParam) once; a repeat in a page keeps the last counts. */
const assetUpsert: BulkInsertSpec = {
  table: 'license_assets',
  columns: [
    { name: 'run_id', type: 'text' },
    { name: 'tenant_id', type: 'text' },
    { name: 'token_id', type: 'text' },
    { name: 'adam_id', type: 'text' },
    { name: 'pricing_param', type: 'text' },
    { name: 'product_type', type: 'text' },
    { name: 'total_count', type: 'bigint' },
    { name: 'assigned_count', type: 'bigint' },
    { name: 'available_count', type: 'bigint' },
    { name: 'retired_count', type: 'bigint' },
    { name: 'device_assignable', type: 'integer' },
    { name: 'revocable', type: 'integer' },
    { name: 'supported_platforms', type: 'text' },
  ],
  onConflict: {
    key: ['run_id', 'adam_id', 'pricing_param'],
    update: ['total_count', 'assigned_count', 'available_count', 'retired_count'],
  },
  maxRows: assetChunk,
};

/** The metadata upsert (a refresh overwrites everything but the key). */
const metadataUpsert: BulkInsertSpec = {
  table: 'license_app_metadata',
  columns: [
    { name: 'adam_id', type: 'text' },
    { name: 'name', type: 'text' },
    { name: 'bundle_id', type: 'text' },
    { name: 'kind', type: 'text' },
    { name: 'artwork_url', type: 'text' },
    { name: 'device_families', type: 'text' },
    { name: 'platform', type: 'text' },
    { name: 'country', type: 'text' },
    { name: 'fetched_at', type: 'text' },
  ],
  onConflict: {
    key: ['adam_id'],
    update: [
      'name',
      'bundle_id',
      'kind',
      'artwork_url',
      'device_families',
      'platform',
      'country',
      'fetched_at',
    ],
  },
  maxRows: metadataChunk,
};

/** Builds the Kysely-backed license store; its multi-row inserts are the engine's (storage/engine.ts). */
export function createLicenseStore(options: { readonly storage: StorageEngine }): LicenseStore {
  const { storage } = options;
  const { db } = storage;
  const insertChunks = storage.bulkInsert(chunkInsert);
  const upsertAssets = storage.bulkInsert(assetUpsert);
  const upsertMetadata = storage.bulkInsert(metadataUpsert);

  /** The run's assignment key, created on first use (inside the staging transaction). */
  const stagingKey = async (trx: Trx, runId: string): Promise<number> => {
    const found = await trx
      .selectFrom('license_runs')
      .select('run_key')
      .where('run_id', '=', runId)
      .executeTakeFirst();
    if (found) return Number(found.run_key);
    const created = await trx
      .insertInto('license_runs')
      .values({ run_id: runId })
      .returning('run_key')
      .executeTakeFirstOrThrow();
    return Number(created.run_key);
  };

  const runKeyOf = async (runId: string): Promise<number | undefined> => {
    const row = await db
      .selectFrom('license_runs')
      .select('run_key')
      .where('run_id', '=', runId)
      .executeTakeFirst();
    return row === undefined ? undefined : Number(row.run_key);
  };

  /**
   * Writes a run's chunks in one transaction (its run key is created on first use) and answers the
   * run key; a writer passes it back (`knownKey`) to save a lookup per batch. With the key known, the
   * bulk insert is the whole transaction (on PostgreSQL one COPY: no begin and commit round trips).
   */
  const writeChunks = async (
    runId: string,
    chunks: readonly AssignmentChunk[],
    knownKey?: number,
  ): Promise<number | undefined> => {
    if (chunks.length === 0) return knownKey;
    if (knownKey !== undefined) {
      await insertChunks(db, chunkValues(knownKey, chunks));
      return knownKey;
    }
    return db.transaction().execute(async (trx) => {
      const runKey = await stagingKey(trx, runId);
      await insertChunks(trx, chunkValues(runKey, chunks));
      return runKey;
    });
  };

  return {
    async insertAssets(run, assets) {
      if (assets.length === 0) return;
      const values = new Array<unknown>(assets.length * assetUpsert.columns.length);
      let k = 0;
      for (const a of assets) {
        values[k++] = run.runId;
        values[k++] = run.tenantId;
        values[k++] = run.tokenId;
        values[k++] = a.adamId;
        values[k++] = a.pricingParam;
        values[k++] = a.productType ?? null;
        values[k++] = a.totalCount;
        values[k++] = a.assignedCount;
        values[k++] = a.availableCount;
        values[k++] = a.retiredCount;
        values[k++] = a.deviceAssignable === undefined ? null : a.deviceAssignable ? 1 : 0;
        values[k++] = a.revocable === undefined ? null : a.revocable ? 1 : 0;
        values[k++] = JSON.stringify(a.supportedPlatforms);
      }
      // One transaction (one commit) per call, however many statements the page needs.
      await db.transaction().execute((trx) => upsertAssets(trx, values));
    },

    async insertAssignments(runId, firstSeq, assignments) {
      const chunker = new AssignmentChunker({ maxOpen: Number.MAX_SAFE_INTEGER });
      for (let i = 0; i < assignments.length; i++) {
        chunker.add(assignments[i] as LicenseAssignmentInput, firstSeq + i);
      }
      chunker.closeAll();
      await writeChunks(runId, chunker.takeReady());
    },

    assignmentWriter(runId, writerOptions = {}) {
      const flushRows = Math.max(1, writerOptions.flushRows ?? defaultFlushRows);
      let nextSeq = writerOptions.firstSeq ?? 0;
      const chunker = new AssignmentChunker();
      let runKey: number | undefined;
      const { onBatch } = writerOptions;
      const batches = batchPipeline(async (chunks) => {
        runKey = await writeChunks(runId, chunks, runKey);
      }, onBatch);
      return {
        async write(assignments, escapeFree = false) {
          for (let i = 0; i < assignments.length; i++) {
            chunker.add(assignments[i] as LicenseAssignmentInput, nextSeq++, escapeFree);
          }
          // A batch starts as soon as the one before landed (and enough is ready); the caller waits for
          // it only once far more is held than one batch.
          const ready = chunker.readyCount;
          if (ready >= flushRows && (batches.idle || ready >= flushRows * heldBatches)) {
            chunker.closeIdle();
            await batches.start(chunker.takeReady());
          }
        },
        async close() {
          chunker.closeAll();
          await batches.start(chunker.takeReady());
          await batches.finish();
        },
        async discard() {
          chunker.closeAll();
          chunker.takeReady();
          await batches.settled();
        },
      };
    },

    async clearRun(runId) {
      await db.deleteFrom('license_assets').where('run_id', '=', runId).execute();
      const runKey = await runKeyOf(runId);
      if (runKey === undefined) return;
      // Range deletes of at most deleteChunk chunks (~250k licenses), each its own short transaction.
      for (;;) {
        const bound = await db
          .selectFrom('license_assignment_chunks')
          .select(['adam_id', 'pricing_param', 'first_seq'])
          .where('run_key', '=', runKey)
          .orderBy('adam_id')
          .orderBy('pricing_param')
          .orderBy('first_seq')
          .limit(1)
          .offset(deleteChunk)
          .executeTakeFirst();
        if (bound === undefined) break;
        await db
          .deleteFrom('license_assignment_chunks')
          .where('run_key', '=', runKey)
          .where((eb) =>
            eb(
              eb.refTuple('adam_id', 'pricing_param', 'first_seq'),
              '<',
              eb.tuple(bound.adam_id, bound.pricing_param, bound.first_seq),
            ),
          )
          .execute();
      }
      await db.deleteFrom('license_assignment_chunks').where('run_key', '=', runKey).execute();
      await db.deleteFrom('license_runs').where('run_key', '=', runKey).execute();
    },

    async knownMetadata(adamIds) {
      const known = new Set<string>();
      for (let i = 0; i < adamIds.length; i += 500) {
        const rows = await db
          .selectFrom('license_app_metadata')
          .select('adam_id')
          .where('adam_id', 'in', adamIds.slice(i, i + 500))
          .execute();
        for (const row of rows) known.add(row.adam_id);
      }
      return known;
    },

    async upsertMetadata(entries, lookup, now) {
      if (entries.length === 0) return;
      const fetchedAt = dateToColumn(now);
      const values = new Array<unknown>(entries.length * metadataUpsert.columns.length);
      let k = 0;
      for (const e of entries) {
        values[k++] = e.adamId;
        values[k++] = e.name ?? null;
        values[k++] = e.bundleId ?? null;
        values[k++] = e.kind ?? null;
        values[k++] = e.artworkUrl ?? null;
        values[k++] = JSON.stringify(e.deviceFamilies);
        values[k++] = lookup.platform;
        values[k++] = lookup.country;
        values[k++] = fetchedAt;
      }
      await db.transaction().execute((trx) => upsertMetadata(trx, values));
    },
  };
}

/** The chunk insert's values (columns in {@link chunkInsert}'s order). */
function chunkValues(runKey: number, chunks: readonly AssignmentChunk[]): unknown[] {
  const values = new Array<unknown>(chunks.length * chunkInsert.columns.length);
  let k = 0;
  for (const c of chunks) {
    values[k++] = runKey;
    values[k++] = c.adamId;
    values[k++] = c.pricingParam;
    values[k++] = c.firstSeq;
    values[k++] = c.lastSeq;
    values[k++] = c.holderCount;
    values[k++] = c.seqs;
    values[k++] = c.holders;
  }
  return values;
}

/**
 * Batches of a writer, written one after the other while the caller goes on: `start` waits for the
 * batch before (the writer calls it while `idle`, or when it holds too much), then starts this one
 * without waiting for it. A batch's failure is kept and thrown by the next `start` or by `finish`;
 * nothing after a failed batch is written.
 *
 * Why (PostgreSQL, `npm run bench -- sync --database postgres`, docs/architecture.md "Staging while
 * fetching"): waiting for each batch left the event loop idle while the server ran the COPY, and
 * the Apple client's read-ahead (10 pages) is shorter than a batch (~15 pages), so fetching stopped
 * too.
 */
function batchPipeline(
  write: (chunks: readonly AssignmentChunk[]) => Promise<void>,
  onBatch?: (batch: StagedBatch) => void,
): {
  /** No batch is being written. */
  readonly idle: boolean;
  start(chunks: readonly AssignmentChunk[]): Promise<void>;
  finish(): Promise<void>;
  settled(): Promise<void>;
} {
  let inFlight: Promise<void> = Promise.resolve();
  let idle = true;
  let failure: { readonly error: unknown } | undefined;
  const finish = async () => {
    await inFlight;
    if (failure !== undefined) throw failure.error;
  };
  return {
    get idle() {
      return idle;
    },
    async start(chunks) {
      await finish();
      if (chunks.length === 0) return;
      idle = false;
      inFlight = write(chunks).then(
        () => {
          idle = true;
        },
        (error: unknown) => {
          idle = true;
          failure = { error };
        },
      );
      if (onBatch !== undefined) {
        let licenses = 0;
        for (const chunk of chunks) licenses += chunk.holderCount;
        onBatch({ licenses, rows: chunks.length, written: inFlight });
      }
    },
    finish,
    settled: () => inFlight,
  };
}
