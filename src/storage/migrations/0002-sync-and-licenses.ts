import type { Kysely, Migration } from 'kysely';
import type { EngineDdl } from '../engine.js';

// Column types come from the engine's DDL (storage/engine.ts, EngineDdl): the same migration runs on
// SQLite and PostgreSQL, and writes on SQLite exactly the DDL it wrote before the engines were split.
// The two layout choices (the serial key of license_runs, license_assignments clustered by its key)
// are the engine's too.
/**
 * The sync engine's tables: installation settings (vppd's own `mdmInfo.id`), durable sync jobs with
 * a lease, the per-token sync history (each run is also the key of the license rows it fetched), the
 * pointer to each token's current snapshot, Apple location ownership, automatic-sync schedule, and
 * the license data (assets with counts, assignments, app metadata).
 */
export const syncAndLicenses = (ddl: EngineDdl): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('vppd_settings')
      .addColumn('key', ddl.text, (c) => c.primaryKey())
      .addColumn('value', ddl.text, (c) => c.notNull())
      .execute();

    // At most one job per token (unique token_id): the database, not memory, keeps syncs single.
    await db.schema
      .createTable('sync_jobs')
      .addColumn('id', ddl.text, (c) => c.primaryKey())
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('token_id', ddl.text, (c) => c.notNull())
      .addColumn('trigger', ddl.text, (c) => c.notNull())
      .addColumn('requested_at', ddl.timestamp, (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('lease_owner', ddl.text)
      .addColumn('lease_expires_at', ddl.timestamp)
      .addColumn('heartbeat_at', ddl.timestamp)
      .addColumn('run_id', ddl.text)
      .addUniqueConstraint('sync_jobs_token_id_key', ['token_id'])
      .addForeignKeyConstraint(
        'sync_jobs_token_fkey',
        ['tenant_id', 'token_id'],
        'vpp_tokens',
        ['tenant_id', 'id'],
        (fk) => fk.onDelete('cascade'),
      )
      .execute();

    await db.schema
      .createTable('sync_runs')
      .addColumn('id', ddl.text, (c) => c.primaryKey())
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('token_id', ddl.text, (c) => c.notNull())
      .addColumn('job_id', ddl.text, (c) => c.notNull())
      .addColumn('trigger', ddl.text, (c) => c.notNull())
      .addColumn('attempt', 'integer', (c) => c.notNull())
      .addColumn('worker_id', ddl.text, (c) => c.notNull())
      .addColumn('started_at', ddl.timestamp, (c) => c.notNull())
      .addColumn('finished_at', ddl.timestamp)
      .addColumn('outcome', ddl.text, (c) => c.notNull())
      .addColumn('failure_kind', ddl.text)
      .addColumn('failure_reason', 'integer')
      .addColumn('error_message', ddl.text)
      .addColumn('apple_error_number', 'integer')
      .addColumn('http_status', 'integer')
      .addColumn('location_uid', ddl.text)
      .addColumn('version_id', ddl.text)
      .addColumn('asset_count', 'integer')
      .addColumn('assignment_count', 'integer')
      .addColumn('page_count', 'integer')
      .addColumn('staging_cleared', ddl.boolean, (c) => c.notNull())
      .addForeignKeyConstraint(
        'sync_runs_token_fkey',
        ['tenant_id', 'token_id'],
        'vpp_tokens',
        ['tenant_id', 'id'],
        (fk) => fk.onDelete('cascade'),
      )
      .execute();
    await db.schema
      .createIndex('sync_runs_token_started_idx')
      .on('sync_runs')
      .columns(['token_id', 'started_at'])
      .execute();

    // The O(1) snapshot swap: readers join license rows through this pointer.
    await db.schema
      .createTable('license_snapshots')
      .addColumn('token_id', ddl.text, (c) => c.primaryKey())
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('run_id', ddl.text, (c) => c.notNull().references('sync_runs.id').onDelete('cascade'))
      .addColumn('version_id', ddl.text, (c) => c.notNull())
      .addColumn('location_uid', ddl.text, (c) => c.notNull())
      .addColumn('committed_at', ddl.timestamp, (c) => c.notNull())
      .addColumn('asset_count', 'integer', (c) => c.notNull())
      .addColumn('assignment_count', 'integer', (c) => c.notNull())
      // Sums of Apple's counts: one "unlimited" asset alone counts 2,147,483,647, the 32-bit maximum.
      .addColumn('total_license_count', ddl.bigint, (c) => c.notNull())
      .addColumn('used_license_count', ddl.bigint, (c) => c.notNull())
      .addColumn('available_license_count', ddl.bigint, (c) => c.notNull())
      .addForeignKeyConstraint(
        'license_snapshots_token_fkey',
        ['tenant_id', 'token_id'],
        'vpp_tokens',
        ['tenant_id', 'id'],
        (fk) => fk.onDelete('cascade'),
      )
      .execute();

    // One token per Apple location per tenant (state duplicateLocationId), enforced by the database.
    await db.schema
      .createTable('token_locations')
      .addColumn('token_id', ddl.text, (c) => c.primaryKey())
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('location_uid', ddl.text, (c) => c.notNull())
      .addColumn('location_name', ddl.text)
      .addColumn('claimed_at', ddl.timestamp, (c) => c.notNull())
      .addUniqueConstraint('token_locations_tenant_location_key', ['tenant_id', 'location_uid'])
      .addForeignKeyConstraint(
        'token_locations_token_fkey',
        ['tenant_id', 'token_id'],
        'vpp_tokens',
        ['tenant_id', 'id'],
        (fk) => fk.onDelete('cascade'),
      )
      .execute();

    await db.schema
      .createTable('sync_schedule')
      .addColumn('token_id', ddl.text, (c) => c.primaryKey())
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('next_sync_at', ddl.timestamp, (c) => c.notNull())
      .addForeignKeyConstraint(
        'sync_schedule_token_fkey',
        ['tenant_id', 'token_id'],
        'vpp_tokens',
        ['tenant_id', 'id'],
        (fk) => fk.onDelete('cascade'),
      )
      .execute();
    await db.schema
      .createIndex('sync_schedule_next_idx')
      .on('sync_schedule')
      .column('next_sync_at')
      .execute();

    // License rows belong to the run that fetched them; a token's current rows are those of the run
    // named in license_snapshots. Deleting a run (or its token) deletes its rows.
    await db.schema
      .createTable('license_assets')
      .addColumn('run_id', ddl.text, (c) => c.notNull().references('sync_runs.id').onDelete('cascade'))
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('token_id', ddl.text, (c) => c.notNull())
      .addColumn('adam_id', ddl.text, (c) => c.notNull())
      .addColumn('pricing_param', ddl.text, (c) => c.notNull())
      .addColumn('product_type', ddl.text)
      // Apple's counts (2,147,483,647 = unlimited) are summed per app and token: bigint, not int4.
      .addColumn('total_count', ddl.bigint, (c) => c.notNull())
      .addColumn('assigned_count', ddl.bigint, (c) => c.notNull())
      .addColumn('available_count', ddl.bigint, (c) => c.notNull())
      .addColumn('retired_count', ddl.bigint, (c) => c.notNull())
      .addColumn('device_assignable', ddl.boolean)
      .addColumn('revocable', ddl.boolean)
      .addColumn('supported_platforms', ddl.text, (c) => c.notNull())
      .addPrimaryKeyConstraint('license_assets_pkey', ['run_id', 'adam_id', 'pricing_param'])
      .execute();
    await db.schema
      .createIndex('license_assets_adam_idx')
      .on('license_assets')
      .columns(['adam_id', 'run_id'])
      .execute();

    // A small integer per run for the assignment rows: a run id is a 36-character text GUID, repeated
    // in every one of a run's (up to millions of) assignment keys it made the rows ~2x wider.
    const runKey = ddl.serialKey;
    await db.schema
      .createTable('license_runs')
      .addColumn('run_key', runKey.type, runKey.build)
      .addColumn('run_id', ddl.text, (c) =>
        c.notNull().unique().references('sync_runs.id').onDelete('cascade'),
      )
      .execute();

    // One B-tree keyed (run, asset, Apple order): an app's licenses are one contiguous range, so
    // `mobileApps/{id}/assignedLicenses` pages and counts read only that app's rows, and a run's rows
    // delete as one range. Writers insert sorted batches (license-store.ts) so each B-tree page is
    // written about once per batch. No other index: a second one written in another order made
    // staging ~15x slower.
    await ddl
      .clusteredByPrimaryKey(
        db.schema
          .createTable('license_assignments')
          .addColumn('run_key', runKey.type, (c) =>
            c.notNull().references('license_runs.run_key').onDelete('cascade'),
          )
          .addColumn('adam_id', ddl.text, (c) => c.notNull())
          .addColumn('pricing_param', ddl.text, (c) => c.notNull())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('serial_number', ddl.text)
          .addColumn('client_user_id', ddl.text)
          .addPrimaryKeyConstraint('license_assignments_pkey', [
            'run_key',
            'adam_id',
            'pricing_param',
            'seq',
          ]),
      )
      .execute();

    // Names and bundle ids are public catalogue data, shared by every tenant's licenses of an adamId.
    await db.schema
      .createTable('license_app_metadata')
      .addColumn('adam_id', ddl.text, (c) => c.primaryKey())
      .addColumn('name', ddl.text)
      .addColumn('bundle_id', ddl.text)
      .addColumn('kind', ddl.text)
      .addColumn('artwork_url', ddl.text)
      .addColumn('device_families', ddl.text, (c) => c.notNull())
      .addColumn('platform', ddl.text, (c) => c.notNull())
      .addColumn('country', ddl.text, (c) => c.notNull())
      .addColumn('fetched_at', ddl.timestamp, (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('license_app_metadata_bundle_idx')
      .on('license_app_metadata')
      .column('bundle_id')
      .execute();
  },
});
