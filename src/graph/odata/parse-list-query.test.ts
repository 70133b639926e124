import { describe, expect, it } from 'vitest';
import { widgetFields, widgetTypeName } from '../../../test/helpers/list-query-fixture.js';
import { type ErrorCode, isVppdError } from '../../domain/errors.js';
import type { ListQuery } from '../../domain/list-query.js';
import { buildNextLink } from './next-link.js';
import {
  applySelect,
  defaultPageSize,
  type ListQueryInput,
  type ListQueryOption,
  maxPageSize,
  parseListQuery,
} from './parse-list-query.js';
import { decodeSkipToken, encodeSkipToken } from './skip-token.js';

const parse = (
  input: ListQueryInput,
  version: 'beta' | 'v1.0' = 'beta',
  allowedOptions?: readonly ListQueryOption[],
): ListQuery =>
  parseListQuery(input, {
    fields: widgetFields,
    typeName: widgetTypeName,
    version,
    ...(allowedOptions ? { allowedOptions } : {}),
  });

function failure(
  input: ListQueryInput,
  version: 'beta' | 'v1.0' = 'beta',
  allowedOptions?: readonly ListQueryOption[],
): { code: ErrorCode; message: string } {
  try {
    parse(input, version, allowedOptions);
  } catch (error) {
    if (!isVppdError(error)) throw error;
    return { code: error.code, message: error.message };
  }
  throw new Error(`expected ${JSON.stringify(input)} to be rejected`);
}

describe('parseListQuery: defaults and options', () => {
  it('no options: first page of the default size, everything selected', () => {
    expect(parse('')).toEqual({ orderBy: [], skip: 0, count: false, offset: 0, pageSize: defaultPageSize });
    expect(parse('?')).toEqual(parse(''));
  });

  it('reads every option from a raw query string', () => {
    const query = parse(
      "?$select=id,name&$filter=name%20eq%20'a%26b'&$orderby=size%20desc,name&$top=5&$skip=10&$count=true",
    );
    expect(query).toEqual({
      select: ['id', 'name'],
      filter: { kind: 'compare', property: 'name', operator: 'eq', value: { type: 'string', value: 'a&b' } },
      orderBy: [
        { property: 'size', direction: 'desc' },
        { property: 'name', direction: 'asc' },
      ],
      top: 5,
      skip: 10,
      count: true,
      offset: 10,
      pageSize: 5,
    });
  });

  it('form decoding: + is a space; %24 is $', () => {
    expect(parse("%24filter=name+eq+'a+b'").filter).toMatchObject({ value: { value: 'a b' } });
    expect(parse("$filter=name eq 'a%2Bb'").filter).toMatchObject({ value: { value: 'a+b' } });
  });

  it('accepts URLSearchParams and parsed records (arrays are duplicates)', () => {
    expect(parse(new URLSearchParams({ $top: '3', $count: 'false' }))).toMatchObject({
      top: 3,
      count: false,
    });
    expect(parse({ $top: '3', $skip: undefined })).toMatchObject({ top: 3, skip: 0 });
    expect(failure({ $top: ['1', '2'] }).message).toContain('more than once');
  });

  it('option names are case-insensitive', () => {
    expect(parse('$TOP=2&$Filter=enabled')).toMatchObject({ top: 2, filter: { property: 'enabled' } });
  });

  it('malformed percent-encoding is a 400', () => {
    expect(failure('$filter=%E0%A4%A').code).toBe('badRequest');
  });
});

describe('parseListQuery: the $ prefix', () => {
  it('is optional on beta', () => {
    expect(parse("filter=name eq 'a'&top=2&select=id&orderby=name&count=true&skip=1")).toEqual(
      parse("$filter=name eq 'a'&$top=2&$select=id&$orderby=name&$count=true&$skip=1"),
    );
  });

  it('beta: the same option with and without $ is a duplicate', () => {
    expect(failure('$top=1&top=2')).toMatchObject({
      code: 'badRequest',
      message: 'The query option $top is specified more than once.',
    });
  });

  it('is required on v1.0: a $-less option is a 400 that says so, never ignored', () => {
    expect(parse('$top=2', 'v1.0')).toMatchObject({ top: 2 });
    const error = failure('top=2', 'v1.0');
    expect(error.code).toBe('badRequest');
    expect(error.message).toContain("use '$top'");
  });

  it('parameters that are not query options are ignored on both versions, as on Graph', () => {
    expect(parse('foo=1&_=1700000000&$top=2')).toEqual(parse('$top=2'));
    expect(parse('_=1700000000', 'v1.0')).toEqual(parse(''));
  });

  it('$format=json is accepted; another $format is a 400 naming it', () => {
    for (const ok of ['$format=json', '$format=JSON', '$format=application/json', 'format=json']) {
      expect(parse(`${ok}&$top=1`)).toEqual(parse('$top=1'));
    }
    expect(failure('$format=xml')).toMatchObject({ code: 'notSupported' });
    expect(failure('$format=xml').message).toContain("'xml'");
    expect(failure('$format=atom', 'beta', []).message).toContain("'atom'");
  });
});

