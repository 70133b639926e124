import { type Kysely, sql } from 'kysely';
import { errors } from '../../domain/errors.js';
import type { BulkColumnType, StoredTable } from '../engine.js';

/**
 * The tables of a SQLite database from `sqlite_master` and the `pragma_*` table functions, SQLite's
 * own ones (`sqlite_sequence`, `sqlite_stat1`) left out. A serial key is the `integer primary key
 * autoincrement` column (the rowid alias sqliteDdl.serialKey writes).
 */
export async function describeSqliteTables(db: Kysely<unknown>): Promise<readonly StoredTable[]> {
  const { rows: tables } = await sql<{ name: string; sql: string | null }>`
    select name, sql from sqlite_master
    where type = 'table' and name not like 'sqlite\\_%' escape '\\'
    order by name`.execute(db);
  const described: StoredTable[] = [];
  for (const table of tables) {
    const { rows: columns } = await sql<{ name: string; type: string; notnull: number; pk: number }>`
      select name, type, "notnull", pk from pragma_table_info(${table.name}) order by cid`.execute(db);
    const autoincrement = /\bautoincrement\b/i.test(table.sql ?? '');
    const primary = columns
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name);
    const notNull = new Set(columns.filter((c) => c.notnull === 1 || c.pk > 0).map((c) => c.name));
    let key = primary;
    if (key.length === 0) {
      const { rows: indexes } = await sql<{ name: string }>`
        select name from pragma_index_list(${table.name}) where "unique" = 1 and partial = 0
        order by name`.execute(db);
      for (const index of indexes) {
        const { rows: parts } = await sql<{ name: string | null }>`
          select name from pragma_index_info(${index.name}) order by seqno`.execute(db);
        const names = parts.map((p) => p.name);
        if (names.every((n): n is string => n !== null && notNull.has(n))) {
          key = names;
          break;
        }
      }
    }
    const { rows: references } = await sql<{ table: string }>`
      select distinct "table" from pragma_foreign_key_list(${table.name}) order by "table"`.execute(db);
    described.push({
      name: table.name,
      columns: columns.map((c) => ({
        name: c.name,
        type: columnType(table.name, c.name, c.type),
        notNull: notNull.has(c.name),
        serial: autoincrement && c.pk > 0 && primary.length === 1,
      })),
      key,
      references: references.map((r) => r.table),
    });
  }
  return described;
}

/** The value type of a declared column type, by SQLite's affinity rules (sqliteDdl's spellings). */
function columnType(table: string, column: string, declared: string): BulkColumnType {
  const type = declared.toLowerCase();
  if (type === 'bigint') return 'bigint';
  if (type.includes('int')) return 'integer';
  if (type === 'blob') return 'blob';
  // `text`, and the `varchar(255)` of the migrator's bookkeeping (SQLite's text affinity).
  if (type === 'text' || type.includes('char')) return 'text';
  throw errors.notSupported(
    `column ${table}.${column} has type ${declared}, which no vppd column type spells`,
  );
}
