import { type Kysely, sql } from 'kysely';

/**
 * PostgreSQL's change stamp: the current snapshot, `pg_current_snapshot()` (`xmin:xmax:xip…`). A
 * snapshot tells exactly which transaction ids below its `xmax` have ended; every transaction that
 * writes gets an id, so a commit (in any session or process) removes its id from the in-progress list
 * or raises `xmax`: the text changes, and as ended transactions never restart it never comes back.
 * Equal stamps therefore mean no write committed in between. Transactions of other databases of the
 * cluster, and rollbacks, change it too: that only costs a re-read.
 *
 * It is read through the pool outside any transaction (read committed: the latest commits), before the
 * data it guards; the data query runs later, on a newer snapshot, so it is at least as new. One round
 * trip (~0.1 ms on a local socket), shared by the calls of one event-loop turn (storage/change-stamp.ts).
 */
export function createPostgresStampReader(db: Kysely<unknown>): () => Promise<string | undefined> {
  const query = sql<{ s: string }>`select pg_current_snapshot()::text as s`;
  return async () => {
    const { rows } = await query.execute(db);
    return rows[0]?.s;
  };
}

/**
 * A tenant's change stamp on PostgreSQL: its newest event's `seq` (0 before any), one index seek. A
 * tenant's events commit in `seq` order (storage/event-store.ts takes the tenant's head row lock
 * before its `seq`), so a reader that saw `seq` n has seen every change of the tenant up to n.
 */
export function createPostgresTenantStampReader(db: Kysely<unknown>): (tenantId: string) => Promise<number> {
  return async (tenantId) => {
    const { rows } = await sql<{
      s: number | string;
    }>`select coalesce(max(seq), 0) as s from events where tenant_id = ${tenantId}`.execute(db);
    return Number(rows[0]?.s ?? 0);
  };
}

/**
 * {@link createPostgresTenantStampReader} without `syncProgressed` events: the newest other event of the
 * tenant, walking the `(tenant_id, seq)` index down past the progress notes on top (at most one a
 * second per running sync of the tenant). One round trip.
 */
export function createPostgresTenantStampWithoutProgressReader(
  db: Kysely<unknown>,
): (tenantId: string) => Promise<number> {
  return async (tenantId) => {
    const { rows } = await sql<{
      s: number | string;
    }>`select coalesce((select seq from events where tenant_id = ${tenantId} and type <> 'syncProgressed' order by seq desc limit 1), 0) as s`.execute(
      db,
    );
    return Number(rows[0]?.s ?? 0);
  };
}
