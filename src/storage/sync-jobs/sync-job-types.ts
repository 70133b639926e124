import type { Selectable } from 'kysely';
import type { SyncJobKind, SyncTrigger } from '../../domain/sync-trigger.js';
import type { LicenseAssignmentInput } from '../assignment-chunks.js';
import type { LicenseAssetRow } from '../database-schema.js';
import type { LicenseAssetInput } from '../license-store.js';

// The records the queue, the run outcome and the history hand each other (types only, so no file of
// sync-jobs/ needs another for its shapes).

/** A durable sync job as the worker sees it. */
export interface SyncJob {
  readonly id: string;
  readonly tenantId: string;
  readonly tokenId: string;
  readonly trigger: SyncTrigger;
  /** A full sync, or only the asset counts (no history row, the token's sync status untouched). */
  readonly kind: SyncJobKind;
  readonly requestedAt: Date;
  readonly attempts: number;
  readonly leaseOwner: string | null;
  readonly leaseExpiresAt: Date | null;
  readonly runId: string | null;
}

/** A job a worker now holds the lease of, with the run (history row) it opened for this attempt. */
export interface ClaimedSync {
  readonly job: SyncJob;
  readonly runId: string;
  readonly attempt: number;
  readonly workerId: string;
}

/** Facts about the location and snapshot a successful run commits, besides the license rows. */
export interface SnapshotCommit {
  readonly locationUid: string;
  readonly locationName: string;
  readonly countryOrRegion: string | null;
  /** Apple's `tokenExpirationDate`, when it sent one. */
  readonly expirationDateTime: Date | undefined;
  readonly versionId: string;
  readonly assetCount: number;
  readonly assignmentCount: number;
  readonly pageCount: number;
  readonly totalLicenseCount: number;
  readonly usedLicenseCount: number;
  readonly availableLicenseCount: number;
}

/** The snapshot a delta sync starts from: the token's current license snapshot when the run began. */
export interface DeltaBase {
  readonly runId: string;
  readonly runKey: number;
  readonly versionId: string;
  /**
   * The snapshot's asset count and license sums when it was read: the delta's commit compares them with
   * the row as it locks it, to know whether the asset rows read before ({@link DeltaCommit.storedAssets})
   * may have been changed since (an ASSET_COUNT notification applied to the snapshot moves the sums).
   */
  readonly sums: SnapshotSums;
}

/** A snapshot's asset count and license sums, as `license_snapshots` holds them. */
export interface SnapshotSums {
  readonly assets: number;
  readonly total: number;
  readonly used: number;
  readonly available: number;
}

/** A snapshot's asset row: the columns a delta compares with Apple's list and rewrites when they differ. */
export type StoredAssetRow = Pick<
  Selectable<LicenseAssetRow>,
  | 'adam_id'
  | 'pricing_param'
  | 'product_type'
  | 'total_count'
  | 'assigned_count'
  | 'available_count'
  | 'retired_count'
  | 'device_assignable'
  | 'revocable'
  | 'supported_platforms'
>;

/**
 * What a delta run commits: Apple's whole asset list (counts are not in deltas), the licenses added
 * since the base's versionId, and, per app whose counts did not add up, Apple's full listing of its
 * holders in `replaced` (keyed by `adamId` NUL `pricingParam`, holder keys as snapshot-merge.ts spells them).
 */
export interface DeltaCommit {
  readonly base: DeltaBase;
  readonly locationUid: string;
  readonly locationName: string;
  readonly countryOrRegion: string | null;
  readonly expirationDateTime: Date | undefined;
  readonly versionId: string;
  readonly assets: readonly LicenseAssetInput[];
  readonly added: readonly LicenseAssignmentInput[];
  readonly replaced: ReadonlyMap<
    string,
    { readonly adamId: string; readonly pricingParam: string; readonly holders: readonly string[] }
  >;
  readonly pageCount: number;
  /**
   * The base snapshot's asset rows, read while Apple was being read: the commit writes only those that
   * differ from Apple's list, without reading them again unless the snapshot's sums moved meanwhile.
   */
  readonly storedAssets: readonly StoredAssetRow[];
}
