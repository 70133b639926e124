import fc from 'fast-check';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListQuery } from '../src/domain/list-query.js';
import { buildNextLink } from '../src/graph/odata/next-link.js';
import { parseListQuery } from '../src/graph/odata/parse-list-query.js';
import { countListRows, fetchListPage } from '../src/storage/list-query-compiler.js';
import { filterExpressionArbitrary } from './helpers/filter-arbitrary.js';
import {
  buildWidgetRows,
  evaluateFilter,
  openWidgetDatabase,
  sortRows,
  type WidgetDatabase,
  type WidgetRow,
  widgetColumns,
  widgetEngines,
  widgetFields,
  widgetTypeName,
} from './helpers/list-query-fixture.js';

// Parser + compiler against a real database table (SQLite and PostgreSQL, the server the test run starts): results must equal an independent evaluator of the
// same filter with OData semantics, for hand-picked cases per operator and for random ASTs.

const rows = buildWidgetRows(64);

describe.each(widgetEngines)('on %s', (engine) => {
  let db: Kysely<WidgetDatabase>;
  let destroy: () => Promise<void>;

  beforeAll(async () => {
    ({ db, destroy } = await openWidgetDatabase(rows, engine));
  });
  afterAll(async () => {
    await destroy();
  });

  const parse = (query: string, version: 'beta' | 'v1.0' = 'beta') =>
    parseListQuery(query, { fields: widgetFields, typeName: widgetTypeName, version, maxPageSize: 999 });

  const base = () => db.selectFrom('widgets').selectAll();

  /** Every matching row, in order, through the real compiler. */
  async function all(query: ListQuery): Promise<WidgetRow[]> {
    const page = await fetchListPage(base(), { ...query, offset: 0, pageSize: 999 }, widgetColumns, {
      primaryKey: 'id',
    });
    return page.rows;
  }

  /** The reference answer for a query: evaluator + OData sort. */
  function expected(query: ListQuery): WidgetRow[] {
    const filter = query.filter;
    const matched = filter ? rows.filter((row) => evaluateFilter(filter, row)) : rows;
    return sortRows(matched, query.orderBy);
  }

  const ids = (list: readonly WidgetRow[]) => list.map((row) => row.id);

  async function check(filter: string, predicate?: (row: WidgetRow) => boolean): Promise<WidgetRow[]> {
    const query = parse(`$filter=${encodeURIComponent(filter)}`);
    const got = await all(query);
    expect(ids(got)).toEqual(ids(expected(query)));
    if (predicate) expect(ids(got)).toEqual(ids(sortRows(rows.filter(predicate), [])));
    return got;
  }

  describe('filters equal the OData reference', () => {
    it('eq / ne on strings are exact and case-sensitive; ne includes null', async () => {
      expect(await check("name eq 'alpha'", (r) => r.name === 'alpha')).toHaveLength(4);
      await check("name eq 'it''s'", (r) => r.name === "it's");
      await check("note ne 'alpha'", (r) => r.note !== 'alpha');
      await check('note eq null', (r) => r.note === null);
      await check('note ne null', (r) => r.note !== null);
      await check("name eq ''", (r) => r.name === '');
    });

    it('gt / ge / lt / le on strings, ints, dates, enums and booleans', async () => {
      await check("name gt 'beta'", (r) => r.name > 'beta');
      await check("name le 'Beta_1'", (r) => r.name <= 'Beta_1');
      await check('size gt 0', (r) => r.size !== null && r.size > 0);
      await check('size le -3', (r) => r.size !== null && r.size <= -3);
      await check('-3 ge size', (r) => r.size !== null && r.size <= -3);
      await check(
        'createdDateTime ge 2026-01-01T05:00:00Z',
        (r) => r.created_date_time >= '2026-01-01T05:00:00.000Z',
      );
      await check(
        'createdDateTime lt 2026-01-01T03:00:00+01:00',
        (r) => r.created_date_time < '2026-01-01T02:00:00.000Z',
      );
      await check("status gt 'inProgress'", (r) => r.status > 1);
      await check('enabled gt false', (r) => r.enabled === 1);
    });

    it('compares dates more precise than a millisecond without rounding', async () => {
      // Row 1 was created at 01:00:00.001; the literal sits between .001 and .002.
      const t = '2026-01-01T01:00:00.0015Z';
      expect(await check(`createdDateTime eq ${t}`)).toHaveLength(0);
      await check(`createdDateTime gt ${t}`, (r) => r.created_date_time > '2026-01-01T01:00:00.001Z');
      await check(`createdDateTime le ${t}`, (r) => r.created_date_time <= '2026-01-01T01:00:00.001Z');
      await check(`createdDateTime ne ${t}`, () => true);
      await check(`not (createdDateTime lt ${t})`, (r) => r.created_date_time > '2026-01-01T01:00:00.001Z');
      await check(
        'createdDateTime eq 2026-01-01T01:00:00.0010000Z',
        (r) => r.created_date_time === '2026-01-01T01:00:00.001Z',
      );
    });

    it('the 0001-01-01 sentinel and null dates', async () => {
      await check(
        'lastSeenDateTime eq 0001-01-01T00:00:00Z',
        (r) => r.last_seen_date_time === '0001-01-01T00:00:00.000Z',
      );
      await check(
        'lastSeenDateTime gt 0001-01-01T00:00:00Z',
        (r) => r.last_seen_date_time !== null && r.last_seen_date_time > '0001-01-01T00:00:00.000Z',
      );
      await check('lastSeenDateTime eq null', (r) => r.last_seen_date_time === null);
    });

    it('enum literals compile to their stored values', async () => {
      await check("status eq 'failed'", (r) => r.status === 3);
      await check("state eq microsoft.graph.vppTokenState'expired'", (r) => r.state === 2);
      await check("state in ('valid', 'duplicateLocationId')", (r) => r.state === 1 || r.state === 5);
      await check("protocol ne 'default'", (r) => r.protocol !== 0);
    });

    it('booleans: bare, negated, compared and null', async () => {
      await check('enabled', (r) => r.enabled === 1);
      await check('not enabled', (r) => r.enabled === 0);
      await check('archived eq false', (r) => r.archived === 0);
      await check('not archived', (r) => r.archived !== 1);
      await check('archived ne true', (r) => r.archived !== 1);
      await check('archived eq null', (r) => r.archived === null);
    });

    it('in, with and without null, and negated', async () => {
      await check("name in ('Alpha', 'beta')", (r) => r.name === 'Alpha' || r.name === 'beta');
      await check("note in ('alpha', null)", (r) => r.note === 'alpha' || r.note === null);
      await check("not (note in ('alpha'))", (r) => r.note !== 'alpha');
      await check("not (note in ('alpha', null))", (r) => r.note !== 'alpha' && r.note !== null);
      await check('size in (1, -1, null)', (r) => r.size === 1 || r.size === -1 || r.size === null);
    });

    it('string functions are case-insensitive and treat %, _ and \\ literally', async () => {
      await check("startswith(name,'alp')", (r) => r.name.toLowerCase().startsWith('alp'));
      await check("endswith(name,'ETA')", (r) => r.name.toLowerCase().endsWith('eta'));
      await check("contains(name,'%')", (r) => r.name.includes('%'));
      await check("contains(name,'_')", (r) => r.name.includes('_'));
      await check("contains(name,'\\')", (r) => r.name.includes('\\'));
      await check("startswith(name,'a_')", (r) => r.name.toLowerCase().startsWith('a_'));
      await check("contains(name,'')", () => true);
      await check("not contains(note,'a')", (r) => r.note === null || !r.note.toLowerCase().includes('a'));
      await check(
        "contains(note,'ALPHA') eq false",
        (r) => r.note === null || !r.note.toLowerCase().includes('alpha'),
      );
    });

    it('and / or / not with parentheses, including De Morgan over nulls', async () => {
      await check(
        "status eq 'failed' and (size gt 0 or note eq null)",
        (r) => r.status === 3 && ((r.size ?? 0) > 0 || r.note === null),
      );
      await check(
        'not (size gt 0 and archived)',
        (r) => !(r.size !== null && r.size > 0 && r.archived === 1),
      );
      await check('not (size gt 0 or size lt -5)', (r) => !(r.size !== null && (r.size > 0 || r.size < -5)));
      await check('not not enabled', (r) => r.enabled === 1);
    });

    it('guid ids compare in lower case, quoted or not', async () => {
      const target = rows[5] as WidgetRow;
      await check(`id eq ${target.id.toUpperCase()}`, (r) => r.id === target.id);
      await check(`id eq '${target.id}'`, (r) => r.id === target.id);
    });
  });

  describe('ordering', () => {
    it('several keys with directions, nulls first ascending, primary key last', async () => {
      for (const orderby of [
        'name',
        'name desc',
        'status desc,name,size desc',
        'archived,lastSeenDateTime desc',
        'size,note desc',
        'enabled desc,createdDateTime',
        'id desc',
      ]) {
        const query = parse(`$orderby=${encodeURIComponent(orderby)}`);
        expect(ids(await all(query)), orderby).toEqual(ids(expected(query)));
      }
    });
  });

  describe('paging with $skiptoken', () => {
    async function walk(first: string): Promise<{ pages: WidgetRow[][]; query: ListQuery }> {
      let url = `https://vppd.test/beta/widgets?${first}`;
      const pages: WidgetRow[][] = [];
      let firstQuery: ListQuery | undefined;
      for (let guard = 0; guard < 200; guard++) {
        const query = parse(new URL(url).search);
        firstQuery ??= query;
        const page = await fetchListPage(base(), query, widgetColumns, { primaryKey: 'id' });
        pages.push(page.rows);
        if (page.nextOffset === undefined) break;
        url = buildNextLink(url, query, page.nextOffset);
      }
      return { pages, query: firstQuery as ListQuery };
    }

    it('covers every matching row exactly once, in order, for several page sizes and filters', async () => {
      const cases = [
        '$top=7',
        '$top=1&$orderby=name desc',
        `top=10&filter=${encodeURIComponent("status ne 'none'")}&orderby=size`,
        '$top=5&$skip=3&$orderby=createdDateTime desc,name',
        `$filter=${encodeURIComponent('size gt 100')}`,
        '$top=64',
        '$top=63',
      ];
      for (const first of cases) {
        const { pages, query } = await walk(first);
        const want = expected(query).slice(query.skip);
        const seen = pages.flat();
        expect(ids(seen), first).toEqual(ids(want));
        expect(new Set(ids(seen)).size).toBe(seen.length);
        for (const page of pages.slice(0, -1)) expect(page.length).toBe(query.pageSize);
      }
    });

    it('the default page size applies without $top', async () => {
      const many = buildWidgetRows(250);
      const big = await openWidgetDatabase(many, engine);
      try {
        const query = parse('');
        expect(query.pageSize).toBe(100);
        const page = await fetchListPage(big.db.selectFrom('widgets').selectAll(), query, widgetColumns, {
          primaryKey: 'id',
        });
        expect(page.rows).toHaveLength(100);
        expect(page.nextOffset).toBe(100);
      } finally {
        await big.destroy();
      }
    });

    it('$top=0 returns nothing and no next page; $count still counts', async () => {
      const query = parse('$top=0&$count=true&$filter=enabled');
      const page = await fetchListPage(base(), query, widgetColumns, { primaryKey: 'id' });
      expect(page).toEqual({ rows: [] });
      expect(await countListRows(base(), query, widgetColumns)).toBe(
        rows.filter((r) => r.enabled === 1).length,
      );
    });
  });

  describe('count', () => {
    it('counts matching rows ignoring order, limit and offset', async () => {
      const query = parse(`$filter=${encodeURIComponent("contains(name,'a')")}&$top=2&$skip=1&$orderby=name`);
      expect(await countListRows(base().orderBy('name').limit(1).offset(3), query, widgetColumns)).toBe(
        expected(query).length,
      );
      expect(await countListRows(base(), parse(''), widgetColumns)).toBe(rows.length);
    });
  });

  describe('random filters (property)', () => {
    it('compiled random valid ASTs run without SQL errors and equal the reference', async () => {
      await fc.assert(
        fc.asyncProperty(filterExpressionArbitrary(widgetFields), async (filter) => {
          const query: ListQuery = { filter, orderBy: [], skip: 0, count: false, offset: 0, pageSize: 999 };
          const got = await all(query);
          expect(ids(got)).toEqual(ids(expected(query)));
          expect(await countListRows(base(), query, widgetColumns)).toBe(got.length);
        }),
        { numRuns: 1500 },
      );
    });
  });
});
