import type { Kysely } from 'kysely';
import { appleDeviceDeliveryProtocol, vppTokenState, vppTokenSyncStatus } from '../../src/domain/enums.js';
import type { GraphEnum } from '../../src/domain/graph-enum.js';
import type { FilterExpression, FilterLiteral, ListFields, OrderKey } from '../../src/domain/list-query.js';
import type { StorageEngineKind } from '../../src/storage/engine.js';
import type { ListColumns } from '../../src/storage/list-query-compiler.js';
import { openTestStorage, storageEngines } from './storage-engines.js';

// A made-up "widget" entity with one property of every list field type, its columns in a real SQLite
// table, rows covering the awkward cases (nulls, LIKE wildcards, quotes, case, sub-ms neighbours), and an
// independent in-memory evaluator of filters with OData semantics to check the compiled SQL against.

const protocol = appleDeviceDeliveryProtocol as GraphEnum<string>;

export const widgetTypeName = 'microsoft.graph.widget';

export const widgetFields: ListFields = {
  id: { name: 'id', type: 'guid', filterable: true, sortable: true },
  name: { name: 'name', type: 'string', filterable: true, sortable: true },
  note: { name: 'note', type: 'string', filterable: true, sortable: true },
  status: { name: 'status', type: 'enum', enum: vppTokenSyncStatus, filterable: true, sortable: true },
  state: { name: 'state', type: 'enum', enum: vppTokenState, filterable: true, sortable: true },
  protocol: { name: 'protocol', type: 'enum', enum: protocol, filterable: true, sortable: true },
  enabled: { name: 'enabled', type: 'boolean', filterable: true, sortable: true },
  archived: { name: 'archived', type: 'boolean', filterable: true, sortable: true },
  size: { name: 'size', type: 'int32', filterable: true, sortable: true },
  createdDateTime: { name: 'createdDateTime', type: 'dateTimeOffset', filterable: true, sortable: true },
  lastSeenDateTime: { name: 'lastSeenDateTime', type: 'dateTimeOffset', filterable: true, sortable: true },
  tags: { name: 'tags', type: 'collection', filterable: false, sortable: false },
  secret: { name: 'secret', type: 'string', filterable: false, sortable: false },
};

export const widgetColumns: ListColumns = {
  id: { column: 'id', encoding: { kind: 'id' } },
  name: { column: 'name', encoding: { kind: 'text' } },
  note: { column: 'note', encoding: { kind: 'text' } },
  status: { column: 'status', encoding: { kind: 'enum', enum: vppTokenSyncStatus } },
  state: { column: 'state', encoding: { kind: 'enum', enum: vppTokenState } },
  protocol: { column: 'protocol', encoding: { kind: 'enum', enum: protocol } },
  enabled: { column: 'enabled', encoding: { kind: 'boolean' } },
  archived: { column: 'archived', encoding: { kind: 'boolean' } },
  size: { column: 'size', encoding: { kind: 'integer' } },
  createdDateTime: { column: 'created_date_time', encoding: { kind: 'dateTime' } },
  lastSeenDateTime: { column: 'last_seen_date_time', encoding: { kind: 'dateTime' } },
  tags: { column: 'tags', encoding: { kind: 'stringCollection' } },
};

export interface WidgetRow {
  id: string;
  name: string;
  note: string | null;
  status: number;
  state: number;
  protocol: number;
  enabled: number;
  archived: number | null;
  size: number | null;
  created_date_time: string;
  last_seen_date_time: string | null;
  tags: string;
}

export interface WidgetDatabase {
  widgets: WidgetRow;
}

/** Names chosen to trip LIKE (%, _, \), quoting, case folding and ordering. */
export const widgetNames = [
  'Alpha',
  'alpha',
  'ALPHA beta',
  'beta',
  'Beta_1',
  'beta%2',
  'back\\slash',
  "it's",
  'Zeta',
  'zeta',
  'É',
  'é',
  'a_b',
  'axb',
  '100%',
  '',
] as const;

/** Deterministic rows: every combination walk of the columns, with nulls sprinkled. */
export function buildWidgetRows(count = 64): WidgetRow[] {
  const rows: WidgetRow[] = [];
  for (let i = 0; i < count; i++) {
    const hex = i.toString(16).padStart(12, '0');
    rows.push({
      // Ids not in insertion order, so the primary-key tiebreak is visible.
      id: `${((i * 37) % 256).toString(16).padStart(8, '0')}-0000-4000-8000-${hex}`,
      name: widgetNames[i % widgetNames.length] as string,
      note: i % 5 === 0 ? null : (widgetNames[(i * 7) % widgetNames.length] as string),
      status: i % 4,
      state: (i * 3) % 6,
      protocol: i % 3,
      enabled: i % 2,
      archived: i % 7 === 0 ? null : (i >> 1) % 2,
      size: i % 6 === 0 ? null : ((i * 13) % 40) - 20,
      created_date_time: new Date(Date.UTC(2026, 0, 1) + (i % 20) * 3_600_000 + (i % 3)).toISOString(),
      last_seen_date_time:
        i % 4 === 3
          ? null
          : i % 9 === 0
            ? '0001-01-01T00:00:00.000Z'
            : `2026-01-0${1 + (i % 5)}T12:00:00.000Z`,
      tags: JSON.stringify(i % 2 ? ['0', 'x'] : []),
    });
  }
  return rows;
}

