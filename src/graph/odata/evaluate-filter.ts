import { type FilterExpression, type FilterLiteral, typeProperty } from '../../domain/list-query.js';

/** A property value of an in-memory row, as `$filter` compares it. */
export type FilterValue = string | number | boolean | null;

/**
 * Evaluates a parsed `$filter` on an in-memory row (for the few collections vppd computes instead of
 * reading from a table, such as a function's result), with the storage compiler's rules: `eq`/`ne`/`in`
 * on strings are exact, `startswith`/`endswith`/`contains` case-insensitive, and OData's null rules
 * (`x eq null` only for null, `ne` true against null, ordering comparisons false on null).
 */
export function evaluateFilter(
  expression: FilterExpression,
  read: (property: string) => FilterValue,
): boolean {
  switch (expression.kind) {
    case 'and':
      return expression.operands.every((operand) => evaluateFilter(operand, read));
    case 'or':
      return expression.operands.some((operand) => evaluateFilter(operand, read));
    case 'not':
      return !evaluateFilter(expression.operand, read);
    case 'in':
      return expression.values.some((value) => compare(read(expression.property), 'eq', value));
    case 'compare':
      return compare(read(expression.property), expression.operator, expression.value);
    case 'stringFunction': {
      const value = read(expression.property);
      if (typeof value !== 'string') return false;
      const text = value.toLowerCase();
      const needle = expression.value.toLowerCase();
      if (expression.function === 'startswith') return text.startsWith(needle);
      if (expression.function === 'endswith') return text.endsWith(needle);
      return text.includes(needle);
    }
    case 'isOf': {
      // The row's concrete type is its `@odata.type` pseudo-property, as the storage compiler reads it.
      const type = read(typeProperty);
      return typeof type === 'string' && expression.typeNames.includes(type);
    }
    default: {
      const unreachable: never = expression;
      throw new Error(`unknown filter node ${JSON.stringify(unreachable)}`);
    }
  }
}

function compare(left: FilterValue, operator: string, literal: FilterLiteral): boolean {
  const right = literalValue(literal);
  if (right === null || left === null) {
    if (operator === 'eq') return left === right;
    if (operator === 'ne') return left !== right;
    return false;
  }
  switch (operator) {
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
    default:
      return false;
  }
}

function literalValue(literal: FilterLiteral): FilterValue {
  switch (literal.type) {
    case 'null':
      return null;
    case 'enum':
      return literal.member;
    default:
      return literal.value;
  }
}
