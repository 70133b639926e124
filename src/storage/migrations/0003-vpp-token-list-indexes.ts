import type { Kysely, Migration } from 'kysely';

// Portable DDL only: the same migration runs on SQLite and PostgreSQL.
/**
 * Indexes for the Graph list: tokens come in creation order (then id) unless `$orderby` says
 * otherwise, and `lastSyncStatus eq '…'` is the filter monitoring asks for. Without them a list read
 * every row of the tenant and sorted it in a temporary B-tree; with them a page is an ordered range
 * scan that stops after `$top + 1` rows.
 */
export const vppTokenListIndexes: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createIndex('vpp_tokens_tenant_created_idx')
      .on('vpp_tokens')
      .columns(['tenant_id', 'created_at', 'id'])
      .execute();
    await db.schema
      .createIndex('vpp_tokens_tenant_status_created_idx')
      .on('vpp_tokens')
      .columns(['tenant_id', 'last_sync_status', 'created_at', 'id'])
      .execute();
  },
};
