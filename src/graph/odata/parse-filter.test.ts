import { describe, expect, it } from 'vitest';
import { widgetFields, widgetTypeName } from '../../../test/helpers/list-query-fixture.js';
import { type ErrorCode, isVppdError } from '../../domain/errors.js';
import type { FilterExpression } from '../../domain/list-query.js';
import { filterLimits, parseFilter } from './parse-filter.js';

const parse = (text: string, version: 'beta' | 'v1.0' = 'beta'): FilterExpression =>
  parseFilter(text, { fields: widgetFields, typeName: widgetTypeName, version });

/** The VppdError a parse throws (fails the test if it parses or throws anything else). */
function failure(text: string, version: 'beta' | 'v1.0' = 'beta'): { code: ErrorCode; message: string } {
  try {
    parse(text, version);
  } catch (error) {
    if (!isVppdError(error)) throw error;
    return { code: error.code, message: error.message };
  }
  throw new Error(`expected '${text}' to be rejected`);
}

const str = (value: string) => ({ type: 'string', value }) as const;

describe('parseFilter: comparisons', () => {
  it.each(['eq', 'ne', 'gt', 'ge', 'lt', 'le'] as const)('%s on a string', (operator) => {
    expect(parse(`name ${operator} 'x'`)).toEqual({
      kind: 'compare',
      property: 'name',
      operator,
      value: str('x'),
    });
  });

  it('turns a literal on the left around', () => {
    expect(parse('5 lt size')).toEqual({
      kind: 'compare',
      property: 'size',
      operator: 'gt',
      value: { type: 'number', value: 5 },
    });
    expect(parse("'x' eq name")).toEqual(parse("name eq 'x'"));
    expect(parse('-1 ge size')).toMatchObject({ operator: 'le', value: { value: -1 } });
  });

  it("decodes strings with '' escaping, keeps spaces and unicode", () => {
    expect(parse("name eq 'it''s'")).toMatchObject({ value: str("it's") });
    expect(parse("name eq ''''")).toMatchObject({ value: str("'") });
    expect(parse("name eq ' a  b '")).toMatchObject({ value: str(' a  b ') });
    expect(parse("name eq 'Зета 🙂'")).toMatchObject({ value: str('Зета 🙂') });
    expect(parse("name eq ''")).toMatchObject({ value: str('') });
    expect(parse("name eq'x'")).toEqual(parse("name eq 'x'"));
  });

  it('accepts operators, functions and keywords in any case (OData 4.01)', () => {
    expect(parse("name EQ 'x' AND NOT enabled")).toEqual(parse("name eq 'x' and not enabled"));
    expect(parse("StartsWith(name,'a') or size Eq NULL")).toEqual(
      parse("startswith(name,'a') or size eq null"),
    );
  });

  it('null with eq / ne only', () => {
    expect(parse('note eq null')).toMatchObject({ operator: 'eq', value: { type: 'null' } });
    expect(parse('null ne note')).toMatchObject({ operator: 'ne', value: { type: 'null' } });
    expect(failure('size gt null')).toMatchObject({
      code: 'badRequest',
      message: expect.stringContaining('eq or ne'),
    });
  });
});