describe('parseListQuery: unsupported, unknown and duplicate options', () => {
  it.each([
    ['$expand=tokenActionResults', '$expand is not supported'],
    ['$search=abc', '$search is not supported'],
    ['$apply=groupby((state))', '$apply'],
    ['$compute=x', '$compute'],
    ['$format=xml', "$format value 'xml' is not supported"],
    ['$deltatoken=x', '$deltatoken'],
    ['expand=x', '$expand is not supported'],
    ['$xyz=1', "'$xyz' is not a supported OData query option"],
  ])('%s', (query, fragment) => {
    const error = failure(query);
    expect(error.code).toBe('notSupported');
    expect(error.message).toContain(fragment);
  });

  it('options a request does not accept are named', () => {
    expect(failure('$top=1', 'beta', ['filter'])).toMatchObject({
      code: 'notSupported',
      message: 'The query option $top is not supported on this request.',
    });
    expect(parse('$filter=enabled', 'beta', ['filter']).filter).toBeDefined();
    expect(failure('$select=id', 'beta', []).code).toBe('notSupported');
  });

  it('duplicates are 400s', () => {
    expect(failure('$filter=enabled&$filter=enabled').message).toBe(
      'The query option $filter is specified more than once.',
    );
  });
});

describe('$select', () => {
  it('lists known properties, trims, removes repeats; * means all', () => {
    expect(parse('$select= id , name,id').select).toEqual(['id', 'name']);
    expect(parse('$select=*').select).toBeUndefined();
    expect(parse('$select=id,*').select).toBeUndefined();
    expect(parse('$select=tags,secret').select).toEqual(['tags', 'secret']);
  });

  it('unknown, empty, nested or malformed items are 400s', () => {
    expect(failure('$select=id,colour')).toMatchObject({
      code: 'badRequest',
      message: "$select: could not find a property named 'colour' on type 'microsoft.graph.widget'.",
    });
    expect(failure('$select=Name').message).toContain("did you mean 'name'");
    expect(failure('$select=').code).toBe('badRequest');
    expect(failure('$select=id,,name').code).toBe('badRequest');
    expect(failure('$select=tags/x').code).toBe('notSupported');
    expect(failure('$select=tags($top=1)').code).toBe('notSupported');
    expect(failure('$select=na-me').code).toBe('badRequest');
    expect(failure('$select=__proto__').code).toBe('badRequest');
  });
});

describe('$orderby', () => {
  it('several keys with optional directions, any case', () => {
    expect(parse('$orderby=status DESC, name,size asc').orderBy).toEqual([
      { property: 'status', direction: 'desc' },
      { property: 'name', direction: 'asc' },
      { property: 'size', direction: 'asc' },
    ]);
  });

  it.each([
    ['$orderby=', 'badRequest', 'no value'],
    ['$orderby=colour', 'badRequest', "property named 'colour'"],
    ['$orderby=tags', 'notSupported', "ordering by 'tags'"],
    ['$orderby=secret desc', 'notSupported', "ordering by 'secret'"],
    ['$orderby=name sideways', 'badRequest', "'asc', 'desc'"],
    ['$orderby=name,name desc', 'badRequest', 'more than once'],
    ['$orderby=name,', 'badRequest', 'a property name'],
    ['$orderby=tolower(name)', 'notSupported', 'expression'],
    ['$orderby=tags/x', 'notSupported', 'property paths'],
    ["$orderby='name'", 'badRequest', 'a property name'],
    ['$orderby=name desc desc', 'badRequest', "',' or the end"],
  ])('%s → %s', (query, code, fragment) => {
    const error = failure(query);
    expect(error.code).toBe(code);
    expect(error.message).toContain(fragment);
  });
});

describe('$top, $skip, $count and page size', () => {
  it('$top is the page size, capped at the maximum page', () => {
    expect(parse('$top=7')).toMatchObject({ top: 7, pageSize: 7 });
    expect(parse('$top=0')).toMatchObject({ top: 0, pageSize: 0 });
    expect(parse(`$top=${maxPageSize + 1000}`)).toMatchObject({
      top: maxPageSize + 1000,
      pageSize: maxPageSize,
    });
    expect(
      parseListQuery('', {
        fields: widgetFields,
        typeName: widgetTypeName,
        version: 'beta',
        defaultPageSize: 20,
      }).pageSize,
    ).toBe(20);
  });

  it.each([
    '$top=-1',
    '$top=1.5',
    '$top=abc',
    '$top=',
    '$top=99999999999',
    '$skip=-3',
    '$skip= 1',
    '$top=+1',
  ])('%s is a 400', (query) => {
    const error = failure(query);
    expect(error.code).toBe('badRequest');
    expect(error.message).toContain('whole number');
  });

  it('$count is true or false only', () => {
    expect(parse('$count=true').count).toBe(true);
    expect(parse('$count=false').count).toBe(false);
    expect(parse('$count=TRUE').count).toBe(true);
    expect(parse('$count=False').count).toBe(false);
    for (const bad of ['$count=1', '$count=yes', '$count=']) {
      expect(failure(bad).message).toContain('must be true or false');
    }
  });
});

