import type { Kysely } from 'kysely';
import type { DatabaseSchema } from '../database-schema.js';
import type { VppdDatabase } from '../open-database.js';

// The tables of migration 0010 (license operations), kept beside their stores like the alert tables.

/** One associate/disassociate request of a caller, run as a durable job. */
export interface LicenseOperationRow {
  id: string;
  tenant_id: string;
  token_id: string;
  /** `associate` | `disassociate`. */
  kind: string;
  /** `api` | `reclaim`. */
  source: string;
  /** `pending` | `running` | `completed` | `failed` | `partiallyFailed`. */
  status: string;
  /** `serialNumber` | `clientUserId`. */
  holder_kind: string;
  /** JSON `[{adamId, pricingParam}]`. */
  assets: string;
  /** JSON array of serial numbers or client user ids. */
  holders: string;
  requested_count: number;
  completed_count: number;
  failed_count: number;
  idempotency_key: string | null;
  /** sha-256 of the request the key was first used with. */
  request_fingerprint: string | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
  /** When a worker next has something to do (submit or poll); null once finished. */
  next_action_at: string | null;
  lease_owner: string | null;
  lease_expires_at: string | null;
  /** Times a worker claimed it. */
  claims: number;
  /** How the snapshot followed the finished operation: `incremental` | `fullSyncRequested` | `countsOnly` | `failed`. */
  snapshot_update: string | null;
  error_message: string | null;
}

/** One Apple call of an operation. */
export interface LicenseOperationBatchRow {
  operation_id: string;
  batch_index: number;
  assets: string;
  holders: string;
  requested_count: number;
  /** `pending` (not submitted) | `submitted` (event open) | `completed` | `failed`. */
  status: string;
  event_id: string | null;
  submitted_at: string | null;
  next_poll_at: string | null;
  polls: number;
  /** Times the call was sent (a resubmission after Apple left the event PENDING for too long adds one). */
  submissions: number;
  /** Consecutive Apple calls of this batch that failed (5xx after retries, network). */
  call_failures: number;
  completed_count: number;
  failed_count: number;
  error_message: string | null;
}

/** One item Apple did not do, with its error number. */
export interface LicenseOperationFailureRow {
  operation_id: string;
  batch_index: number;
  seq: number;
  adam_id: string | null;
  pricing_param: string | null;
  serial_number: string | null;
  client_user_id: string | null;
  error_number: number | null;
  error_message: string;
}

export type LicenseOperationTables = {
  license_operations: LicenseOperationRow;
  license_operation_batches: LicenseOperationBatchRow;
  license_operation_failures: LicenseOperationFailureRow;
};

export type LicenseOperationsDatabase = Kysely<DatabaseSchema & LicenseOperationTables>;

/** The database with the license-operation tables typed. */
export function licenseOperationsDatabaseOf(db: VppdDatabase): LicenseOperationsDatabase {
  return db.withTables<LicenseOperationTables>();
}
