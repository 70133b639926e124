import { CompiledQuery, type Transaction } from 'kysely';
import type { DatabaseSchema } from '../database-schema.js';
import type { EventInsertRow } from '../engine.js';
import { type AtCommit, atCommitMarker, literal } from './at-commit.js';

/**
 * `StorageEngine.appendEventRows` on PostgreSQL, in one statement: a data-modifying `with` upserts the
 * tenants' `event_heads` rows (in the order given: sorted, so two appends never lock in opposite
 * orders), and the insert of the events takes its rows only after that: its `where` reads the
 * upsert's result through a sub-select evaluated once, before the first row (and with it the first
 * `seq`) is produced. The heads' row locks are therefore held before any `seq` is drawn, as with two
 * statements, and until the transaction ends; but a busy tenant's appends now wait for one round trip
 * and the commit instead of two round trips and the commit.
 */
export async function appendPostgresEventRows(
  trx: Transaction<DatabaseSchema>,
  tenantIds: readonly string[],
  createdAt: string,
  rows: readonly EventInsertRow[],
): Promise<void> {
  const values = rows
    .map(
      (r, i) =>
        `(${i}, ${literal(r.tenant_id)}, ${literal(r.token_id ?? null)}::text, ${literal(r.type)}, ${literal(r.payload)}, ${literal(r.created_at)})`,
    )
    .join(', ');
  const text = `with heads as (
      insert into event_heads (tenant_id, appended_at)
      select h.t, ${literal(createdAt)} from unnest(${literal(tenantIds)}) with ordinality as h(t, i)
      order by h.i
      on conflict (tenant_id) do update set appended_at = excluded.appended_at
      returning tenant_id
    )
    insert into events (tenant_id, token_id, type, payload, created_at)
    select v.tenant_id, v.token_id, v.type, v.payload, v.created_at
    from (values ${values}) as v(i, tenant_id, token_id, type, payload, created_at)
    where (select count(*) from heads) = ${tenantIds.length}
    order by v.i`;
  // Sent with the transaction's commit (at-commit.ts): the head's lock is then held only while the
  // server runs this and commits. The appends are the last writes of their transactions.
  const statement: AtCommit = { text, command: 'INSERT', rowCount: rows.length };
  const result = await trx.executeQuery(CompiledQuery.raw(atCommitMarker, [statement]));
  // The condition holds by construction (an upsert returns each of its rows); should it ever not, no
  // event may go missing silently (checked here when the statement ran at once, outside a transaction).
  if (Number(result.numAffectedRows ?? -1) !== rows.length)
    throw new Error(`appending ${rows.length} events inserted ${String(result.numAffectedRows)}`);
}
