import type { SyncJobKind, SyncTrigger } from '../../domain/sync-trigger.js';
import type { LicenseAssignmentInput } from '../assignment-chunks.js';
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
}

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
}