describe('parseFilter: typed literals', () => {
  it('enum members by wire name, case-sensitive, with the allowed members in the error', () => {
    expect(parse("status eq 'failed'")).toMatchObject({
      value: { type: 'enum', enum: 'vppTokenSyncStatus', member: 'failed' },
    });
    const wrongCase = failure("status eq 'Failed'");
    expect(wrongCase.code).toBe('badRequest');
    expect(wrongCase.message).toContain("'Failed' is not a member of vppTokenSyncStatus");
    expect(wrongCase.message).toContain('Allowed members: none, inProgress, completed, failed');
    expect(failure('status eq 3').message).toContain("quoted member name such as 'none'");
  });

  it('qualified enum literals of the right type', () => {
    expect(parse("state eq microsoft.graph.vppTokenState'expired'")).toEqual(parse("state eq 'expired'"));
    expect(parse("state eq graph.vppTokenState'expired'")).toEqual(parse("state eq 'expired'"));
    expect(failure("state eq microsoft.graph.vppTokenSyncStatus'failed'").message).toContain(
      'is not the type of',
    );
  });

  it('enum members missing in v1.0 are rejected there', () => {
    expect(parse("state eq 'duplicateLocationId'")).toMatchObject({
      value: { member: 'duplicateLocationId' },
    });
    expect(failure("state eq 'duplicateLocationId'", 'v1.0').message).not.toContain('duplicateLocationId,');
  });

  it('dates: unquoted, with Z or an offset, normalised to UTC milliseconds', () => {
    expect(parse('createdDateTime ge 2026-01-01T00:00:00Z')).toMatchObject({
      value: { type: 'dateTime', value: '2026-01-01T00:00:00.000Z', exact: true },
    });
    expect(parse('createdDateTime ge 2026-01-01T02:30:00+02:00')).toMatchObject({
      value: { value: '2026-01-01T00:30:00.000Z' },
    });
    expect(parse('createdDateTime ge 2026-01-01T00:00Z')).toMatchObject({
      value: { value: '2026-01-01T00:00:00.000Z' },
    });
    // A `+` left unencoded in a URL arrives as a space.
    expect(parse('createdDateTime ge 2026-01-01T02:00:00 02:00')).toMatchObject({
      value: { value: '2026-01-01T00:00:00.000Z' },
    });
    expect(parse('createdDateTime lt 2026-07-17T14:50:53.5002993Z')).toMatchObject({
      value: { value: '2026-07-17T14:50:53.500Z', exact: false },
    });
    expect(parse('lastSeenDateTime eq 0001-01-01T00:00:00Z')).toMatchObject({
      value: { value: '0001-01-01T00:00:00.000Z' },
    });
  });

  it('dates: quoted, date-only and impossible dates are 400s that say how to write them', () => {
    expect(failure("createdDateTime ge '2026-01-01T00:00:00Z'").message).toContain('without quotes');
    expect(failure('createdDateTime ge 2026-01-01').message).toContain('2026-01-01T00:00:00Z');
    expect(failure('createdDateTime ge 2026-02-30T00:00:00Z').message).toContain('not a valid date-time');
    expect(failure('createdDateTime ge 2026-01-01T24:00:00Z').code).toBe('badRequest');
    expect(failure('createdDateTime ge 2026-01-01T00:00:00').code).toBe('badRequest');
  });

  it('booleans, int32 and guids', () => {
    expect(parse('enabled eq false')).toMatchObject({ value: { type: 'boolean', value: false } });
    expect(failure("enabled eq 'true'").message).toContain("'enabled' is a Boolean");
    expect(parse('size eq -2147483648')).toMatchObject({ value: { value: -2147483648 } });
    expect(failure('size eq 2147483648').message).toContain('not an Int32');
    expect(failure('size eq 1.5').message).toContain('not an Int32');
    expect(failure("size eq '1'").code).toBe('badRequest');
    const id = '0A1B2C3D-0000-4000-8000-00000000000F';
    expect(parse(`id eq ${id}`)).toMatchObject({ value: str(id.toLowerCase()) });
    expect(parse(`id eq '${id}'`)).toMatchObject({ value: str(id.toLowerCase()) });
    expect(failure("id eq 'abc'").message).toContain('not a GUID');
  });

  it('strings need quotes', () => {
    expect(failure('name eq alpha').message).toContain("could not find a property named 'alpha'");
    expect(failure('name eq 5').message).toContain("'name' is a String");
    expect(failure('name eq "x"').message).toContain('single quotes');
    expect(failure("name eq 'x").message).toContain('not terminated');
  });
});

