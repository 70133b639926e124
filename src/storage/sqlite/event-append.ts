import type { Transaction } from 'kysely';
import type { DatabaseSchema } from '../database-schema.js';
import type { EventInsertRow } from '../engine.js';

/**
 * `StorageEngine.appendEventRows` on SQLite: the heads, then the events. SQLite has one writer at a
 * time, so nothing waits on the heads' rows here; they are kept for what reads them (pruning, copies).
 */
export async function appendSqliteEventRows(
  trx: Transaction<DatabaseSchema>,
  tenantIds: readonly string[],
  createdAt: string,
  rows: readonly EventInsertRow[],
): Promise<void> {
  for (const tenantId of tenantIds) {
    await trx
      .insertInto('event_heads')
      .values({ tenant_id: tenantId, appended_at: createdAt })
      .onConflict((oc) => oc.column('tenant_id').doUpdateSet({ appended_at: createdAt }))
      .execute();
  }
  await trx
    .insertInto('events')
    .values([...rows])
    .execute();
}
