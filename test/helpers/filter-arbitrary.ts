import fc from 'fast-check';
import {
  comparisonOperators,
  type FilterExpression,
  type FilterLiteral,
  type ListField,
  type ListFields,
  stringFunctions,
} from '../../src/domain/list-query.js';

// Random, well-typed filter ASTs for a field allowlist (as the parser would produce them), and a
// printer back to OData text, so tests can check parse(print(ast)) = ast and run random ASTs as SQL.

const sampleStrings = ['alpha', 'Alpha', 'beta', 'zeta', '%', '_', '\\', "it's", '', 'É', 'a_b', '100%'];

const stringArbitrary = fc.oneof(
  fc.constantFrom(...sampleStrings),
  fc.string({ maxLength: 4, unit: 'grapheme-ascii' }).filter((s) => !s.includes('\u0000')),
);

const dateTimeArbitrary: fc.Arbitrary<FilterLiteral> = fc.oneof(
  fc.constant<FilterLiteral>({ type: 'dateTime', value: '0001-01-01T00:00:00.000Z', exact: true }),
  fc
    .record({
      // Around the fixture's rows: 2026-01-01 ± a day, at millisecond resolution.
      ms: fc.integer({ min: Date.UTC(2025, 11, 31), max: Date.UTC(2026, 0, 6) }),
      coarse: fc.boolean(),
      exact: fc.boolean(),
    })
    .map(({ ms, coarse, exact }): FilterLiteral => {
      const at = coarse ? ms - (ms % 3_600_000) : ms;
      return { type: 'dateTime', value: new Date(at).toISOString(), exact };
    }),
);

function typedLiteral(field: ListField): fc.Arbitrary<FilterLiteral> {
  switch (field.type) {
    case 'string':
      return stringArbitrary.map((value) => ({ type: 'string', value }));
    case 'guid':
      return fc.uuid().map((value) => ({ type: 'string', value: value.toLowerCase() }));
    case 'boolean':
      return fc.boolean().map((value) => ({ type: 'boolean', value }));
    case 'int32':
      return fc
        .oneof(fc.integer({ min: -25, max: 25 }), fc.constantFrom(-2147483648, 2147483647))
        .map((value) => ({ type: 'number', value }));
    case 'dateTimeOffset':
      return dateTimeArbitrary;
    case 'enum': {
      const graphEnum = field.enum;
      if (!graphEnum) throw new Error(`enum field ${field.name} without enum`);
      return fc
        .constantFrom(...graphEnum.names)
        .map((member) => ({ type: 'enum', enum: graphEnum.name, member }));
    }
    case 'collection':
      throw new Error('collections are not filterable');
  }
}

function flatten(kind: 'and' | 'or', operands: readonly FilterExpression[]): FilterExpression {
  const flat: FilterExpression[] = [];
  for (const operand of operands) {
    if (operand.kind === kind) flat.push(...operand.operands);
    else flat.push(operand);
  }
  return { kind, operands: flat };
}

/** Random well-typed filters over the filterable fields (nesting depth kept small). */
export function filterExpressionArbitrary(fields: ListFields): fc.Arbitrary<FilterExpression> {
  const filterable = Object.values(fields).filter((f) => f.filterable && f.type !== 'collection');
  const strings = filterable.filter((f) => f.type === 'string');
  const field = fc.constantFrom(...filterable);

  const compare = field.chain((f) =>
    fc
      .record({
        operator: fc.constantFrom(...comparisonOperators),
        value: fc.oneof(
          { weight: 6, arbitrary: typedLiteral(f) },
          { weight: 1, arbitrary: fc.constant({ type: 'null' } as const) },
        ),
      })
      .map(
        ({ operator, value }): FilterExpression => ({
          kind: 'compare',
          property: f.name,
          // Only eq/ne accept null.
          operator: value.type === 'null' && operator !== 'eq' && operator !== 'ne' ? 'eq' : operator,
          value,
        }),
      ),
  );
  const inList = field.chain((f) =>
    fc
      .array(
        fc.oneof(
          { weight: 5, arbitrary: typedLiteral(f) },
          { weight: 1, arbitrary: fc.constant({ type: 'null' } as const) },
        ),
        {
          minLength: 1,
          maxLength: 4,
        },
      )
      .map((values): FilterExpression => ({ kind: 'in', property: f.name, values })),
  );
  const stringFunction =
    strings.length === 0
      ? compare
      : fc
          .record({
            fn: fc.constantFrom(...stringFunctions),
            f: fc.constantFrom(...strings),
            value: stringArbitrary,
          })
          .map(
            ({ fn, f, value }): FilterExpression => ({
              kind: 'stringFunction',
              function: fn,
              property: f.name,
              value,
            }),
          );
  const atom = fc.oneof(
    { weight: 4, arbitrary: compare },
    { weight: 1, arbitrary: inList },
    { weight: 2, arbitrary: stringFunction },
  );

  const { node } = fc.letrec<{ node: FilterExpression }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', maxDepth: 4 },
      { weight: 5, arbitrary: atom },
      {
        weight: 1,
        arbitrary: fc.array(tie('node'), { minLength: 2, maxLength: 3 }).map((ops) => flatten('and', ops)),
      },
      {
        weight: 1,
        arbitrary: fc.array(tie('node'), { minLength: 2, maxLength: 3 }).map((ops) => flatten('or', ops)),
      },
      { weight: 1, arbitrary: tie('node').map((operand): FilterExpression => ({ kind: 'not', operand })) },
    ),
  }));
  return node;
}

/** OData text of a literal. */
export function printLiteral(literal: FilterLiteral): string {
  switch (literal.type) {
    case 'null':
      return 'null';
    case 'string':
      return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(literal.value)
        ? literal.value
        : `'${literal.value.replaceAll("'", "''")}'`;
    case 'number':
      return String(literal.value);
    case 'boolean':
      return String(literal.value);
    case 'dateTime':
      // An inexact instant: one digit past the milliseconds.
      return literal.exact ? literal.value : literal.value.replace('Z', '5Z');
    case 'enum':
      return `'${literal.member}'`;
  }
}

/** OData `$filter` text of an expression (composite operands parenthesised). */
export function printFilter(expression: FilterExpression): string {
  const child = (e: FilterExpression) =>
    e.kind === 'and' || e.kind === 'or' ? `(${printFilter(e)})` : printFilter(e);
  switch (expression.kind) {
    case 'and':
    case 'or':
      return expression.operands.map(child).join(` ${expression.kind} `);
    case 'not':
      return `not (${printFilter(expression.operand)})`;
    case 'compare':
      return `${expression.property} ${expression.operator} ${printLiteral(expression.value)}`;
    case 'in':
      return `${expression.property} in (${expression.values.map(printLiteral).join(',')})`;
    case 'stringFunction':
      return `${expression.function}(${expression.property},${printLiteral({ type: 'string', value: expression.value })})`;
    case 'isOf':
      throw new Error('the widget fixture has no types to test with isof');
  }
}
