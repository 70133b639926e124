import type { Kysely, Migration } from 'kysely';
import type { EngineDdl } from '../engine.js';

// Column types come from the engine's DDL (storage/engine.ts, EngineDdl): the same migration runs on
// SQLite and PostgreSQL.
/**
 * Issue 15: license operations (associate / disassociate) as durable jobs.
 * - `license_operations`: one request of a caller: what to do (assets, holders), its status and counts,
 *   the lease of the worker running it, when it next has something to do, and the caller's
 *   `Idempotency-Key` (unique per tenant) with a fingerprint of the request it was first used for.
 * - `license_operation_batches`: the Apple-sized calls it was split into, each with Apple's `eventId`,
 *   when it was submitted and when it may be polled next.
 * - `license_operation_failures`: per-item failures with Apple's error number and message.
 */
export const licenseOperations = (ddl: EngineDdl): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('license_operations')
      .addColumn('id', ddl.text, (c) => c.primaryKey())
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('token_id', ddl.text, (c) => c.notNull())
      .addColumn('kind', ddl.text, (c) => c.notNull())
      .addColumn('source', ddl.text, (c) => c.notNull())
      .addColumn('status', ddl.text, (c) => c.notNull())
      .addColumn('holder_kind', ddl.text, (c) => c.notNull())
      .addColumn('assets', ddl.text, (c) => c.notNull())
      .addColumn('holders', ddl.text, (c) => c.notNull())
      .addColumn('requested_count', 'integer', (c) => c.notNull())
      .addColumn('completed_count', 'integer', (c) => c.notNull())
      .addColumn('failed_count', 'integer', (c) => c.notNull())
      .addColumn('idempotency_key', ddl.text)
      .addColumn('request_fingerprint', ddl.text)
      .addColumn('created_at', ddl.timestamp, (c) => c.notNull())
      .addColumn('updated_at', ddl.timestamp, (c) => c.notNull())
      .addColumn('finished_at', ddl.timestamp)
      .addColumn('next_action_at', ddl.timestamp)
      .addColumn('lease_owner', ddl.text)
      .addColumn('lease_expires_at', ddl.timestamp)
      .addColumn('claims', 'integer', (c) => c.notNull())
      .addColumn('snapshot_update', ddl.text)
      .addColumn('error_message', ddl.text)
      .addUniqueConstraint('license_operations_idempotency_key', ['tenant_id', 'idempotency_key'])
      .addForeignKeyConstraint(
        'license_operations_token_fkey',
        ['tenant_id', 'token_id'],
        'vpp_tokens',
        ['tenant_id', 'id'],
        (fk) => fk.onDelete('cascade'),
      )
      .execute();
    await db.schema
      .createIndex('license_operations_tenant_created_idx')
      .on('license_operations')
      .columns(['tenant_id', 'created_at'])
      .execute();
    await db.schema
      .createIndex('license_operations_due_idx')
      .on('license_operations')
      .columns(['next_action_at'])
      .execute();

    await db.schema
      .createTable('license_operation_batches')
      .addColumn('operation_id', ddl.text, (c) =>
        c.notNull().references('license_operations.id').onDelete('cascade'),
      )
      .addColumn('batch_index', 'integer', (c) => c.notNull())
      .addColumn('assets', ddl.text, (c) => c.notNull())
      .addColumn('holders', ddl.text, (c) => c.notNull())
      .addColumn('requested_count', 'integer', (c) => c.notNull())
      .addColumn('status', ddl.text, (c) => c.notNull())
      .addColumn('event_id', ddl.text)
      .addColumn('submitted_at', ddl.timestamp)
      .addColumn('next_poll_at', ddl.timestamp)
      .addColumn('polls', 'integer', (c) => c.notNull())
      .addColumn('submissions', 'integer', (c) => c.notNull())
      .addColumn('call_failures', 'integer', (c) => c.notNull())
      .addColumn('completed_count', 'integer', (c) => c.notNull())
      .addColumn('failed_count', 'integer', (c) => c.notNull())
      .addColumn('error_message', ddl.text)
      .addPrimaryKeyConstraint('license_operation_batches_pkey', ['operation_id', 'batch_index'])
      .execute();

    await db.schema
      .createTable('license_operation_failures')
      .addColumn('operation_id', ddl.text, (c) =>
        c.notNull().references('license_operations.id').onDelete('cascade'),
      )
      .addColumn('batch_index', 'integer', (c) => c.notNull())
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('adam_id', ddl.text)
      .addColumn('pricing_param', ddl.text)
      .addColumn('serial_number', ddl.text)
      .addColumn('client_user_id', ddl.text)
      .addColumn('error_number', 'integer')
      .addColumn('error_message', ddl.text, (c) => c.notNull())
      .addPrimaryKeyConstraint('license_operation_failures_pkey', ['operation_id', 'batch_index', 'seq'])
      .execute();
  },
});
