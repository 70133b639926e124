import type { ColumnType, Generated } from 'kysely';

/**
 * The tables vppd stores, as Kysely sees them. Row types are storage-only: the store converts them to
 * domain entities and nothing outside `storage/` knows a column name.
 *
 * Conventions (the OData compiler relies on them): enums as integer values, booleans as integer 0/1,
 * dates as fixed-width ISO-8601 UTC text `YYYY-MM-DDTHH:mm:ss.sssZ` (so text order = time order),
 * ids as text GUIDs, collections as JSON text, secrets as base64 text.
 */
export interface DatabaseSchema {
  tenants: TenantRow;
  vpp_tokens: VppTokenRow;
  vpp_token_action_results: VppTokenActionResultRow;
  // Sync engine and license data (migration 0002; see the row types below).
  vppd_settings: VppdSettingRow;
  sync_jobs: SyncJobRow;
  sync_runs: SyncRunRow;
  // Round-robin of claims by tenant (migration 0007).
  sync_tenant_turns: SyncTenantTurnRow;
  license_snapshots: LicenseSnapshotRow;
  token_locations: TokenLocationRow;
  sync_schedule: SyncScheduleRow;
  license_assets: LicenseAssetRow;
  license_runs: LicenseRunRow;
  license_assignment_chunks: LicenseAssignmentChunkRow;
  license_app_metadata: LicenseAppMetadataRow;
  // The event log (migration 0008; storage/event-store.ts).
  events: EventRow;
  event_heads: EventHeadRow;
  event_cursors: EventCursorRow;
  apple_notification_registrations: AppleNotificationRegistrationRow;
  apple_notifications: AppleNotificationRow;
  // Apple's request rate per location, shared by processes (migration 0009).
  apple_rate_windows: AppleRateWindowRow;
}

/** The grants of one Apple location's last window (migration 0009; storage/apple-rate-store.ts). */
export interface AppleRateWindowRow {
  /** The location's rate-limit key: a short hash of its sToken, never the sToken. */
  location_key: string;
  /** JSON array of grant times, database clock in whole milliseconds, oldest first. */
  grants: string;
}

export interface TenantRow {
  id: string;
  created_at: string;
}

export interface VppTokenRow {
  id: string;
  tenant_id: string;
  organization_name: string | null;
  vpp_token_account_type: number;
  apple_id: string | null;
  expiration_date_time: string;
  last_sync_date_time: string;
  last_modified_date_time: string;
  state: number;
  last_sync_status: number;
  automatically_update_apps: number;
  country_or_region: string | null;
  data_sharing_consent_granted: number;
  display_name: string | null;
  location_name: string | null;
  claim_token_management_from_external_mdm: number;
  /** JSON array of strings. */
  role_scope_tag_ids: string;
  apple_device_app_delivery_protocol_type: number;
  /** AES-256-GCM ciphertext of the `.vpptoken` content, base64. */
  stoken_ciphertext: string;
  /** 12-byte GCM nonce, base64. */
  stoken_iv: string;
  /** 16-byte GCM tag, base64. */
  stoken_tag: string;
  /** Keyed HMAC-SHA256 of the sToken's inner `token` (hex): finds duplicates without a plain hash. */
  stoken_fingerprint: string;
  created_at: string;
}

export interface VppTokenActionResultRow {
  tenant_id: string;
  token_id: string;
  action_name: string;
  action_state: number;
  start_date_time: string;
  last_updated_date_time: string;
  /** Set only for `revokeLicenses` results (the derived Graph type). */
  action_failure_reason: number | null;
  total_licenses_count: number | null;
  failed_licenses_count: number | null;
  /** Index in the token's `tokenActionResults`, so they are served in a stable order. */
  position: number;
}

// ---- sync engine and license data (migration 0002) ----------------------------------------------
//
// How to read a token's licenses: its current snapshot is `license_snapshots.run_id`; the current
// assets are the rows of `license_assets` with that `run_id`, the current assignments the chunks of
// `license_assignment_chunks` with the `run_key` that `license_runs` gives that `run_id`.
// Rows of other runs are staging (a sync in flight) or garbage (failed/superseded runs, deleted soon):
// never read license rows without joining through `license_snapshots`.

/** Installation-wide settings, e.g. `installation_id` (vppd's own `mdmInfo.id` at Apple). */
export interface VppdSettingRow {
  key: string;
  value: string;
}

/**
 * A sync that was requested and has not finished: at most one per token (unique `token_id`). A worker
 * owns it while `lease_expires_at` is in the future; an expired lease may be taken over by any process.
 */
export interface SyncJobRow {
  id: string;
  tenant_id: string;
  token_id: string;
  /** Who asked: `api`, `created`, `renewed`, `scheduled`. */
  trigger: string;
  requested_at: string;
  /** Times a worker claimed the job (1 = first run, 2 = the one retry after an interruption). */
  attempts: number;
  lease_owner: string | null;
  lease_expires_at: string | null;
  heartbeat_at: string | null;
  /** The sync run of the current attempt. */
  run_id: string | null;
  /** `licenses` (a full sync) or `licenseCounts` (asset counts only); migration 0007. */
  kind: Generated<string>;
}

/** When a tenant last had a job claimed: a sequence number shared by all tenants (migration 0007). */
export interface SyncTenantTurnRow {
  tenant_id: string;
  last_turn: ColumnType<number, number | bigint, number | bigint>;
}

/** Outcome of a sync run, as stored in `sync_runs.outcome`. */
export type SyncRunOutcomeColumn = 'running' | 'completed' | 'failed' | 'interrupted';

