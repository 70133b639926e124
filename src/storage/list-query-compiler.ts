import { type RawBuilder, type SelectQueryBuilder, type SqlBool, sql } from 'kysely';
import { errors } from '../domain/errors.js';
import type { GraphEnum } from '../domain/graph-enum.js';
import {
  type ComparisonOperator,
  type FilterExpression,
  type FilterLiteral,
  type ListQuery,
  type StringFunction,
  typeProperty,
} from '../domain/list-query.js';

// Compiles the neutral list query (domain/list-query.ts) to Kysely, relying on the storage conventions
// of database-schema.ts: enums as their integer values, booleans as integer 0/1, dates as fixed-width
// ISO-8601 UTC text `YYYY-MM-DDTHH:mm:ss.sssZ` (text order = time order), strings and GUIDs
// (lower-case) as text. The SQL is portable (SQLite ≥ 3.30 and PostgreSQL):
// - `eq`/`ne`/`in` on strings are exact, case-sensitive comparisons (Graph's behaviour for `eq`);
// - startswith/endswith/contains are case-insensitive: `lower(col) like lower(?) escape '\'` with `%`,
//   `_` and `\` of the literal escaped; lower() folds ASCII only on SQLite and under PostgreSQL's "C"
//   collation, and by the collation's locale otherwise (both sides always fold alike);
// - OData null semantics are kept with two-valued SQL: `not` is pushed down to the comparisons, and a
//   comparison that OData makes true for a null property (`ne`, negated `gt`, …) adds `or col is null`;
// - `gt`/`lt` on strings and the order of string keys follow the column's collation (binary on SQLite;
//   declare PostgreSQL text columns `collate "C"` to get the same order there);
// - nulls sort first ascending and last descending (OData), written explicitly for both engines.

/** How a property is stored in its column. */
export type ListColumnEncoding =
  | { readonly kind: 'id' }
  | { readonly kind: 'text' }
  | { readonly kind: 'integer' }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'dateTime' }
  | { readonly kind: 'enum'; readonly enum: GraphEnum<string> }
  | { readonly kind: 'stringCollection' };

/** The column of one wire property. */
export interface ListColumn {
  /** Column name, optionally qualified (`t.display_name`). */
  readonly column: string;
  readonly encoding: ListColumnEncoding;
  /** A computed value used instead of the column (an item's concrete type, for `isof`). */
  readonly expression?: RawBuilder<unknown>;
}

/** The SQL of a column: its computed expression or a reference to it. */
function refOf(column: ListColumn): RawBuilder<unknown> | ReturnType<typeof sql.ref> {
  return column.expression ?? sql.ref(column.column);
}

/** Wire property name → column: the only place the compiler learns column names. */
export type ListColumns = Readonly<Record<string, ListColumn>>;

export interface ListQueryCompileOptions {
  /** The primary-key column, appended as the last sort key so pages never overlap or skip rows. */
  readonly primaryKey: string;
  /** Columns after the primary key that complete a key of several columns (ascending). */
  readonly keyRest?: readonly string[];
  /** The order without `$orderby` (ascending columns; default: the key). */
  readonly defaultOrder?: readonly string[];
}

/** SQL that is always true / always false (portable: no boolean literals on older SQLite). */
const alwaysTrue = sql<SqlBool>`1 = 1`;
const alwaysFalse = sql<SqlBool>`1 = 0`;

/** Compiles a filter to a WHERE condition. Throws VppdError(internal) if the AST does not fit `columns`. */
export function compileFilter(filter: FilterExpression, columns: ListColumns): RawBuilder<SqlBool> {
  return compileNode(filter, false, columns);
}

function compileNode(node: FilterExpression, negated: boolean, columns: ListColumns): RawBuilder<SqlBool> {
  switch (node.kind) {
    case 'and':
    case 'or': {
      // De Morgan: not (a and b) = not a or not b, so `not` never reaches SQL's three-valued logic.
      const kind = negated ? (node.kind === 'and' ? 'or' : 'and') : node.kind;
      const parts = node.operands.map((operand) => compileNode(operand, negated, columns));
      return sql<SqlBool>`(${sql.join(parts, kind === 'and' ? sql` and ` : sql` or `)})`;
    }
    case 'not':
      return compileNode(node.operand, !negated, columns);
    case 'compare':
      return compileCompare(columnOf(node.property, columns), node.operator, node.value, negated);
    case 'in':
      return compileIn(columnOf(node.property, columns), node.values, negated);
    case 'stringFunction':
      return compileStringFunction(columnOf(node.property, columns), node.function, node.value, negated);
    case 'isOf':
      // The concrete type is never null: `isof` is `type in (...)`, and its negation `not in`.
      return compileIn(
        columnOf(typeProperty, columns),
        node.typeNames.map((value) => ({ type: 'string', value })),
        negated,
      );
    default: {
      const unreachable: never = node;
      throw errors.internal(`unknown filter node ${JSON.stringify(unreachable)}`);
    }
  }
}

