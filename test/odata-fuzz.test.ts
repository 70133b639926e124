import fc from 'fast-check';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isVppdError } from '../src/domain/errors.js';
import type { ListQuery } from '../src/domain/list-query.js';
import { type ListQueryInput, parseListQuery } from '../src/graph/odata/parse-list-query.js';
import { countListRows, fetchListPage } from '../src/storage/list-query-compiler.js';
import { filterExpressionArbitrary, printFilter } from './helpers/filter-arbitrary.js';
import {
  buildWidgetRows,
  evaluateFilter,
  openWidgetDatabase,
  sortRows,
  type WidgetDatabase,
  widgetColumns,
  widgetFields,
  widgetTypeName,
} from './helpers/list-query-fixture.js';

// The fuzz test: 10,000 random $filter / $orderby / $select inputs end in a parsed query or a
// 400 (VppdError badRequest | notSupported) — never another error, which the HTTP layer would turn into
// a 500. Whatever parses is also compiled and run on a real SQLite table, and must match the reference
// evaluator: an SQL error there would be a 500 too.

const rows = buildWidgetRows(40);
let db: Kysely<WidgetDatabase>;
let destroy: () => Promise<void>;
beforeAll(async () => {
  // SQLite always; the fuzz is about parse outcomes, PostgreSQL runs the operator tests.
  ({ db, destroy } = await openWidgetDatabase(rows, 'sqlite'));
});
afterAll(async () => {
  await destroy();
});

const outcomes = { parsed: 0, rejected: 0 };

/** Parses, or checks that the failure is a 400-class VppdError and returns undefined. */
function parseOrReject(input: ListQueryInput, version: 'beta' | 'v1.0' = 'beta'): ListQuery | undefined {
  try {
    const query = parseListQuery(input, { fields: widgetFields, typeName: widgetTypeName, version });
    outcomes.parsed += 1;
    return query;
  } catch (error) {
    if (!isVppdError(error) || (error.code !== 'badRequest' && error.code !== 'notSupported')) {
      throw new Error(`input ${JSON.stringify(input)} threw a non-400 error: ${String(error)}`, {
        cause: error,
      });
    }
    expect(error.message.length).toBeGreaterThan(0);
    outcomes.rejected += 1;
    return undefined;
  }
}

/** Runs a parsed query on SQLite and compares with the reference (filter and order). */
async function runAndCompare(query: ListQuery): Promise<void> {
  const page = await fetchListPage(
    db.selectFrom('widgets').selectAll(),
    { ...query, offset: 0, pageSize: 999 },
    widgetColumns,
    { primaryKey: 'id' },
  );
  const filter = query.filter;
  const want = sortRows(filter ? rows.filter((row) => evaluateFilter(filter, row)) : rows, query.orderBy);
  expect(page.rows.map((r) => r.id)).toEqual(want.map((r) => r.id));
  expect(await countListRows(db.selectFrom('widgets').selectAll(), query, widgetColumns)).toBe(want.length);
}

const vocabulary = [
  ...Object.keys(widgetFields),
  'colour',
  'Name',
  'eq',
  'ne',
  'gt',
  'ge',
  'lt',
  'le',
  'and',
  'or',
  'not',
  'in',
  'has',
  'add',
  'asc',
  'desc',
  "'a'",
  "'Alpha'",
  "'it''s'",
  "''",
  "'",
  "'%'",
  '5',
  '-1',
  '1.5',
  '1e3',
  '2147483648',
  'true',
  'false',
  'null',
  '2026-01-01T00:00:00Z',
  '2026-01-01T05:00:00.0005+01:00',
  '2026-01-01',
  '0001-01-01T00:00:00Z',
  '0a1b2c3d-0000-4000-8000-000000000001',
  "'failed'",
  "'Failed'",
  "'expired'",
  "microsoft.graph.vppTokenState'valid'",
  "duration'P1D'",
  'startswith(',
  'endswith(',
  'contains(',
  'tolower(',
  'any(',
  '(',
  ')',
  ',',
  '/',
  ':',
  '@p',
  '$it',
  '[',
  ']',
  '"',
  '*',
  '-',
  '\u0000',
  'é',
];

