import { type Kysely, sql, type Transaction } from 'kysely';
import { errors } from '../../domain/errors.js';
import type { DatabaseSchema } from '../database-schema.js';
import type { BulkColumnType, StoredTable } from '../engine.js';

/**
 * The tables of the connection's current schema from `pg_catalog`: columns in order, identity (or
 * `nextval` default) columns as serial keys, the primary key or else the first unique index (by
 * name) over not-null columns only, and the tables foreign keys reference.
 */
export async function describePostgresTables(db: Kysely<unknown>): Promise<readonly StoredTable[]> {
  const { rows: columns } = await sql<{
    table: string;
    column: string;
    type: string;
    not_null: boolean;
    serial: boolean;
  }>`
    select c.relname as table, a.attname as column, format_type(a.atttypid, a.atttypmod) as type,
      a.attnotnull as not_null,
      (a.attidentity <> '' or coalesce(pg_get_expr(d.adbin, d.adrelid) like 'nextval(%', false)) as serial
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
    where n.nspname = current_schema() and c.relkind in ('r', 'p')
    order by c.relname, a.attnum`.execute(db);
  const { rows: keys } = await sql<{ table: string; primary: boolean; columns: string[] }>`
    select c.relname as table, i.indisprimary as primary,
      (select array_agg(a.attname::text order by k.ord)
         from unnest(i.indkey::int2[]) with ordinality as k(attnum, ord)
         join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum) as columns
    from pg_index i
    join pg_class c on c.oid = i.indrelid
    join pg_class ic on ic.oid = i.indexrelid
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = current_schema() and i.indisunique and i.indpred is null
      and i.indexprs is null
    order by c.relname, i.indisprimary desc, ic.relname`.execute(db);
  const { rows: references } = await sql<{ table: string; references: string }>`
    select distinct c.relname as table, r.relname as references
    from pg_constraint con
    join pg_class c on c.oid = con.conrelid
    join pg_class r on r.oid = con.confrelid
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = current_schema() and con.contype = 'f'
    order by 1, 2`.execute(db);

  const tables = new Map<
    string,
    { columns: StoredTable['columns'][number][]; key: string[]; references: string[] }
  >();
  for (const c of columns) {
    let table = tables.get(c.table);
    if (table === undefined) {
      table = { columns: [], key: [], references: [] };
      tables.set(c.table, table);
    }
    table.columns.push({
      name: c.column,
      type: columnType(c.table, c.column, c.type),
      notNull: c.not_null,
      serial: c.serial,
    });
  }
  for (const k of keys) {
    const table = tables.get(k.table);
    if (table === undefined || table.key.length > 0) continue;
    const notNull = new Set(table.columns.filter((c) => c.notNull).map((c) => c.name));
    if (k.columns.every((name) => notNull.has(name))) table.key = k.columns;
  }
  for (const r of references) tables.get(r.table)?.references.push(r.references);
  return [...tables].map(([name, t]) => ({ name, ...t }));
}

function columnType(table: string, column: string, type: string): BulkColumnType {
  switch (type) {
    case 'text':
      return 'text';
    case 'integer':
      return 'integer';
    case 'bigint':
      return 'bigint';
    case 'bytea':
      return 'blob';
    default:
      // The migrator's bookkeeping columns are varchar(255).
      if (type.startsWith('character varying')) return 'text';
      throw errors.notSupported(
        `column ${table}.${column} has type ${type}, which no vppd column type spells`,
      );
  }
}

/** Moves the identity (or serial) sequence of `table.column` past the largest stored key. */
export async function resetPostgresSerialKey(
  trx: Transaction<DatabaseSchema>,
  table: string,
  column: string,
): Promise<void> {
  const quotedTable = `"${table.replaceAll('"', '""')}"`;
  const quotedColumn = `"${column.replaceAll('"', '""')}"`;
  await sql`select setval(pg_get_serial_sequence(${quotedTable}, ${column}),
      coalesce((select max(${sql.raw(quotedColumn)}) from ${sql.raw(quotedTable)}), 0) + 1, false)`.execute(
    trx,
  );
}
