import type { Kysely } from 'kysely';
import { decodeChunk } from './assignment-chunks.js';
import type { DatabaseSchema } from './database-schema.js';
import type { StorageEngine } from './engine.js';
import { assetKey, holderKey } from './snapshot-merge.js';
import type { DeltaBase, SnapshotSums, StoredAssetRow } from './sync-jobs/sync-job-types.js';

/** What a delta sync reads of the token's current snapshot before it asks Apple for changes. */
export interface SnapshotReads {
  /** The token's current snapshot (its run and versionId), if it has one with license rows. */
  base(tenantId: string, tokenId: string): Promise<DeltaBase | undefined>;
  /** Licenses per asset of a snapshot's run, keyed by `adamId` NUL `pricingParam` (snapshot-merge.ts). */
  heldCounts(runKey: number): Promise<Map<string, number>>;
  /**
   * The holders of some assets in a snapshot's run, as holder keys (snapshot-merge.ts), keyed by asset key;
   * one statement per 100 assets. An asset without licenses is missing from the answer.
   */
  holdersOf(
    runKey: number,
    assets: readonly { readonly adamId: string; readonly pricingParam: string }[],
  ): Promise<Map<string, Set<string>>>;
  /**
   * A snapshot's asset rows (its run's `license_assets`): the delta learns the snapshot's apps from them
   * and its commit compares them with Apple's list.
   */
  assets(runId: string): Promise<StoredAssetRow[]>;
}

export function createSnapshotReads(options: { readonly storage: StorageEngine }): SnapshotReads {
  const { db } = options.storage;
  return {
    async base(tenantId, tokenId) {
      const row = await db
        .selectFrom('license_snapshots as s')
        .innerJoin('license_runs as r', 'r.run_id', 's.run_id')
        .select([
          's.run_id',
          'r.run_key',
          's.version_id',
          's.asset_count',
          's.total_license_count',
          's.used_license_count',
          's.available_license_count',
        ])
        .where('s.tenant_id', '=', tenantId)
        .where('s.token_id', '=', tokenId)
        .executeTakeFirst();
      if (row === undefined || row.version_id === '') return undefined;
      return {
        runId: row.run_id,
        runKey: Number(row.run_key),
        versionId: row.version_id,
        sums: snapshotSums(row),
      };
    },

    async heldCounts(runKey) {
      const rows = await db
        .selectFrom('license_assignment_chunks')
        .select(['adam_id', 'pricing_param'])
        .select((eb) => eb.fn.sum<number | string>('holder_count').as('held'))
        .where('run_key', '=', runKey)
        .groupBy(['adam_id', 'pricing_param'])
        .execute();
      return new Map(
        rows.map((r) => [assetKey({ adamId: r.adam_id, pricingParam: r.pricing_param }), Number(r.held)]),
      );
    },

    async holdersOf(runKey, assets) {
      const out = new Map<string, Set<string>>();
      for (let i = 0; i < assets.length; i += 100) {
        const batch = assets.slice(i, i + 100);
        const chunks = await db
          .selectFrom('license_assignment_chunks')
          .select(['adam_id', 'pricing_param', 'seqs', 'holders'])
          .where('run_key', '=', runKey)
          .where((eb) =>
            eb.or(
              batch.map((a) =>
                eb.and([eb('adam_id', '=', a.adamId), eb('pricing_param', '=', a.pricingParam)]),
              ),
            ),
          )
          .execute();
        for (const c of chunks) {
          const key = assetKey({ adamId: c.adam_id, pricingParam: c.pricing_param });
          let set = out.get(key);
          if (set === undefined) {
            set = new Set();
            out.set(key, set);
          }
          for (const h of decodeChunk(c)) set.add(holderKey(h));
        }
      }
      return out;
    },

    assets(runId) {
      return readAssetRows(db, runId);
    },
  };
}

/** A run's asset rows (`license_assets`), as a delta's commit compares them with Apple's list. */
export function readAssetRows(db: Kysely<DatabaseSchema>, runId: string): Promise<StoredAssetRow[]> {
  return db
    .selectFrom('license_assets')
    .select([
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
    ])
    .where('run_id', '=', runId)
    .execute();
}

/** A `license_snapshots` row's asset count and sums (bigint columns arrive as strings on PostgreSQL). */
export function snapshotSums(row: {
  readonly asset_count: number | string;
  readonly total_license_count: number | string | bigint;
  readonly used_license_count: number | string | bigint;
  readonly available_license_count: number | string | bigint;
}): SnapshotSums {
  return {
    assets: Number(row.asset_count),
    total: Number(row.total_license_count),
    used: Number(row.used_license_count),
    available: Number(row.available_license_count),
  };
}
