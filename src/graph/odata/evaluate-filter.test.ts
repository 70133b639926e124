import { describe, expect, it } from 'vitest';
import type { ListFields } from '../../domain/list-query.js';
import { evaluateFilter, type FilterValue } from './evaluate-filter.js';
import { parseFilter } from './parse-filter.js';

const fields: ListFields = {
  name: { name: 'name', type: 'string', filterable: true, sortable: false },
  count: { name: 'count', type: 'int32', filterable: true, sortable: false },
};
const row = (name: string | null, count: number): Record<string, FilterValue> => ({ name, count });
const rows = [row('Alpha', 1), row('beta', 5), row(null, 10)];
const matching = (text: string) =>
  rows
    .filter((r) =>
      evaluateFilter(parseFilter(text, { fields, typeName: 't', version: 'beta' }), (p) => r[p] ?? null),
    )
    .map((r) => r.name);

describe('evaluateFilter', () => {
  it.each([
    ["name eq 'Alpha'", ['Alpha']],
    ["name eq 'alpha'", []],
    ['name eq null', [null]],
    ["name ne 'Alpha'", ['beta', null]],
    ['count gt 1', ['beta', null]],
    ['count le 5 and count ge 5', ['beta']],
    ["startswith(name,'AL') or count eq 10", ['Alpha', null]],
    ["contains(name,'ET')", ['beta']],
    ["not(name eq 'beta')", ['Alpha', null]],
    ["name in ('beta','x')", ['beta']],
    ["name gt 'a'", ['beta']],
  ])('%s', (text, expected) => {
    expect(matching(text)).toEqual(expected);
  });
});
