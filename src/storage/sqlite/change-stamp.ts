import type Database from 'better-sqlite3';
import { CompiledQuery, type Kysely } from 'kysely';

/**
 * A tenant's change stamp on SQLite: its newest event's `seq` (0 before any), read with a prepared
 * statement run synchronously outside any transaction or stream of the connection (the latest commit;
 * one index seek, a few µs; not through Kysely's executor, which would queue the read behind Kysely's
 * own work with a few promises each time), and through Kysely inside one (which waits for it to end:
 * a transaction or an open stream holds a snapshot that could be older than a commit the caller saw). Prepared on first use: the table exists only once the migrations ran. On a
 * file, `connection` is the engine's read connection (sqlite/dialect.ts, `createSqliteReadDialect`),
 * which runs no transaction: the read never waits for one of this process's writes, and it sees only
 * committed events, as the data read after it on that connection sees only committed rows.
 */
export function createSqliteTenantStampReader(
  db: Kysely<unknown>,
  connectionOf: () => Database.Database,
  options: { readonly withoutProgress?: boolean } = {},
): (tenantId: string) => number | Promise<number> {
  // Without progress: the newest other event, walking the (tenant_id, seq) index down from the top
  // past the progress notes on top of it (at most one a second per running sync of the tenant).
  const text = options.withoutProgress
    ? "select coalesce((select seq from events where tenant_id = ? and type <> 'syncProgressed' order by seq desc limit 1), 0) as s"
    : 'select coalesce(max(seq), 0) as s from events where tenant_id = ?';
  const readThroughKysely = async (tenantId: string) => {
    const { rows } = await db.executeQuery<{ s: number | bigint }>(CompiledQuery.raw(text, [tenantId]));
    return Number(rows[0]?.s ?? 0);
  };
  let statement: Database.Statement | undefined;
  let probe: Database.Statement | undefined;
  return (tenantId) => {
    const connection = connectionOf();
    if (connection.inTransaction) return readThroughKysely(tenantId);
    statement ??= connection.prepare(text).pluck();
    probe ??= connection.prepare('select 1').pluck();
    try {
      // better-sqlite3 refuses `run()` while a statement is being iterated (a Kysely stream).
      probe.run();
    } catch {
      return readThroughKysely(tenantId);
    }
    return Number((statement.get(tenantId) as number | bigint | undefined) ?? 0);
  };
}

/**
 * Several tenants' stamps with `readOne` (the reader above), in the order given: synchronous like it
 * outside a transaction or stream (a few µs per tenant, no round trip to save), through Kysely inside one.
 */
export function createSqliteTenantStampsReader(
  readOne: (tenantId: string) => number | Promise<number>,
): (tenantIds: readonly string[]) => readonly number[] | Promise<readonly number[]> {
  return (tenantIds) => {
    const seqs = tenantIds.map(readOne);
    return seqs.every((s) => typeof s === 'number') ? (seqs as number[]) : Promise.all(seqs);
  };
}
