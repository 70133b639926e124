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