/** Databases the list-query tests run on: every engine (the PostgreSQL server of the test run). */
export type WidgetEngine = StorageEngineKind;

export const widgetEngines: readonly WidgetEngine[] = storageEngines;

/**
 * A Kysely over a fresh widgets table filled with `rows`: an in-memory SQLite, or a new database on the
 * PostgreSQL test server. Text columns use the engine's byte-order text type (`collate "C"` on
 * PostgreSQL), as vppd's schema does, for string order to match SQLite's.
 */
export async function openWidgetDatabase(
  rows: readonly WidgetRow[],
  engine: WidgetEngine = 'sqlite',
): Promise<{ db: Kysely<WidgetDatabase>; destroy: () => Promise<void> }> {
  const storage = await openTestStorage(engine, { migrate: false, poolSize: 2 });
  const db = storage.db as unknown as Kysely<WidgetDatabase>;
  const text = storage.ddl.text;
  await db.schema
    .createTable('widgets')
    .addColumn('id', text, (c) => c.primaryKey())
    .addColumn('name', text, (c) => c.notNull())
    .addColumn('note', text)
    .addColumn('status', 'integer', (c) => c.notNull())
    .addColumn('state', 'integer', (c) => c.notNull())
    .addColumn('protocol', 'integer', (c) => c.notNull())
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('archived', 'integer')
    .addColumn('size', 'integer')
    .addColumn('created_date_time', text, (c) => c.notNull())
    .addColumn('last_seen_date_time', text)
    .addColumn('tags', text, (c) => c.notNull())
    .execute();
  for (let i = 0; i < rows.length; i += 50) {
    await db
      .insertInto('widgets')
      .values(rows.slice(i, i + 50) as WidgetRow[])
      .execute();
  }
  return {
    db,
    destroy: () => storage.close(),
  };
}

// ---- reference evaluator (independent of the SQL compiler) ----

type Value = string | number | null;

/** The comparable value of a property of a row (enums and booleans as numbers, dates as ms). */
function rowValue(row: WidgetRow, property: string): Value {
  const column = widgetColumns[property];
  if (!column) throw new Error(`no column ${property}`);
  const raw = row[column.column as keyof WidgetRow] as Value;
  if (raw === null) return null;
  if (column.encoding.kind === 'dateTime') return Date.parse(raw as string);
  return raw;
}

/** A literal as a comparable value; inexact dates sit half a millisecond after their truncation. */
function literalValue(property: string, literal: FilterLiteral): Value {
  switch (literal.type) {
    case 'null':
      return null;
    case 'string':
    case 'number':
      return literal.value;
    case 'boolean':
      return literal.value ? 1 : 0;
    case 'dateTime':
      return Date.parse(literal.value) + (literal.exact ? 0 : 0.5);
    case 'enum': {
      const field = widgetFields[property];
      if (!field?.enum) throw new Error(`no enum for ${property}`);
      return field.enum.toValue(literal.member);
    }
  }
}

const asciiLower = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());

/** Evaluates a filter on a row with OData semantics (null ne x is true; other null comparisons false). */
export function evaluateFilter(expression: FilterExpression, row: WidgetRow): boolean {
  switch (expression.kind) {
    case 'and':
      return expression.operands.every((e) => evaluateFilter(e, row));
    case 'or':
      return expression.operands.some((e) => evaluateFilter(e, row));
    case 'not':
      return !evaluateFilter(expression.operand, row);
    case 'in':
      return expression.values.some(
        (v) => rowValue(row, expression.property) === literalValue(expression.property, v),
      );
    case 'isOf':
      // Every widget is of the one widget type.
      return expression.typeNames.length > 0;
    case 'stringFunction': {
      const value = rowValue(row, expression.property);
      if (value === null) return false;
      // SQLite's lower() folds ASCII only; the reference does the same.
      const text = asciiLower(String(value));
      const needle = asciiLower(expression.value);
      if (expression.function === 'startswith') return text.startsWith(needle);
      if (expression.function === 'endswith') return text.endsWith(needle);
      return text.includes(needle);
    }
    case 'compare': {
      const left = rowValue(row, expression.property);
      const right = literalValue(expression.property, expression.value);
      if (left === null || right === null) {
        if (expression.operator === 'eq') return left === right;
        if (expression.operator === 'ne') return left !== right;
        return false;
      }
      switch (expression.operator) {
        case 'eq':
          return left === right;
        case 'ne':
          return left !== right;
        case 'gt':
          return left > right;
        case 'ge':
          return left >= right;
        case 'lt':
          return left < right;
        case 'le':
          return left <= right;
      }
    }
  }
}

/** Sorts rows like OData (nulls smallest) with the primary key as the final ascending key. */
export function sortRows(rows: readonly WidgetRow[], orderBy: readonly OrderKey[]): WidgetRow[] {
  const compare = (a: Value, b: Value): number => {
    if (a === b) return 0;
    if (a === null) return -1;
    if (b === null) return 1;
    return a < b ? -1 : 1;
  };
  return [...rows].sort((x, y) => {
    for (const key of orderBy) {
      const c = compare(rowValue(x, key.property), rowValue(y, key.property));
      if (c !== 0) return key.direction === 'asc' ? c : -c;
    }
    return compare(x.id, y.id);
  });
}
