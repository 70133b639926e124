export type { LicenseAssignmentInput } from './assignment-chunks.js';

import { CompiledQuery, type Insertable, type Transaction } from 'kysely';
import { type AssignmentChunk, AssignmentChunker, type LicenseAssignmentInput } from './assignment-chunks.js';
import type {
  DatabaseSchema,
  LicenseAppMetadataRow,
  LicenseAssetRow,
  LicenseAssignmentChunkRow,
} from './database-schema.js';
import type { VppdDatabase } from './open-database.js';
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
  /** Adds the next records in Apple's order; writes a batch once enough licenses are in full chunks. */
  write(assignments: readonly LicenseAssignmentInput[]): Promise<void>;
  /** Writes what is still buffered (partial chunks included). */
  close(): Promise<void>;
}

export interface AssignmentWriterOptions {
  /** `seq` of the first record written (default 0). */
  readonly firstSeq?: number;
  /** Licenses in ready chunks before a batch is written (default {@link defaultFlushRows}). */
  readonly flushRows?: number;
}

/**
 * Licenses per staged batch (~64 chunks, one transaction): few commits per sync, each short
 * (~3 ms), and few records held in memory.
 */
export const defaultFlushRows = 8192;

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

// Bound-parameter budget per statement: SQLite allows 32,766 and PostgreSQL 65,535.
const chunkInsertRows = 200;
const assetChunk = 500;
const metadataChunk = 200;
const deleteChunk = 2000;
// Column order of the chunk insert (the order of LicenseAssignmentChunkRow's keys).
const chunkColumns = [
  'run_key',
  'adam_id',
  'pricing_param',
  'first_seq',
  'last_seq',
  'holder_count',
  'seqs',
  'holders',
];
// Column order of the asset upsert (the order of the sample row in assetInsertSql).
const assetColumns = [
  'run_id',
  'tenant_id',
  'token_id',
  'adam_id',
  'pricing_param',
  'product_type',
  'total_count',
  'assigned_count',
  'available_count',
  'retired_count',
  'device_assignable',
  'revocable',
  'supported_platforms',
];

// Column order of the metadata upsert (the order of the sample row in metadataUpsertSql).
const metadataColumns = [
  'adam_id',
  'name',
  'bundle_id',
  'kind',
  'artwork_url',
  'device_families',
  'platform',
  'country',
  'fetched_at',
];

type Trx = Transaction<DatabaseSchema>;

/**
 * A multi-row statement's SQL text per row count, compiled by Kysely once per count: batches only
 * build their parameters, which must be `columns` per row in that order (checked once per count).
 */
function compiledPerRowCount(
  label: string,
  columns: readonly string[],
  compile: (rows: number) => CompiledQuery,
): (rows: number) => string {
  const texts = new Map<number, string>();
  return (rows) => {
    let text = texts.get(rows);
    if (text === undefined) {
      const compiled = compile(rows);
      if (compiled.parameters.length !== rows * columns.length) {
        throw new Error(`${label}: unexpected parameter layout`);
      }
      text = compiled.sql;
      texts.set(rows, text);
    }
    return text;
  };
}