/** One attempt to sync a token (the per-token sync history); also the key of the license rows it fetched. */
export interface SyncRunRow {
  id: string;
  tenant_id: string;
  token_id: string;
  job_id: string;
  trigger: string;
  /** 1 for the first attempt of a job, 2 for the retry after an interruption. */
  attempt: number;
  worker_id: string;
  started_at: string;
  finished_at: string | null;
  outcome: SyncRunOutcomeColumn;
  /** `SyncFailureKind` (domain/sync-failure.ts) when the run failed. */
  failure_kind: string | null;
  /** `vppTokenActionFailureReason` value when the run failed. */
  failure_reason: number | null;
  /** What a human can act on (Apple's message where there is one); never a secret. */
  error_message: string | null;
  apple_error_number: number | null;
  http_status: number | null;
  /** Apple's library id (`uId`) of the location, once known. */
  location_uid: string | null;
  /** Apple's `versionId` of the snapshot the run fetched. */
  version_id: string | null;
  asset_count: number | null;
  assignment_count: number | null;
  page_count: number | null;
  /** 1 once the license rows of a run that is not current were deleted. */
  staging_cleared: number;
  /** `licenses` (a full sync) or `delta` (migration 0013; the column defaults to `licenses`). */
  kind: string;
}

/**
 * A `bigint` column: SQLite answers a number, PostgreSQL's driver answers int8 as text (it may exceed
 * 2^53); readers convert with `Number()` — vppd's sums stay far below 2^53.
 */
export type BigIntColumn = ColumnType<number | string, number, number>;

/** A token's current license snapshot: one row per token that completed a sync. */
export interface LicenseSnapshotRow {
  token_id: string;
  tenant_id: string;
  run_id: string;
  version_id: string;
  location_uid: string;
  committed_at: string;
  asset_count: number;
  assignment_count: number;
  /** Sums over the snapshot's assets (Apple's counts; "unlimited" assets count 2147483647). */
  total_license_count: BigIntColumn;
  used_license_count: BigIntColumn;
  available_license_count: BigIntColumn;
}

/** Which token of a tenant holds an Apple location (unique per tenant and `location_uid`). */
export interface TokenLocationRow {
  token_id: string;
  tenant_id: string;
  location_uid: string;
  location_name: string | null;
  claimed_at: string;
}

/** When the scheduler next syncs a token automatically (interval with jitter; once a day when expired). */
export interface SyncScheduleRow {
  token_id: string;
  tenant_id: string;
  next_sync_at: string;
  /** When the next delta sync is due (migration 0013); null: none planned. */
  next_delta_at: string | null;
}

/** One licensed asset of a run (Apple's `GET /assets` record). Identity: `(adam_id, pricing_param)`. */
export interface LicenseAssetRow {
  run_id: string;
  tenant_id: string;
  token_id: string;
  adam_id: string;
  pricing_param: string;
  product_type: string | null;
  total_count: BigIntColumn;
  assigned_count: BigIntColumn;
  available_count: BigIntColumn;
  retired_count: BigIntColumn;
  /** 0/1, null when Apple did not say. */
  device_assignable: number | null;
  revocable: number | null;
  /** JSON array of strings. */
  supported_platforms: string;
}

/** The integer key of a run's assignment rows (assigned on a run's first staged assignment). */
export interface LicenseRunRow {
  run_key: Generated<number>;
  run_id: string;
}

/**
 * Up to 128 licenses of one asset in Apple's order (migration 0006; storage/assignment-chunks.ts has
 * the format): `seqs` are their positions as flattened [start, length, kind] triples (kind 0 a device,
 * 1 a user), `holders` a JSON array of the serial numbers and clientUserIds in that order. Unique `(run_key, adam_id, pricing_param, first_seq)`: an
 * app's licenses are its chunks in `first_seq` order.
 */
export interface LicenseAssignmentChunkRow {
  run_key: number;
  adam_id: string;
  pricing_param: string;
  first_seq: number;
  last_seq: number;
  holder_count: number;
  seqs: string;
  holders: string;
}

/** Content metadata of an adamId (name, bundle id, ...) from Apple's lookup; shared by all tenants. */
export interface LicenseAppMetadataRow {
  adam_id: string;
  name: string | null;
  bundle_id: string | null;
  kind: string | null;
  artwork_url: string | null;
  /** JSON array of strings. */
  device_families: string;
  /** The store and country the lookup used (`volumestore`, `us`). */
  platform: string;
  country: string;
  fetched_at: string;
}

/** One change a reader cares about (storage/event-store.ts); `seq` rises and is never reused. */
export interface EventRow {
  seq: Generated<number>;
  tenant_id: string;
  /** The token the change is about; null for changes of the tenant as a whole. */
  token_id: string | null;
  type: string;
  /** JSON object text. */
  payload: string;
  created_at: string;
}

/** A tenant's append lock: upserted before each append, so the tenant's events commit in `seq` order. */
export interface EventHeadRow {
  tenant_id: string;
  appended_at: string;
}

/** How far a reader of the whole event log has processed it. */
export interface EventCursorRow {
  name: string;
  seq: number;
  updated_at: string;
}
/** Where a token's location sends Apple's notifications (migration 0011). */
export interface AppleNotificationRegistrationRow {
  id: string;
  tenant_id: string;
  token_id: string;
  location_uid: string;
  notification_url: string;
  auth_token_hash: string;
  auth_token_ciphertext: string;
  auth_token_iv: string;
  auth_token_tag: string;
  stoken_fingerprint: string;
  status: string;
  failure_message: string | null;
  apple_error_number: number | null;
  updated_at: string;
}

/** One notification Apple delivered, stored before it was acknowledged (migration 0011). */
export interface AppleNotificationRow {
  token_id: string;
  notification_id: string;
  tenant_id: string;
  notification_type: string;
  payload: string;
  received_at: string;
  processed_at: string | null;
  outcome: string | null;
}