describe('parseFilter: logic and structure', () => {
  it('precedence: not > comparison > and > or; parentheses override', () => {
    expect(parse("name eq 'a' or name eq 'b' and enabled")).toEqual({
      kind: 'or',
      operands: [parse("name eq 'a'"), { kind: 'and', operands: [parse("name eq 'b'"), parse('enabled')] }],
    });
    expect(parse("(name eq 'a' or name eq 'b') and enabled")).toEqual({
      kind: 'and',
      operands: [{ kind: 'or', operands: [parse("name eq 'a'"), parse("name eq 'b'")] }, parse('enabled')],
    });
    expect(parse("not name eq 'a'")).toEqual({ kind: 'not', operand: parse("name eq 'a'") });
  });

  it('flattens and/or chains so long filters stay shallow', () => {
    const chain = parse("name eq 'a' and (size gt 1 and enabled) and note eq null");
    expect(chain.kind).toBe('and');
    expect(chain.kind === 'and' && chain.operands).toHaveLength(4);
  });

  it('a Boolean property alone is a condition; other properties are not', () => {
    expect(parse('enabled')).toEqual(parse('enabled eq true'));
    expect(parse('not archived')).toEqual({ kind: 'not', operand: parse('archived eq true') });
    expect(failure('name').message).toContain("'name' is a String, not a condition");
    expect(failure("'x'").message).toContain('a literal alone is not a condition');
    expect(failure('true').code).toBe('badRequest');
  });

  it('in lists', () => {
    expect(parse("status in ('failed', 'none', null)")).toEqual({
      kind: 'in',
      property: 'status',
      values: [
        { type: 'enum', enum: 'vppTokenSyncStatus', member: 'failed' },
        { type: 'enum', enum: 'vppTokenSyncStatus', member: 'none' },
        { type: 'null' },
      ],
    });
    expect(parse("name in ('a')")).toMatchObject({ kind: 'in', values: [str('a')] });
    expect(failure('name in ()').code).toBe('badRequest');
    expect(failure("name in ['a']").message).toContain("('a','b')");
    expect(failure("'a' in ('a')").message).toContain("left side of 'in'");
    expect(failure("status in ('Failed')").message).toContain('Allowed members');
    expect(failure('name in (name)').message).toContain('literals only');
  });

  it('string functions, alone or compared with a Boolean', () => {
    expect(parse("startswith(name,'Al')")).toEqual({
      kind: 'stringFunction',
      function: 'startswith',
      property: 'name',
      value: 'Al',
    });
    expect(parse("endswith(name, 'a') eq true")).toEqual(parse("endswith(name,'a')"));
    expect(parse("contains(name,'a') eq false")).toEqual({
      kind: 'not',
      operand: parse("contains(name,'a')"),
    });
    expect(parse("true ne contains(name,'a')")).toEqual({
      kind: 'not',
      operand: parse("contains(name,'a')"),
    });
    expect(failure("contains(name,'a') eq 1").message).toContain('true or false');
    expect(failure("contains('a',name)").message).toContain('must be a property');
    expect(failure('contains(name)').message).toContain('takes 2 arguments');
    expect(failure("contains(name,'a','b')").message).toContain('takes 2 arguments');
    expect(failure('contains(name,5)').message).toContain('quoted string');
    expect(failure("contains(size,'1')").message).toContain('String properties');
  });
});

describe('parseFilter: what is not supported is named', () => {
  it.each([
    ["tolower(name) eq 'a'", "function 'tolower'"],
    ["substringof('a',name)", 'use contains'],
    ['length(name) gt 1', "function 'length'"],
    ["tags/any(t: t eq 'x')", 'lambda operators'],
    ["name/x eq 'a'", 'property paths'],
    ['size add 1 eq 2', "operator 'add'"],
    ["state has microsoft.graph.vppTokenState'valid'", "operator 'has'"],
    ['name eq @p', 'parameter aliases'],
    ["$it/name eq 'a'", '$it'],
    ["name eq duration'P1D'", 'typed literal'],
    ['name eq size', 'comparing two properties'],
    ["tags eq 'a'", "collection property 'tags'"],
    ["secret eq 'a'", "filtering on 'secret'"],
  ])('%s', (text, fragment) => {
    const error = failure(text);
    expect(error.code).toBe('notSupported');
    expect(error.message).toContain(fragment);
  });

  it('unknown properties are 400s, with a hint when only the case differs', () => {
    const error = failure("Name eq 'a'");
    expect(error).toMatchObject({ code: 'badRequest' });
    expect(error.message).toContain(
      "could not find a property named 'Name' on type 'microsoft.graph.widget'",
    );
    expect(error.message).toContain("did you mean 'name'");
    expect(failure("colour eq 'red'").message).not.toContain('did you mean');
    // Inherited object keys are not properties.
    expect(failure("constructor eq 'x'").message).toContain("property named 'constructor'");
  });
});