const tokenSoup = fc
  .tuple(fc.array(fc.constantFrom(...vocabulary), { maxLength: 14 }), fc.constantFrom(' ', '', '  ', ','))
  .map(([words, separator]) => words.join(separator));

/** A printed valid filter with one random edit: usually broken, sometimes still valid. */
const mutatedFilter = fc
  .tuple(
    filterExpressionArbitrary(widgetFields).map(printFilter),
    fc.nat(),
    fc.constantFrom('drop', 'duplicate', 'replace', 'none', 'truncate'),
    fc.constantFrom(...vocabulary),
  )
  .map(([text, at, edit, word]) => {
    const words = text.split(' ');
    const i = at % words.length;
    switch (edit) {
      case 'drop':
        words.splice(i, 1);
        break;
      case 'duplicate':
        words.splice(i, 0, words[i] ?? '');
        break;
      case 'replace':
        words[i] = word;
        break;
      case 'truncate':
        return text.slice(0, at % (text.length + 1));
      case 'none':
        break;
    }
    return words.join(' ');
  });

const anyText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ maxLength: 40, unit: 'binary' }),
  fc.string({ maxLength: 40, unit: 'grapheme-ascii' }),
);

describe('OData query options under random input (10,000 runs in total)', () => {
  it('random text for $filter, $orderby and $select: parsed or a 400', () => {
    fc.assert(
      fc.property(fc.constantFrom('$filter', '$orderby', '$select', 'filter'), anyText, (option, value) => {
        parseOrReject({ [option]: value });
      }),
      { numRuns: 2500 },
    );
  });

  it('random raw query strings (decoding, names, duplicates): parsed or a 400', () => {
    const piece = fc.oneof(
      fc.string({ maxLength: 12, unit: 'grapheme-ascii' }),
      fc.constantFrom(
        '$filter=',
        '$top=',
        '$skip=',
        '$count=',
        '$select=',
        '$orderby=',
        '$skiptoken=',
        '%',
        '%2',
        '%ZZ',
        '+',
        '&',
        '=',
      ),
    );
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 8 }),
        fc.constantFrom<'beta' | 'v1.0'>('beta', 'v1.0'),
        (pieces, version) => {
          parseOrReject(pieces.join(''), version);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('random combinations of grammar tokens: parsed or a 400; what parses runs correctly on SQLite', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('$filter', '$orderby', '$select'),
        tokenSoup,
        async (option, value) => {
          const query = parseOrReject({ [option]: value });
          if (query) await runAndCompare(query);
        },
      ),
      { numRuns: 2500 },
    );
  });

  it('mutated valid filters: parsed or a 400; what parses runs correctly on SQLite', async () => {
    const before = { ...outcomes };
    await fc.assert(
      fc.asyncProperty(
        mutatedFilter,
        fc.constantFrom('', 'name desc', 'status,size desc'),
        async (filter, orderby) => {
          const query = parseOrReject({ $filter: filter, ...(orderby ? { $orderby: orderby } : {}) });
          if (query) await runAndCompare(query);
        },
      ),
      { numRuns: 2000 },
    );
    // The generator exercises both sides.
    expect(outcomes.parsed - before.parsed).toBeGreaterThan(200);
    expect(outcomes.rejected - before.rejected).toBeGreaterThan(200);
  });

  it('round trip: parse(print(ast)) is the ast', () => {
    fc.assert(
      fc.property(filterExpressionArbitrary(widgetFields), (ast) => {
        const query = parseOrReject({ $filter: printFilter(ast) });
        expect(query?.filter).toEqual(ast);
      }),
      { numRuns: 1000 },
    );
  });
});
