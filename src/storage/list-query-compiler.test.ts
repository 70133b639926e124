import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely';
import { describe, expect, it } from 'vitest';
import { vppTokenSyncStatus } from '../domain/enums.js';
import { isVppdError } from '../domain/errors.js';
import type { FilterExpression, ListQuery } from '../domain/list-query.js';
import { applyListQuery, escapeLikePattern, type ListColumns } from './list-query-compiler.js';

// SQL text only (no database): the same AST compiles to the expected portable SQL on both engines.
// Behaviour against a real SQLite table is tested in test/list-query-sqlite.test.ts.

interface Db {
  t: { id: string; name: string | null; status: number; at: string; flag: number; tags: string };
}

const pg = new Kysely<Db>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});
const lite = new Kysely<Db>({
  dialect: {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  },
});

const columns: ListColumns = {
  id: { column: 'id', encoding: { kind: 'id' } },
  name: { column: 'name', encoding: { kind: 'text' } },
  status: { column: 'status', encoding: { kind: 'enum', enum: vppTokenSyncStatus } },
  at: { column: 'at', encoding: { kind: 'dateTime' } },
  flag: { column: 'flag', encoding: { kind: 'boolean' } },
  tags: { column: 'tags', encoding: { kind: 'stringCollection' } },
};

const list = (filter?: FilterExpression, extra: Partial<ListQuery> = {}): ListQuery => ({
  ...(filter ? { filter } : {}),
  orderBy: [],
  skip: 0,
  count: false,
  offset: 0,
  pageSize: 10,
  ...extra,
});

const compile = (db: Kysely<Db>, query: ListQuery) =>
  applyListQuery(db.selectFrom('t').selectAll(), query, columns, { primaryKey: 'id' }).compile();

describe('compiled SQL', () => {
  it('comparisons, null semantics and parameters on PostgreSQL', () => {
    const { sql, parameters } = compile(
      pg,
      list({
        kind: 'and',
        operands: [
          {
            kind: 'compare',
            property: 'status',
            operator: 'eq',
            value: { type: 'enum', enum: 'vppTokenSyncStatus', member: 'failed' },
          },
          { kind: 'compare', property: 'name', operator: 'ne', value: { type: 'string', value: 'x' } },
          {
            kind: 'not',
            operand: {
              kind: 'compare',
              property: 'flag',
              operator: 'eq',
              value: { type: 'boolean', value: true },
            },
          },
          { kind: 'compare', property: 'name', operator: 'eq', value: { type: 'null' } },
        ],
      }),
    );
    expect(sql).toBe(
      'select * from "t" where ("status" = $1 and ("name" <> $2 or "name" is null) and ("flag" <> $3 or "flag" is null) and "name" is null) order by "id" asc limit $4 offset $5',
    );
    expect(parameters).toEqual([3, 'x', 1, 11, 0]);
  });

  it('string functions: lower() like with escaped wildcards, same text on both engines but placeholders', () => {
    const filter: FilterExpression = {
      kind: 'stringFunction',
      function: 'contains',
      property: 'name',
      value: '5%_\\',
    };
    const onPg = compile(pg, list(filter));
    expect(onPg.sql).toContain(
      `lower("name") like lower(cast($1 as text) || substr("name", 1, 0)) escape '\\'`,
    );
    expect(onPg.parameters[0]).toBe('%5\\%\\_\\\\%');
    const onLite = compile(lite, list({ kind: 'not', operand: filter }));
    expect(onLite.sql).toContain(
      `(lower("name") not like lower(cast(? as text) || substr("name", 1, 0)) escape '\\' or "name" is null)`,
    );
  });

  it('order keys with explicit null placement, then the primary key', () => {
    const { sql } = compile(
      lite,
      list(undefined, {
        orderBy: [
          { property: 'name', direction: 'desc' },
          { property: 'at', direction: 'asc' },
        ],
      }),
    );
    expect(sql).toContain('order by "name" desc nulls last, "at" asc nulls first, "id" asc');
    const byId = compile(lite, list(undefined, { orderBy: [{ property: 'id', direction: 'desc' }] }));
    expect(byId.sql).toContain('order by "id" desc nulls last limit');
  });

  it('$top=0 compiles to limit 0; offsets pass through', () => {
    expect(compile(lite, list(undefined, { pageSize: 0, offset: 7 })).parameters).toEqual([0, 7]);
  });

  it('inexact dates never equal and compare against their truncation', () => {
    const at = (operator: 'eq' | 'ne' | 'ge' | 'lt') =>
      compile(
        lite,
        list({
          kind: 'compare',
          property: 'at',
          operator,
          value: { type: 'dateTime', value: '2026-01-01T00:00:00.000Z', exact: false },
        }),
      ).sql;
    expect(at('eq')).toContain('where 1 = 0');
    expect(at('ne')).toContain('where 1 = 1');
    expect(at('ge')).toContain('where "at" > ?');
    expect(at('lt')).toContain('where "at" <= ?');
  });

  it('in lists with null, and empty lists after dropping impossible values', () => {
    const inList = (values: Extract<FilterExpression, { kind: 'in' }>['values'], negated = false) => {
      const node: FilterExpression = { kind: 'in', property: 'name', values };
      return compile(lite, list(negated ? { kind: 'not', operand: node } : node)).sql;
    };
    expect(inList([{ type: 'string', value: 'a' }, { type: 'null' }])).toContain(
      '("name" in (?) or "name" is null)',
    );
    expect(inList([{ type: 'string', value: 'a' }, { type: 'null' }], true)).toContain(
      '("name" not in (?) and "name" is not null)',
    );
    expect(inList([{ type: 'null' }], true)).toContain('"name" is not null');
  });

  it('an AST that does not fit the columns is an internal error (a bug, never user input)', () => {
    const bad: FilterExpression[] = [
      { kind: 'compare', property: 'nope', operator: 'eq', value: { type: 'string', value: 'a' } },
      { kind: 'compare', property: 'flag', operator: 'eq', value: { type: 'string', value: 'a' } },
      {
        kind: 'compare',
        property: 'status',
        operator: 'eq',
        value: { type: 'enum', enum: 'vppTokenState', member: 'valid' },
      },
      { kind: 'compare', property: 'tags', operator: 'eq', value: { type: 'string', value: 'a' } },
      { kind: 'stringFunction', function: 'startswith', property: 'status', value: 'a' },
    ];
    for (const filter of bad) {
      expect(() => compile(lite, list(filter))).toThrow(expect.objectContaining({ code: 'internal' }));
    }
    try {
      compile(lite, list(undefined, { orderBy: [{ property: 'tags', direction: 'asc' }] }));
      expect.unreachable();
    } catch (error) {
      expect(isVppdError(error, 'internal')).toBe(true);
    }
  });
});

describe('escapeLikePattern', () => {
  it('escapes the escape character and both wildcards', () => {
    expect(escapeLikePattern('a%b_c\\d')).toBe('a\\%b\\_c\\\\d');
    expect(escapeLikePattern('plain')).toBe('plain');
  });
});