const sqlOperators: Record<ComparisonOperator, string> = {
  eq: '=',
  ne: '<>',
  gt: '>',
  ge: '>=',
  lt: '<',
  le: '<=',
};

const complement: Record<ComparisonOperator, ComparisonOperator> = {
  eq: 'ne',
  ne: 'eq',
  gt: 'le',
  ge: 'lt',
  lt: 'ge',
  le: 'gt',
};

function compileCompare(
  column: ListColumn,
  operator: ComparisonOperator,
  literal: FilterLiteral,
  negated: boolean,
): RawBuilder<SqlBool> {
  const ref = refOf(column);
  if (literal.type === 'null') {
    const isNull = (operator === 'eq') !== negated;
    return isNull ? sql<SqlBool>`${ref} is null` : sql<SqlBool>`${ref} is not null`;
  }
  let op = operator;
  let value = literal;
  if (literal.type === 'dateTime' && !literal.exact) {
    // The instant lies strictly inside (value, value + 1 ms) and stored times are whole milliseconds:
    // nothing equals it, `> t` is `> value`, `< t` is `<= value`.
    if (op === 'eq' || op === 'ne') return (op === 'ne') !== negated ? alwaysTrue : alwaysFalse;
    op = op === 'gt' || op === 'ge' ? 'gt' : 'le';
    value = { type: 'dateTime', value: literal.value, exact: true };
  }
  // OData: `null ne v` is true and every other comparison with null is false; negation flips both.
  const orNull = (op === 'ne') !== negated;
  const effective = negated ? complement[op] : op;
  const comparison = sql<SqlBool>`${ref} ${sql.raw(sqlOperators[effective])} ${encodeLiteral(column, value)}`;
  return orNull ? sql<SqlBool>`(${comparison} or ${ref} is null)` : comparison;
}

function compileIn(
  column: ListColumn,
  values: readonly FilterLiteral[],
  negated: boolean,
): RawBuilder<SqlBool> {
  const ref = refOf(column);
  const hasNull = values.some((v) => v.type === 'null');
  // A date more precise than the stored milliseconds can equal no row.
  const candidates = values.filter((v) => v.type !== 'null' && !(v.type === 'dateTime' && !v.exact));
  const encoded = candidates.map((v) => encodeLiteral(column, v));
  const list = encoded.length > 0 ? sql.join(encoded) : undefined;
  if (!negated) {
    const parts: RawBuilder<SqlBool>[] = [];
    if (list) parts.push(sql<SqlBool>`${ref} in (${list})`);
    if (hasNull) parts.push(sql<SqlBool>`${ref} is null`);
    if (parts.length === 0) return alwaysFalse;
    return parts.length === 1
      ? (parts[0] as RawBuilder<SqlBool>)
      : sql<SqlBool>`(${sql.join(parts, sql` or `)})`;
  }
  if (!list) return hasNull ? sql<SqlBool>`${ref} is not null` : alwaysTrue;
  return hasNull
    ? sql<SqlBool>`(${ref} not in (${list}) and ${ref} is not null)`
    : sql<SqlBool>`(${ref} not in (${list}) or ${ref} is null)`;
}

/** Escapes LIKE wildcards so the literal matches itself (escape character `\`). */
export function escapeLikePattern(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function compileStringFunction(
  column: ListColumn,
  fn: StringFunction,
  text: string,
  negated: boolean,
): RawBuilder<SqlBool> {
  if (column.encoding.kind !== 'text' && column.encoding.kind !== 'id') {
    throw errors.internal(`${fn} on the non-text column ${column.column}`);
  }
  const escaped = escapeLikePattern(text);
  const pattern = fn === 'startswith' ? `${escaped}%` : fn === 'endswith' ? `%${escaped}` : `%${escaped}%`;
  const ref = refOf(column);
  // lower() on both sides makes the match case-insensitive. On PostgreSQL lower() folds by the collation
  // of its argument, so the pattern borrows the column's collation (`|| substr(col, 1, 0)` appends '')
  // and both sides fold alike whatever the column declares ("C" folds ASCII only, like SQLite).
  // cast(… as text) keeps PostgreSQL from guessing the parameter's type.
  const folded = sql`lower(cast(${pattern} as text) || substr(${ref}, 1, 0))`;
  return negated
    ? sql<SqlBool>`(lower(${ref}) not like ${folded} escape '\\' or ${ref} is null)`
    : sql<SqlBool>`lower(${ref}) like ${folded} escape '\\'`;
}

/** The stored form of a literal for a column; a literal of another type is a bug upstream (internal). */
function encodeLiteral(column: ListColumn, literal: FilterLiteral): RawBuilder<unknown> {
  const mismatch = (): never => {
    throw errors.internal(
      `a ${literal.type} literal does not fit column ${column.column} (${column.encoding.kind})`,
    );
  };
  const encoding = column.encoding;
  switch (encoding.kind) {
    case 'id':
    case 'text':
      return literal.type === 'string' ? sql.val(literal.value) : mismatch();
    case 'integer':
      return literal.type === 'number' && Number.isInteger(literal.value)
        ? sql.val(literal.value)
        : mismatch();
    case 'boolean':
      return literal.type === 'boolean' ? sql.val(literal.value ? 1 : 0) : mismatch();
    case 'dateTime':
      return literal.type === 'dateTime' ? sql.val(literal.value) : mismatch();
    case 'enum':
      return literal.type === 'enum' && literal.enum === encoding.enum.name
        ? sql.val(encoding.enum.toValue(literal.member))
        : mismatch();
    case 'stringCollection':
      return mismatch();
    default: {
      const unreachable: never = encoding;
      throw errors.internal(`unknown column encoding ${JSON.stringify(unreachable)}`);
    }
  }
}

function columnOf(property: string, columns: ListColumns): ListColumn {
  const column = Object.hasOwn(columns, property) ? columns[property] : undefined;
  if (column === undefined) throw errors.internal(`no column for the list property '${property}'`);
  return column;
}

/** Adds the `$filter` condition (if any) to a query. */
export function applyListFilter<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  filter: FilterExpression | undefined,
  columns: ListColumns,
): SelectQueryBuilder<DB, TB, O> {
  return filter === undefined ? query : query.where(compileFilter(filter, columns));
}