/** Builds the Kysely-backed license store. */
export function createLicenseStore(options: { readonly db: VppdDatabase }): LicenseStore {
  const { db } = options;

  /** The chunk insert for `rows` rows. */
  const chunkInsertSql = compiledPerRowCount('license_assignment_chunks insert', chunkColumns, (rows) => {
    const sample: LicenseAssignmentChunkRow = {
      run_key: 0,
      adam_id: '',
      pricing_param: '',
      first_seq: 0,
      last_seq: 0,
      holder_count: 0,
      seqs: '',
      holders: '',
    };
    return db
      .insertInto('license_assignment_chunks')
      .values(Array.from({ length: rows }, () => sample))
      .compile();
  });

  /** The asset upsert for `rows` rows (compiling one took ~5 ms per 500 rows). */
  const assetInsertSql = compiledPerRowCount('license_assets insert', assetColumns, (rows) => {
    const sample: Insertable<LicenseAssetRow> = {
      run_id: '',
      tenant_id: '',
      token_id: '',
      adam_id: '',
      pricing_param: '',
      product_type: null,
      total_count: 0,
      assigned_count: 0,
      available_count: 0,
      retired_count: 0,
      device_assignable: null,
      revocable: null,
      supported_platforms: '',
    };
    // Apple lists an (adamId, pricingParam) once; a repeat in a page keeps the last answer.
    return db
      .insertInto('license_assets')
      .values(Array.from({ length: rows }, () => sample))
      .onConflict((oc) =>
        oc.columns(['run_id', 'adam_id', 'pricing_param']).doUpdateSet((eb) => ({
          total_count: eb.ref('excluded.total_count'),
          assigned_count: eb.ref('excluded.assigned_count'),
          available_count: eb.ref('excluded.available_count'),
          retired_count: eb.ref('excluded.retired_count'),
        })),
      )
      .compile();
  });

  /** The metadata upsert for `rows` rows. */
  const metadataUpsertSql = compiledPerRowCount('license_app_metadata upsert', metadataColumns, (rows) => {
    const sample: LicenseAppMetadataRow = {
      adam_id: '',
      name: null,
      bundle_id: null,
      kind: null,
      artwork_url: null,
      device_families: '',
      platform: '',
      country: '',
      fetched_at: '',
    };
    return db
      .insertInto('license_app_metadata')
      .values(Array.from({ length: rows }, () => sample))
      .onConflict((oc) =>
        oc.column('adam_id').doUpdateSet((eb) => ({
          name: eb.ref('excluded.name'),
          bundle_id: eb.ref('excluded.bundle_id'),
          kind: eb.ref('excluded.kind'),
          artwork_url: eb.ref('excluded.artwork_url'),
          device_families: eb.ref('excluded.device_families'),
          platform: eb.ref('excluded.platform'),
          country: eb.ref('excluded.country'),
          fetched_at: eb.ref('excluded.fetched_at'),
        })),
      )
      .compile();
  });

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

  /** Writes a run's chunks in one transaction (its run key is created on first use). */
  const writeChunks = async (runId: string, chunks: readonly AssignmentChunk[]): Promise<void> => {
    if (chunks.length === 0) return;
    await db.transaction().execute(async (trx) => {
      const runKey = await stagingKey(trx, runId);
      for (let i = 0; i < chunks.length; i += chunkInsertRows) {
        const end = Math.min(chunks.length, i + chunkInsertRows);
        const parameters = new Array<unknown>((end - i) * chunkColumns.length);
        let k = 0;
        for (let j = i; j < end; j++) {
          const c = chunks[j] as AssignmentChunk;
          parameters[k++] = runKey;
          parameters[k++] = c.adamId;
          parameters[k++] = c.pricingParam;
          parameters[k++] = c.firstSeq;
          parameters[k++] = c.lastSeq;
          parameters[k++] = c.holderCount;
          parameters[k++] = c.seqs;
          parameters[k++] = c.holders;
        }
        await trx.executeQuery(CompiledQuery.raw(chunkInsertSql(end - i), parameters));
      }
    });
  };

  return {
    async insertAssets(run, assets) {
      if (assets.length === 0) return;
      // One transaction (one commit) per call, however many statements the page needs.
      await db.transaction().execute(async (trx) => {
        for (let i = 0; i < assets.length; i += assetChunk) {
          const end = Math.min(assets.length, i + assetChunk);
          const parameters = new Array<unknown>((end - i) * assetColumns.length);
          let k = 0;
          for (let j = i; j < end; j++) {
            const a = assets[j] as LicenseAssetInput;
            parameters[k++] = run.runId;
            parameters[k++] = run.tenantId;
            parameters[k++] = run.tokenId;
            parameters[k++] = a.adamId;
            parameters[k++] = a.pricingParam;
            parameters[k++] = a.productType ?? null;
            parameters[k++] = a.totalCount;
            parameters[k++] = a.assignedCount;
            parameters[k++] = a.availableCount;
            parameters[k++] = a.retiredCount;
            parameters[k++] = a.deviceAssignable === undefined ? null : a.deviceAssignable ? 1 : 0;
            parameters[k++] = a.revocable === undefined ? null : a.revocable ? 1 : 0;
            parameters[k++] = JSON.stringify(a.supportedPlatforms);
          }
          await trx.executeQuery(CompiledQuery.raw(assetInsertSql(end - i), parameters));
        }
      });
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
      return {
        async write(assignments) {
          for (let i = 0; i < assignments.length; i++) {
            chunker.add(assignments[i] as LicenseAssignmentInput, nextSeq++);
          }
          if (chunker.readyCount >= flushRows) await writeChunks(runId, chunker.takeReady());
        },
        async close() {
          chunker.closeAll();
          await writeChunks(runId, chunker.takeReady());
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
      await db.transaction().execute(async (trx) => {
        for (let i = 0; i < entries.length; i += metadataChunk) {
          const end = Math.min(entries.length, i + metadataChunk);
          const parameters = new Array<unknown>((end - i) * metadataColumns.length);
          let k = 0;
          for (let j = i; j < end; j++) {
            const e = entries[j] as AppMetadataInput;
            parameters[k++] = e.adamId;
            parameters[k++] = e.name ?? null;
            parameters[k++] = e.bundleId ?? null;
            parameters[k++] = e.kind ?? null;
            parameters[k++] = e.artworkUrl ?? null;
            parameters[k++] = JSON.stringify(e.deviceFamilies);
            parameters[k++] = lookup.platform;
            parameters[k++] = lookup.country;
            parameters[k++] = fetchedAt;
          }
          await trx.executeQuery(CompiledQuery.raw(metadataUpsertSql(end - i), parameters));
        }
      });
    },
  };
}
