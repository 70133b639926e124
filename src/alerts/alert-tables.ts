import type { Kysely } from 'kysely';
import type { DatabaseSchema } from '../storage/database-schema.js';
import type { VppdDatabase } from '../storage/open-database.js';

/** A webhook endpoint of a tenant (`alert_webhooks`); the secret is sealed with the token cipher. */
export interface AlertWebhookRow {
  id: string;
  tenant_id: string;
  url: string;
  /** JSON array of `AlertEventType`. */
  events: string;
  secret_ciphertext: string;
  secret_iv: string;
  secret_tag: string;
  created_at: string;
}

/** Delivery state of an outbox row. */
export type AlertOutboxStatus = 'pending' | 'delivered' | 'failed';

/** One alert for one endpoint (`alert_outbox`), delivered with retries until 2xx or its max age. */
export interface AlertOutboxRow {
  id: string;
  event_id: string;
  tenant_id: string;
  webhook_id: string;
  event_type: string;
  token_id: string | null;
  /** The exact JSON body sent (and signed). */
  payload: string;
  status: AlertOutboxStatus;
  attempts: number;
  created_at: string;
  next_attempt_at: string;
  lease_owner: string | null;
  lease_expires_at: string | null;
  delivered_at: string | null;
  last_status: number | null;
  last_error: string | null;
}

/** A finished sync run the scanner has turned into events. */
export interface AlertScannedRunRow {
  run_id: string;
  tenant_id: string;
  token_id: string;
  finished_at: string;
}

/** The token state last alerted on (`state` is the vppTokenState value); `seq` numbers stateChanged events. */
export interface AlertTokenStateRow {
  token_id: string;
  tenant_id: string;
  state: number;
  seq: number;
  updated_at: string;
}

/** The tables of migration 0005 (a type alias: Kysely's `withTables` needs an index-compatible type). */
export type AlertTables = {
  alert_webhooks: AlertWebhookRow;
  alert_outbox: AlertOutboxRow;
  alert_scanned_runs: AlertScannedRunRow;
  alert_token_states: AlertTokenStateRow;
};

/** The database as the alerts subsystem sees it: vppd's schema plus its own tables. */
export type AlertsDatabase = Kysely<DatabaseSchema & AlertTables>;

/** The same handle, typed with the alert tables (the schema file of storage/ stays untouched). */
export function alertsDatabaseOf(db: VppdDatabase): AlertsDatabase {
  return db.withTables<AlertTables>();
}