/** Adds the `$orderby` keys, then the primary key (unless already a key) so the order is total. */
export function applyListOrder<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  list: Pick<ListQuery, 'orderBy'>,
  columns: ListColumns,
  options: ListQueryCompileOptions,
): SelectQueryBuilder<DB, TB, O> {
  let ordered = query;
  let hasPrimaryKey = false;
  for (const key of list.orderBy) {
    const column = columnOf(key.property, columns);
    if (column.encoding.kind === 'stringCollection') {
      throw errors.internal(`ordering by the collection column ${column.column}`);
    }
    hasPrimaryKey ||= column.column === options.primaryKey;
    const ref = refOf(column);
    ordered = ordered.orderBy(
      key.direction === 'asc' ? sql`${ref} asc nulls first` : sql`${ref} desc nulls last`,
    );
  }
  if (list.orderBy.length === 0 && options.defaultOrder !== undefined) {
    for (const column of options.defaultOrder) ordered = ordered.orderBy(sql`${sql.ref(column)} asc`);
    hasPrimaryKey ||= options.defaultOrder.includes(options.primaryKey);
  }
  if (!hasPrimaryKey) ordered = ordered.orderBy(sql`${sql.ref(options.primaryKey)} asc`);
  for (const column of options.keyRest ?? []) ordered = ordered.orderBy(sql`${sql.ref(column)} asc`);
  return ordered;
}

/**
 * Applies the whole list query: filter, order (primary key last), `offset`, and a limit of one row
 * more than the page so the caller learns whether another page exists (`$top=0`: limit 0).
 */
export function applyListQuery<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  list: Pick<ListQuery, 'filter' | 'orderBy' | 'offset' | 'pageSize'>,
  columns: ListColumns,
  options: ListQueryCompileOptions,
): SelectQueryBuilder<DB, TB, O> {
  const filtered = applyListFilter(query, list.filter, columns);
  return applyListOrder(filtered, list, columns, options)
    .limit(list.pageSize === 0 ? 0 : list.pageSize + 1)
    .offset(list.offset);
}

/**
 * One page of a list: its rows and, when more rows follow, the offset of the next page. Every list the API
 * serves by offset (vppTokens, mobileApps) is paged through {@link fetchListPage}.
 */
export interface ListPage<O> {
  readonly rows: O[];
  readonly nextOffset?: number;
}

/** Runs the list query and returns one page (see {@link applyListQuery}). */
export async function fetchListPage<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  list: Pick<ListQuery, 'filter' | 'orderBy' | 'offset' | 'pageSize'>,
  columns: ListColumns,
  options: ListQueryCompileOptions,
): Promise<ListPage<O>> {
  if (list.pageSize === 0) return { rows: [] };
  const rows = await applyListQuery(query, list, columns, options).execute();
  if (rows.length <= list.pageSize) return { rows };
  return { rows: rows.slice(0, list.pageSize), nextOffset: list.offset + list.pageSize };
}

/**
 * Counts the rows matching the filter (`$count=true`, `/$count`): the query's own selection, order,
 * limit and offset are dropped; its FROM and WHERE (tenant scoping) stay.
 */
export async function countListRows<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  list: Pick<ListQuery, 'filter'>,
  columns: ListColumns,
): Promise<number> {
  const counted = applyListFilter(query, list.filter, columns)
    .clearSelect()
    .clearOrderBy()
    .clearLimit()
    .clearOffset()
    .select(sql<number | string | bigint>`count(*)`.as('count'));
  const row = (await counted.executeTakeFirst()) as { count: number | string | bigint } | undefined;
  // PostgreSQL returns count(*) as a bigint string.
  return row === undefined ? 0 : Number(row.count);
}