describe('parseFilter: syntax errors and limits', () => {
  it.each([
    '',
    '   ',
    'name eq',
    "name eq 'a' and",
    "(name eq 'a'",
    "name eq 'a')",
    "name eq 'a' name",
    'eq eq 1',
    "name ! 'a'",
    'size eq 12abc',
    "and name eq 'a'",
    'size eq - 1',
    'startswith',
    "name eq 'a',",
  ])('%j is a 400 saying where', (text) => {
    const error = failure(text);
    expect(error.code).toBe('badRequest');
    expect(error.message.length).toBeGreaterThan(10);
  });

  it('deep nesting, too many conditions and too long text are 400s, not stack overflows', () => {
    const deep = `${'('.repeat(5000)}enabled${')'.repeat(5000)}`;
    expect(failure(deep.slice(0, 4000)).message).toContain('nested more than');
    expect(failure(`${'not '.repeat(filterLimits.maxDepth + 1)}enabled`).message).toContain(
      'nested more than',
    );
    expect(
      failure(
        Array(filterLimits.maxConditions + 1)
          .fill('enabled')
          .join(' and '),
      ).message,
    ).toContain('more than 100 conditions');
    expect(failure(`name eq '${'x'.repeat(filterLimits.maxLength)}'`).message).toContain('longer than');
    const values = Array.from({ length: 300 }, (_, i) => i).join(',');
    expect(failure(`size in (${values}) or size in (${values})`).message).toContain("values in 'in' lists");
    expect(failure("name eq 'a\u0000b'").message).toContain('NUL');
  });

  it('accepts filters at the limits', () => {
    const nested = `${'('.repeat(filterLimits.maxDepth)}enabled${')'.repeat(filterLimits.maxDepth)}`;
    expect(parse(nested)).toEqual(parse('enabled'));
    const many = Array(filterLimits.maxConditions).fill('enabled').join(' or ');
    expect(parse(many)).toMatchObject({ kind: 'or' });
  });
});

describe("parseFilter: isof('<type>')", () => {
  const ios = 'microsoft.graph.iosVppApp';
  const mac = 'microsoft.graph.macOsVppApp';
  const isOfTypes = {
    'microsoft.graph.mobileApp': [ios, mac],
    [ios]: [ios],
    [mac]: [mac],
    'microsoft.graph.managedApp': [],
  };
  const typed = (text: string) =>
    parseFilter(text, {
      fields: widgetFields,
      typeName: 'microsoft.graph.mobileApp',
      version: 'beta',
      isOfTypes,
    });
  const typedFailure = (text: string) => {
    try {
      typed(text);
    } catch (error) {
      if (!isVppdError(error)) throw error;
      return { code: error.code, message: error.message };
    }
    throw new Error(`expected '${text}' to be rejected`);
  };

  it('resolves the type, quoted or not, with the namespace or its alias, to the concrete types', () => {
    expect(typed(`isof('${ios}')`)).toEqual({ kind: 'isOf', typeNames: [ios] });
    expect(typed(`isof(${mac})`)).toEqual({ kind: 'isOf', typeNames: [mac] });
    expect(typed("isof('graph.iosVppApp')")).toEqual({ kind: 'isOf', typeNames: [ios] });
    expect(typed("ISOF('microsoft.graph.mobileApp')")).toEqual({ kind: 'isOf', typeNames: [ios, mac] });
    expect(typed("isof('microsoft.graph.managedApp')")).toEqual({ kind: 'isOf', typeNames: [] });
  });

  it('combines with and/or/not and compares with true/false', () => {
    expect(typed(`not isof('${ios}')`)).toEqual({ kind: 'not', operand: { kind: 'isOf', typeNames: [ios] } });
    expect(typed(`isof('${ios}') and name eq 'x'`)).toEqual({
      kind: 'and',
      operands: [
        { kind: 'isOf', typeNames: [ios] },
        { kind: 'compare', property: 'name', operator: 'eq', value: str('x') },
      ],
    });
    expect(typed(`isof('${ios}') or (isof('${mac}'))`)).toEqual({
      kind: 'or',
      operands: [
        { kind: 'isOf', typeNames: [ios] },
        { kind: 'isOf', typeNames: [mac] },
      ],
    });
    expect(typed(`isof('${ios}') eq false`)).toEqual({
      kind: 'not',
      operand: { kind: 'isOf', typeNames: [ios] },
    });
  });

  it('names what it cannot do', () => {
    expect(typedFailure("isof(name,'microsoft.graph.iosVppApp')")).toMatchObject({
      code: 'notSupported',
      message: expect.stringMatching(/isof with two arguments/),
    });
    expect(typedFailure("isof('microsoft.graph.user')").message).toMatch(
      /'microsoft.graph.user' is not microsoft.graph.mobileApp or a type derived from it/,
    );
    expect(typedFailure("isof('iosVppApp')").message).toMatch(/Did you mean 'microsoft.graph.iosVppApp'/);
    expect(typedFailure("isof('microsoft.graph.IOSVPPAPP')").message).toMatch(/Did you mean/);
    expect(typedFailure('isof(5)').code).toBe('badRequest');
    expect(failure("isof('microsoft.graph.iosVppApp')")).toMatchObject({
      code: 'notSupported',
      message: expect.stringMatching(/isof is not supported on/),
    });
  });
});
