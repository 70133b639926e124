import { sql, type Transaction } from 'kysely';
import type { DatabaseSchema } from '../database-schema.js';
import type { EventInsertRow } from '../engine.js';

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
  const values = sql.join(
    rows.map(
      (r, i) =>
        sql`(${i}::int, ${r.tenant_id}::text, ${r.token_id ?? null}::text, ${r.type}::text, ${r.payload}::text, ${r.created_at}::text)`,
    ),
  );
  const result = await sql`with heads as (
      insert into event_heads (tenant_id, appended_at)
      select h.t, ${createdAt} from unnest(${[...tenantIds]}::text[]) with ordinality as h(t, i)
      order by h.i
      on conflict (tenant_id) do update set appended_at = excluded.appended_at
      returning tenant_id
    )
    insert into events (tenant_id, token_id, type, payload, created_at)
    select v.tenant_id, v.token_id, v.type, v.payload, v.created_at
    from (values ${values}) as v(i, tenant_id, token_id, type, payload, created_at)
    where (select count(*) from heads) = ${tenantIds.length}
    order by v.i`.execute(trx);
  // The condition holds by construction (an upsert returns each of its rows); should it ever not, no
  // event may go missing silently.
  if (Number(result.numAffectedRows ?? -1) !== rows.length)
    throw new Error(`appending ${rows.length} events inserted ${String(result.numAffectedRows)}`);
}
