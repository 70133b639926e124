import type { Kysely, Migration } from 'kysely';
import type { EngineDdl } from '../engine.js';

// Column types come from the engine's DDL (storage/engine.ts, EngineDdl): the same migration runs on
// SQLite and PostgreSQL, and writes on SQLite exactly the DDL it wrote before the engines were split.
/**
 * Alerts (src/alerts): per-tenant webhook endpoints (secret encrypted like sTokens), the durable
 * outbox every alert is delivered from (one row per event and endpoint, retried with backoff), and
 * the scanner's bookkeeping: which finished sync runs were turned into events, and the token state
 * last alerted, so events are derived from the database and survive any restart.
 */
export const alerts = (ddl: EngineDdl): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('alert_webhooks')
      .addColumn('id', ddl.text, (c) => c.primaryKey())
      .addColumn('tenant_id', ddl.text, (c) => c.notNull().references('tenants.id').onDelete('cascade'))
      .addColumn('url', ddl.text, (c) => c.notNull())
      /** JSON array of event types the endpoint receives. */
      .addColumn('events', ddl.text, (c) => c.notNull())
      .addColumn('secret_ciphertext', ddl.text, (c) => c.notNull())
      .addColumn('secret_iv', ddl.text, (c) => c.notNull())
      .addColumn('secret_tag', ddl.text, (c) => c.notNull())
      .addColumn('created_at', ddl.timestamp, (c) => c.notNull())
      .addUniqueConstraint('alert_webhooks_tenant_id_id_key', ['tenant_id', 'id'])
      .execute();

    // One row per (endpoint, event): the unique key makes event creation idempotent, so a scanner that
    // runs twice (or in two processes) never queues an alert twice.
    await db.schema
      .createTable('alert_outbox')
      .addColumn('id', ddl.text, (c) => c.primaryKey())
      .addColumn('event_id', ddl.text, (c) => c.notNull())
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('webhook_id', ddl.text, (c) => c.notNull())
      .addColumn('event_type', ddl.text, (c) => c.notNull())
      .addColumn('token_id', ddl.text)
      .addColumn('payload', ddl.text, (c) => c.notNull())
      .addColumn('status', ddl.text, (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('created_at', ddl.timestamp, (c) => c.notNull())
      .addColumn('next_attempt_at', ddl.timestamp, (c) => c.notNull())
      .addColumn('lease_owner', ddl.text)
      .addColumn('lease_expires_at', ddl.timestamp)
      .addColumn('delivered_at', ddl.timestamp)
      .addColumn('last_status', 'integer')
      .addColumn('last_error', ddl.text)
      .addUniqueConstraint('alert_outbox_webhook_event_key', ['webhook_id', 'event_id'])
      .addForeignKeyConstraint(
        'alert_outbox_webhook_fkey',
        ['tenant_id', 'webhook_id'],
        'alert_webhooks',
        ['tenant_id', 'id'],
        (fk) => fk.onDelete('cascade'),
      )
      .execute();
    await db.schema
      .createIndex('alert_outbox_due_idx')
      .on('alert_outbox')
      .columns(['status', 'next_attempt_at'])
      .execute();

    // Finished runs already turned into events (their durations observed once, too).
    await db.schema
      .createTable('alert_scanned_runs')
      .addColumn('run_id', ddl.text, (c) => c.primaryKey())
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('token_id', ddl.text, (c) => c.notNull())
      .addColumn('finished_at', ddl.timestamp, (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('alert_scanned_runs_finished_idx')
      .on('alert_scanned_runs')
      .column('finished_at')
      .execute();

    // The scanner reads sync history by finish time (sync_runs otherwise has only (token_id, started_at)).
    await db.schema.createIndex('sync_runs_finished_idx').on('sync_runs').column('finished_at').execute();

    // The state each token had when last alerted on; `seq` numbers its stateChanged events.
    await db.schema
      .createTable('alert_token_states')
      .addColumn('token_id', ddl.text, (c) => c.primaryKey())
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('state', 'integer', (c) => c.notNull())
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('updated_at', ddl.timestamp, (c) => c.notNull())
      .addForeignKeyConstraint(
        'alert_token_states_token_fkey',
        ['tenant_id', 'token_id'],
        'vpp_tokens',
        ['tenant_id', 'id'],
        (fk) => fk.onDelete('cascade'),
      )
      .execute();
  },
});
