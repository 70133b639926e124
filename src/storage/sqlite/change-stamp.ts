import type Database from 'better-sqlite3';
import { CompiledQuery, type Kysely, sql } from 'kysely';

/**
 * SQLite's change stamp: `PRAGMA data_version` (changes when another connection, in this process or
 * another, commits) with `total_changes()` (rows this connection changed, committed or not; it never
 * goes down, a rollback included), both read on the connection every store uses. Read the stamp
 * before the data it guards: data read afterwards is then at least as new as the stamp, never older.
 *
 * The stamp is read with prepared better-sqlite3 statements run synchronously on that connection, not
 * through Kysely's executor (which queues the read behind Kysely's own work, with a few promises each
 * time). Running beside Kysely, the read may land in the middle of this process's own transaction or
 * stream. Why that is safe:
 * - Outside a transaction, each statement reads the latest commit: the stamp is exactly what a query
 *   through Kysely would read, and the data query the caller runs next (through Kysely, so after any
 *   transaction that starts meanwhile has ended) sees that state or a newer one. Equal stamps mean no
 *   change in between: a write by this connection raises `total_changes()` (even if it is rolled back
 *   later), a commit by any other connection or process changes `data_version`, and neither value
 *   ever comes back. So bytes kept under a stamp are the state any later reader of that same stamp
 *   would read; a newer state kept under an older stamp is never served again, since the stamp has
 *   moved on; a rolled-back write only costs a re-read.
 * - Inside a transaction of this connection that has written, `total_changes()` already counts its
 *   uncommitted rows and the caller's data query waits for the transaction to end: whether it commits
 *   (the stamp then stays, and the bytes read after the commit are current) or rolls back (the stamp
 *   stays too, and the bytes read after the rollback are the state without those rows, which is
 *   current), what is kept is what a later reader of the stamp would read (tested, both ways).
 * - But inside a transaction that holds a read snapshot (or while a Kysely stream holds a statement
 *   open), the connection reads `data_version` from that snapshot: it stays frozen while other
 *   processes commit (tested), so the stamp could vouch for bytes older than a commit the caller
 *   already saw. As better-sqlite3 cannot tell the two kinds of transaction apart, inside any
 *   transaction or stream the read goes through Kysely instead, which waits for it to end, as every
 *   data query must anyway.
 *
 * A read on a file database in WAL mode costs ~4 µs (the read transaction of `data_version` takes and
 * drops a lock on the WAL index with two system calls).
 */
export function createSqliteStampReader(
  db: Kysely<unknown>,
  connection: Database.Database,
): () => string | undefined | Promise<string | undefined> {
  const query = sql<{
    v: number | bigint;
    c: number | bigint;
  }>`select data_version as v, total_changes() as c from pragma_data_version`;
  const readThroughKysely = async () => {
    const { rows } = await query.execute(db);
    const row = rows[0];
    return row === undefined ? undefined : `${row.v}:${row.c}`;
  };
  // Two statements, read one after the other with nothing in between: `PRAGMA data_version` alone
  // costs a read transaction (two fcntl calls on the WAL index, ~4 µs here), a `total_changes()` next
  // to it costs nothing more; through the table-valued pragma function in one statement the pair cost
  // ~5.5 µs.
  const dataVersion = connection.prepare('PRAGMA data_version').pluck();
  // better-sqlite3 refuses `run()` while a statement is being iterated (a Kysely stream, whose open
  // statement holds a snapshot without a transaction), so running this one tells it.
  const totalChanges = connection.prepare('select total_changes()').pluck();
  return () => {
    if (connection.inTransaction) return readThroughKysely();
    try {
      totalChanges.run();
    } catch {
      return readThroughKysely();
    }
    const version = dataVersion.get() as number | bigint | undefined;
    const changes = totalChanges.get() as number | bigint | undefined;
    return version === undefined || changes === undefined ? undefined : `${version}:${changes}`;
  };
}

/**
 * A tenant's change stamp on SQLite: its newest event's `seq` (0 before any), read the same way as the
 * database stamp above: a prepared statement run synchronously outside any transaction or stream of
 * the connection (the latest commit; one index seek, a few µs), through Kysely inside one (which
 * waits for it to end). Prepared on first use: the table exists only once the migrations ran. On a
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
