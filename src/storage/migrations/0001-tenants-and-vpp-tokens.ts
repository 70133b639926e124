import type { Kysely, Migration } from 'kysely';
import type { EngineDdl } from '../engine.js';

// Column types come from the engine's DDL (storage/engine.ts, EngineDdl): the same migration runs on
// SQLite and PostgreSQL, and writes on SQLite exactly the DDL it wrote before the engines were split.
/** Tenants, VPP tokens (sToken encrypted) and their action results. */
export const tenantsAndVppTokens = (ddl: EngineDdl): Migration => ({
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable('tenants')
      .addColumn('id', ddl.text, (c) => c.primaryKey())
      .addColumn('created_at', ddl.timestamp, (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('vpp_tokens')
      .addColumn('id', ddl.text, (c) => c.primaryKey())
      .addColumn('tenant_id', ddl.text, (c) => c.notNull().references('tenants.id').onDelete('cascade'))
      .addColumn('organization_name', ddl.text)
      .addColumn('vpp_token_account_type', 'integer', (c) => c.notNull())
      .addColumn('apple_id', ddl.text)
      .addColumn('expiration_date_time', ddl.timestamp, (c) => c.notNull())
      .addColumn('last_sync_date_time', ddl.timestamp, (c) => c.notNull())
      .addColumn('last_modified_date_time', ddl.timestamp, (c) => c.notNull())
      .addColumn('state', 'integer', (c) => c.notNull())
      .addColumn('last_sync_status', 'integer', (c) => c.notNull())
      .addColumn('automatically_update_apps', ddl.boolean, (c) => c.notNull())
      .addColumn('country_or_region', ddl.text)
      .addColumn('data_sharing_consent_granted', ddl.boolean, (c) => c.notNull())
      .addColumn('display_name', ddl.text)
      .addColumn('location_name', ddl.text)
      .addColumn('claim_token_management_from_external_mdm', ddl.boolean, (c) => c.notNull())
      .addColumn('role_scope_tag_ids', ddl.text, (c) => c.notNull())
      .addColumn('apple_device_app_delivery_protocol_type', 'integer', (c) => c.notNull())
      .addColumn('stoken_ciphertext', ddl.text, (c) => c.notNull())
      .addColumn('stoken_iv', ddl.text, (c) => c.notNull())
      .addColumn('stoken_tag', ddl.text, (c) => c.notNull())
      .addColumn('stoken_fingerprint', ddl.text, (c) => c.notNull())
      .addColumn('created_at', ddl.timestamp, (c) => c.notNull())
      // Tenant-scoped lookups and the composite key child tables reference.
      .addUniqueConstraint('vpp_tokens_tenant_id_id_key', ['tenant_id', 'id'])
      // "The same sToken twice in a tenant" is a conflict, enforced by the database.
      .addUniqueConstraint('vpp_tokens_tenant_fingerprint_key', ['tenant_id', 'stoken_fingerprint'])
      .execute();

    await db.schema
      .createTable('vpp_token_action_results')
      .addColumn('tenant_id', ddl.text, (c) => c.notNull())
      .addColumn('token_id', ddl.text, (c) => c.notNull())
      .addColumn('action_name', ddl.text, (c) => c.notNull())
      .addColumn('action_state', 'integer', (c) => c.notNull())
      .addColumn('start_date_time', ddl.timestamp, (c) => c.notNull())
      .addColumn('last_updated_date_time', ddl.timestamp, (c) => c.notNull())
      .addColumn('action_failure_reason', 'integer')
      .addColumn('total_licenses_count', 'integer')
      .addColumn('failed_licenses_count', 'integer')
      .addColumn('position', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('vpp_token_action_results_pkey', ['token_id', 'action_name'])
      .addForeignKeyConstraint(
        'vpp_token_action_results_token_fkey',
        ['tenant_id', 'token_id'],
        'vpp_tokens',
        ['tenant_id', 'id'],
        (fk) => fk.onDelete('cascade'),
      )
      .execute();
  },
});