describe('$skiptoken and @odata.nextLink', () => {
  const first = "$filter=status ne 'none'&$orderby=name desc&$top=5&$count=true";

  it('the next link keeps path and options as sent and carries a token for the next offset', () => {
    const query = parse(first);
    const link = buildNextLink(
      `https://vppd.test:8443/beta/widgets?${first.replaceAll(' ', '%20')}`,
      query,
      5,
    );
    const url = new URL(link);
    expect(url.origin + url.pathname).toBe('https://vppd.test:8443/beta/widgets');
    expect(link).toContain(
      "$filter=status%20ne%20'none'&$orderby=name%20desc&$top=5&$count=true&$skiptoken=",
    );
    const next = parse(url.search);
    expect(next).toEqual({ ...query, offset: 5 });
  });

  it('replaces an earlier token instead of adding a second one', () => {
    const query = parse(first);
    const one = buildNextLink(`https://h/beta/widgets?${first}`, query, 5);
    const two = buildNextLink(one, parse(new URL(one).search), 10);
    expect(two.match(/skiptoken/g)).toHaveLength(1);
    expect(parse(new URL(two).search).offset).toBe(10);
    const bare = buildNextLink('https://h/beta/widgets?top=5&skiptoken=abc', parse('top=5'), 5);
    expect(bare).toMatch(/^https:\/\/h\/beta\/widgets\?top=5&\$skiptoken=[A-Za-z0-9_-]+$/);
  });

  it('a token belongs to its filter, order and skip', () => {
    const token = encodeSkipToken(5, parse(first));
    expect(parse(`${first}&$skiptoken=${token}`).offset).toBe(5);
    // Same query spelled differently: same fingerprint.
    expect(parse(`filter=status  ne 'none'&orderby=name DESC&$skiptoken=${token}`).offset).toBe(5);
    for (const other of ["$filter=status ne 'failed'", '$filter=enabled', '$orderby=name', '$skip=1', '']) {
      const error = failure(`${other}&$skiptoken=${token}`);
      expect(error.code).toBe('badRequest');
      expect(error.message).toContain('issued for a different query');
    }
  });

  it('$top may change between pages; the token keeps its offset', () => {
    const token = encodeSkipToken(5, parse(first));
    expect(parse(`${first.replace('$top=5', '$top=2')}&$skiptoken=${token}`)).toMatchObject({
      offset: 5,
      pageSize: 2,
    });
  });

  it('malformed tokens are 400s', () => {
    for (const token of [
      '',
      'abc',
      'djEuNS4=',
      '!!!!',
      'x'.repeat(100),
      Buffer.from('v1.99999999999.0123456789abcdef').toString('base64url'),
    ]) {
      expect(failure(`$skiptoken=${token}`).message).toContain('$skiptoken is not valid');
    }
  });

  it('decodeSkipToken round-trips what encodeSkipToken made', () => {
    const scope = { orderBy: [], skip: 0 };
    for (const offset of [0, 1, 999, 2147483647])
      expect(decodeSkipToken(encodeSkipToken(offset, scope), scope)).toBe(offset);
    expect(() => encodeSkipToken(-1, scope)).toThrow();
  });
});

describe('applySelect', () => {
  it('keeps selected properties and annotations', () => {
    const entity = { '@odata.type': '#microsoft.graph.widget', id: '1', name: 'a', size: 3 };
    expect(applySelect(entity, ['name'])).toEqual({ '@odata.type': '#microsoft.graph.widget', name: 'a' });
    expect(applySelect(entity, undefined)).toEqual(entity);
  });
});

describe('parseListQuery: $expand where the list allows it', () => {
  const expanding = (input: string) =>
    parseListQuery(input, {
      fields: widgetFields,
      typeName: widgetTypeName,
      version: 'v1.0',
      expandable: ['assignments'],
    });

  it('names the navigation properties to expand', () => {
    expect(expanding('$expand=assignments').expand).toEqual(['assignments']);
    expect(expanding('$expand=*').expand).toEqual(['assignments']);
    expect(expanding('$select=name').expand).toBeUndefined();
  });

  it('refuses what it cannot expand, and $expand where nothing is expandable', () => {
    const message = (input: string) => {
      try {
        expanding(input);
      } catch (error) {
        if (isVppdError(error)) return error.message;
        throw error;
      }
      return 'accepted';
    };
    expect(message('$expand=categories')).toMatch(
      /no.*|could not find a navigation property named 'categories'/,
    );
    expect(message('$expand=assignments($select=id)')).toMatch(/without nested options/);
    expect(message('$expand=assignments&$expand=assignments')).toMatch(/more than once/);
    expect(failure('$expand=assignments').message).toMatch(/\$expand is not supported/);
  });
});
