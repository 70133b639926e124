import {
  type ColumnDefinitionBuilder,
  type CreateTableBuilder,
  type Kysely,
  SqliteAdapter,
  sql,
} from 'kysely';

// The only place migrations learn which engine runs them. Everything here is a storage-layout choice
// for one engine that another engine simply does not need; the data and the queries stay the same.

/** True when `db` talks to SQLite. */
export function isSqlite(db: Kysely<unknown>): boolean {
  return db.getExecutor().adapter instanceof SqliteAdapter;
}

/**
 * SQLite only: stores the table in its primary-key B-tree (`WITHOUT ROWID`) instead of a rowid table
 * plus a separate key index — one B-tree to write per row instead of two. PostgreSQL has no rowid
 * tables, so its migration omits the clause and the table is the same otherwise.
 */
export function withoutRowIdOnSqlite<T extends string, C extends string>(
  db: Kysely<unknown>,
  table: CreateTableBuilder<T, C>,
): CreateTableBuilder<T, C> {
  return isSqlite(db) ? table.modifyEnd(sql`without rowid`) : table;
}

/**
 * A surrogate integer key the database assigns and never hands out twice: `integer primary key
 * autoincrement` on SQLite (the rowid itself; AUTOINCREMENT forbids reusing the key of a deleted row),
 * `bigint generated always as identity primary key` on PostgreSQL.
 */
export function serialKeyColumn(db: Kysely<unknown>): {
  readonly type: 'integer' | 'bigint';
  readonly build: (column: ColumnDefinitionBuilder) => ColumnDefinitionBuilder;
} {
  return isSqlite(db)
    ? { type: 'integer', build: (c) => c.primaryKey().autoIncrement() }
    : { type: 'bigint', build: (c) => c.primaryKey().generatedAlwaysAsIdentity() };
}
