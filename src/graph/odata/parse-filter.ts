import { errors, isVppdError } from '../../domain/errors.js';
import type { GraphVersion } from '../../domain/graph-enum.js';
import {
  type ComparisonOperator,
  comparisonOperators,
  type FilterExpression,
  type FilterLiteral,
  type ListField,
  type ListFields,
  type StringFunction,
  stringFunctions,
} from '../../domain/list-query.js';
import { normaliseDateTimeLiteral } from './date-time-literal.js';
import { clip, type ODataToken, tokenizeOData } from './odata-lexer.js';

/** What the filter parser needs to know besides the text. */
export interface ParseFilterOptions {
  /** The allowlist: wire property name → field. */
  readonly fields: ListFields;
  /** Graph type name for messages, e.g. `microsoft.graph.vppToken`. */
  readonly typeName: string;
  /** Decides which enum members exist (v1.0 lacks some). */
  readonly version: GraphVersion;
  /** Graph's evolvable-enum opt-in (`Prefer: include-unknown-enum-members`). */
  readonly includeUnknownEnumMembers?: boolean;
  /**
   * `isof('<type>')` on the listed items: each qualified type name (`microsoft.graph.mobileApp`) an
   * item may be tested against → the concrete types of this list that are of it (none: always false).
   * Absent: the list supports no `isof`.
   */
  readonly isOfTypes?: Readonly<Record<string, readonly string[]>>;
}

/** Limits that keep a filter's SQL small (every database has expression-depth and parameter limits). */
export const filterLimits = {
  /** Characters of `$filter` text. */
  maxLength: 4096,
  /** Nesting of parentheses and `not`. */
  maxDepth: 24,
  /** Conditions (comparisons, `in`, function calls). */
  maxConditions: 100,
  /** Literal values in all `in` lists together. */
  maxValues: 500,
} as const;

const option = '$filter';

/** OData operators vppd does not implement: named in the 400 instead of a generic syntax error. */
const unsupportedOperators = new Set(['has', 'add', 'sub', 'mul', 'div', 'divby', 'mod']);

/** An operand before it is typed against a property. */
type Operand =
  | { readonly kind: 'condition'; readonly expression: FilterExpression; readonly pos: number }
  | { readonly kind: 'property'; readonly name: string; readonly pos: number }
  | { readonly kind: 'literal'; readonly token: LiteralToken; readonly pos: number };

type LiteralToken =
  | Extract<ODataToken, { kind: 'string' | 'number' | 'dateTime' | 'date' | 'guid' | 'enumLiteral' }>
  | { readonly kind: 'true' | 'false' | 'null'; readonly pos: number };

const mirrored: Record<ComparisonOperator, ComparisonOperator> = {
  eq: 'eq',
  ne: 'ne',
  gt: 'lt',
  ge: 'le',
  lt: 'gt',
  le: 'ge',
};

/**
 * Parses a `$filter` value into the neutral expression tree, checking every property against the
 * allowlist and every literal against the property's type. Throws VppdError(badRequest | notSupported)
 * with a message naming exactly what is wrong.
 */
export function parseFilter(text: string, options: ParseFilterOptions): FilterExpression {
  if (text.trim() === '') throw errors.badRequest('The query option $filter has no value.');
  if (text.length > filterLimits.maxLength) {
    throw errors.badRequest(`$filter is longer than ${filterLimits.maxLength} characters.`);
  }
  return new FilterParser(tokenizeOData(text, option), options).parse();
}

class FilterParser {
  private index = 0;
  private depth = 0;
  private conditions = 0;
  private values = 0;

  constructor(
    private readonly tokens: readonly ODataToken[],
    private readonly options: ParseFilterOptions,
  ) {}

  parse(): FilterExpression {
    const expression = this.parseOr();
    const next = this.peek();
    if (next.kind !== 'end') this.unexpected(next, 'an operator (and, or) or the end of the filter');
    return expression;
  }

  private peek(): ODataToken {
    return this.tokens[this.index] ?? (this.tokens.at(-1) as ODataToken);
  }

  private take(): ODataToken {
    const token = this.peek();
    if (token.kind !== 'end') this.index += 1;
    return token;
  }

  private peekWord(): string | undefined {
    const token = this.peek();
    return token.kind === 'identifier' ? token.text.toLowerCase() : undefined;
  }

  private parseOr(): FilterExpression {
    const operands = [this.parseAnd()];
    while (this.peekWord() === 'or') {
      this.take();
      operands.push(this.parseAnd());
    }
    return combine('or', operands);
  }

  private parseAnd(): FilterExpression {
    const operands = [this.parseUnary()];
    while (this.peekWord() === 'and') {
      this.take();
      operands.push(this.parseUnary());
    }
    return combine('and', operands);
  }

  private parseUnary(): FilterExpression {
    if (this.peekWord() === 'not') {
      this.take();
      this.enter(this.peek());
      const operand = this.parseUnary();
      this.depth -= 1;
      return { kind: 'not', operand };
    }
    return this.parseComparison();
  }

  private parseComparison(): FilterExpression {
    const left = this.parseOperand();
    const word = this.peekWord();
    let result: FilterExpression;
    if (word !== undefined && (comparisonOperators as readonly string[]).includes(word)) {
      this.take();
      const right = this.parseOperand();
      result = this.compare(left, word as ComparisonOperator, right);
    } else if (word === 'in') {
      this.take();
      result = this.parseIn(left);
    } else {
      result = this.asCondition(left);
    }
    const after = this.peekWord();
    if (after !== undefined && unsupportedOperators.has(after)) {
      throw errors.notSupported(`$filter: the operator '${after}' is not supported.`);
    }
    return result;
  }

  private parseOperand(): Operand {
    const token = this.take();
    switch (token.kind) {
      case 'lparen': {
        this.enter(token);
        const expression = this.parseOr();
        this.expect('rparen', "')'");
        this.depth -= 1;
        return { kind: 'condition', expression, pos: token.pos };
      }
      case 'string':
      case 'number':
      case 'dateTime':
      case 'date':
      case 'guid':
      case 'enumLiteral':
        return { kind: 'literal', token, pos: token.pos };
      case 'identifier': {
        const word = token.text.toLowerCase();
        if (word === 'true' || word === 'false' || word === 'null') {
          return { kind: 'literal', token: { kind: word, pos: token.pos }, pos: token.pos };
        }
        if (this.peek().kind === 'lparen') return this.parseFunction(token.text, token.pos);
        if (unsupportedOperators.has(word) || word === 'and' || word === 'or' || word === 'in') {
          return this.unexpected(token, 'a property, a literal or (');
        }
        if ((comparisonOperators as readonly string[]).includes(word)) {
          return this.unexpected(token, 'a property, a literal or (');
        }
        if (word === 'not') return this.unexpected(token, 'a property, a literal or (');
        return { kind: 'property', name: token.text, pos: token.pos };
      }
      default:
        return this.unexpected(token, 'a property, a literal or (');
    }
  }

  private parseFunction(name: string, pos: number): Operand {
    const fn = name.toLowerCase();
    if (fn === 'isof') return this.parseIsOf(pos);
    if (!(stringFunctions as readonly string[]).includes(fn)) {
      const hint = fn === 'substringof' ? " (use contains(property,'text'))" : '';
      throw errors.notSupported(
        `$filter: the function '${clip(name)}' is not supported${hint}. Supported functions: ${stringFunctions.join(', ')}.`,
      );
    }
    this.take(); // (
    const args: Operand[] = [];
    if (this.peek().kind !== 'rparen') {
      for (;;) {
        args.push(this.parseOperand());
        if (this.peek().kind === 'comma') {
          this.take();
          continue;
        }
        break;
      }
    }
    this.expect('rparen', "')'");
    const [property, value] = args;
    if (args.length !== 2 || property === undefined || value === undefined) {
      throw errors.badRequest(
        `$filter: ${fn} takes 2 arguments (a property and a string), ${args.length} given at position ${pos}.`,
      );
    }
    if (property.kind !== 'property') {
      throw errors.notSupported(
        `$filter: the first argument of ${fn} must be a property (position ${property.pos}).`,
      );
    }
    const field = this.field(property.name, property.pos);
    if (field.type !== 'string') {
      throw errors.badRequest(
        `$filter: ${fn} applies to String properties; '${field.name}' is ${describeType(field)}.`,
      );
    }
    if (value.kind !== 'literal' || value.token.kind !== 'string') {
      throw errors.badRequest(
        `$filter: the second argument of ${fn} must be a quoted string such as 'text' (position ${value.pos}).`,
      );
    }
    this.count(1);
    return {
      kind: 'condition',
      expression: {
        kind: 'stringFunction',
        function: fn as StringFunction,
        property: field.name,
        value: value.token.value,
      },
      pos,
    };
  }

  /**
   * `isof('microsoft.graph.iosVppApp')` (or the unquoted OData form `isof(microsoft.graph.iosVppApp)`):
   * whether the item is of that type. The two-argument form (a property's type) is not supported.
   */
  private parseIsOf(pos: number): Operand {
    this.take(); // (
    const argument = this.take();
    if (this.peek().kind === 'comma') {
      throw errors.notSupported(
        `$filter: isof with two arguments (an expression and a type) is not supported; test the items themselves with isof('<type>') (position ${pos}).`,
      );
    }
    this.expect('rparen', "')' closing isof");
    const written =
      argument.kind === 'string'
        ? argument.value
        : argument.kind === 'identifier'
          ? argument.text
          : this.unexpected(argument, "a type name such as 'microsoft.graph.iosVppApp'");
    const table = this.options.isOfTypes;
    if (table === undefined) {
      throw errors.notSupported(`$filter: isof is not supported on ${this.options.typeName}.`);
    }
    const qualified = written.startsWith('graph.') ? `microsoft.${written}` : written;
    const typeNames = Object.hasOwn(table, qualified) ? table[qualified] : undefined;
    if (typeNames === undefined) {
      const near = Object.keys(table).find(
        (key) => key.toLowerCase() === qualified.toLowerCase() || key.endsWith(`.${written}`),
      );
      const hint =
        near === undefined ? '' : ` Did you mean '${near}'? (type names are qualified and case-sensitive)`;
      throw errors.badRequest(
        `$filter: isof: '${clip(written)}' is not ${this.options.typeName} or a type derived from it (position ${pos}).${hint}`,
      );
    }
    this.count(1);
    return { kind: 'condition', expression: { kind: 'isOf', typeNames }, pos };
  }

  private parseIn(left: Operand): FilterExpression {
    if (left.kind !== 'property') {
      throw errors.badRequest(`$filter: the left side of 'in' must be a property (position ${left.pos}).`);
    }
    const field = this.field(left.name, left.pos);
    this.expect('lparen', "'(' starting the list of values");
    const values: FilterLiteral[] = [];
    for (;;) {
      const operand = this.parseOperand();
      if (operand.kind !== 'literal') {
        throw errors.badRequest(
          `$filter: the list after 'in' holds literals only (position ${operand.pos}).`,
        );
      }
      values.push(this.literalFor(field, operand.token, 'eq'));
      if (this.peek().kind === 'comma') {
        this.take();
        continue;
      }
      break;
    }
    this.expect('rparen', "')' closing the list of values");
    this.count(1);
    this.values += values.length;
    if (this.values > filterLimits.maxValues) {
      throw errors.badRequest(`$filter holds more than ${filterLimits.maxValues} values in 'in' lists.`);
    }
    return { kind: 'in', property: field.name, values };
  }

  /** `left op right`, with a literal on the left turned around (`5 lt x` → `x gt 5`). */
  private compare(left: Operand, operator: ComparisonOperator, right: Operand): FilterExpression {
    if (left.kind === 'literal' && right.kind === 'property') {
      return this.compare(right, mirrored[operator], left);
    }
    if (left.kind === 'property' && right.kind === 'literal') {
      const field = this.field(left.name, left.pos);
      this.count(1);
      return {
        kind: 'compare',
        property: field.name,
        operator,
        value: this.literalFor(field, right.token, operator),
      };
    }
    // A condition compared with a Boolean: contains(x,'a') eq true, (a eq 1) ne false.
    const condition = left.kind === 'condition' ? left : right.kind === 'condition' ? right : undefined;
    const other = condition === left ? right : left;
    if (condition?.kind === 'condition' && other.kind === 'literal') {
      const kind = other.token.kind;
      if ((kind === 'true' || kind === 'false') && (operator === 'eq' || operator === 'ne')) {
        const keep = (kind === 'true') === (operator === 'eq');
        return keep ? condition.expression : { kind: 'not', operand: condition.expression };
      }
      throw errors.badRequest(
        `$filter: a condition can only be compared with true or false using eq or ne (position ${other.pos}).`,
      );
    }
    if (left.kind === 'property' && right.kind === 'property') {
      this.field(left.name, left.pos);
      if (!Object.hasOwn(this.options.fields, right.name)) {
        const error = unknownProperty(right.name, this.options, option, right.pos);
        throw errors.badRequest(`${error.message} Text is written in single quotes: '${clip(right.name)}'.`);
      }
      throw errors.notSupported(
        `$filter: comparing two properties ('${clip(left.name)}' ${operator} '${clip(right.name)}') is not supported; compare a property with a literal.`,
      );
    }
    if (left.kind === 'literal' && right.kind === 'literal') {
      throw errors.badRequest(
        `$filter: '${operator}' at position ${left.pos} compares two literals; one side must be a property.`,
      );
    }
    throw errors.badRequest(
      `$filter: '${operator}' at position ${left.pos} needs a property on one side and a literal on the other.`,
    );
  }

  /** An operand standing alone where a condition is expected. */
  private asCondition(operand: Operand): FilterExpression {
    if (operand.kind === 'condition') return operand.expression;
    if (operand.kind === 'property') {
      const field = this.field(operand.name, operand.pos);
      if (field.type === 'boolean') {
        this.count(1);
        return {
          kind: 'compare',
          property: field.name,
          operator: 'eq',
          value: { type: 'boolean', value: true },
        };
      }
      const next = this.peek();
      if (
        next.kind === 'end' ||
        next.kind === 'rparen' ||
        this.peekWord() === 'and' ||
        this.peekWord() === 'or'
      ) {
        throw errors.badRequest(
          `$filter: '${field.name}' is ${describeType(field)}, not a condition; compare it, e.g. ${field.name} eq ${exampleLiteral(field)}.`,
        );
      }
      return this.unexpected(next, 'a comparison operator (eq, ne, gt, ge, lt, le) or in');
    }
    const next = this.peek();
    if (
      next.kind !== 'end' &&
      next.kind !== 'rparen' &&
      this.peekWord() !== 'and' &&
      this.peekWord() !== 'or'
    ) {
      return this.unexpected(next, 'a comparison operator (eq, ne, gt, ge, lt, le) or in');
    }
    throw errors.badRequest(
      `$filter: a literal alone is not a condition (position ${operand.pos}); compare a property with it.`,
    );
  }

  /** Types a literal for a property, or throws a 400 saying what the property accepts. */
  private literalFor(field: ListField, token: LiteralToken, operator: ComparisonOperator): FilterLiteral {
    if (token.kind === 'null') {
      if (operator !== 'eq' && operator !== 'ne') {
        throw errors.badRequest(`$filter: null can only be compared with eq or ne (position ${token.pos}).`);
      }
      return { type: 'null' };
    }
    const mismatch = (): never => {
      throw errors.badRequest(
        `$filter: '${field.name}' is ${describeType(field)}; compare it with ${exampleLiteral(field)}-style literals (position ${token.pos}).`,
      );
    };
    switch (field.type) {
      case 'string':
        return token.kind === 'string' ? { type: 'string', value: token.value } : mismatch();
      case 'guid': {
        const text = token.kind === 'guid' ? token.text : token.kind === 'string' ? token.value : undefined;
        if (text === undefined) return mismatch();
        if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(text)) {
          throw errors.badRequest(`$filter: '${clip(text)}' is not a GUID (property '${field.name}').`);
        }
        // GUIDs are stored in lower case; comparing the lower-case form makes the case irrelevant.
        return { type: 'string', value: text.toLowerCase() };
      }
      case 'boolean':
        return token.kind === 'true' || token.kind === 'false'
          ? { type: 'boolean', value: token.kind === 'true' }
          : mismatch();
      case 'int32': {
        if (token.kind !== 'number') return mismatch();
        const value = Number(token.text);
        if (!Number.isInteger(value) || value < -2147483648 || value > 2147483647) {
          throw errors.badRequest(
            `$filter: '${clip(token.text)}' is not an Int32 (property '${field.name}', position ${token.pos}).`,
          );
        }
        return { type: 'number', value };
      }
      case 'dateTimeOffset': {
        if (token.kind === 'dateTime') {
          const normalised = normaliseDateTimeLiteral(token.text);
          if (normalised === undefined) {
            throw errors.badRequest(
              `$filter: '${clip(token.text)}' is not a valid date-time (position ${token.pos}); use e.g. 2026-01-01T00:00:00Z.`,
            );
          }
          return { type: 'dateTime', ...normalised };
        }
        if (token.kind === 'date') {
          throw errors.badRequest(
            `$filter: '${field.name}' is a DateTimeOffset: write a date and time such as ${token.text}T00:00:00Z (position ${token.pos}).`,
          );
        }
        if (token.kind === 'string') {
          throw errors.badRequest(
            `$filter: DateTimeOffset literals are written without quotes, e.g. ${field.name} ge 2026-01-01T00:00:00Z (position ${token.pos}).`,
          );
        }
        return mismatch();
      }
      case 'enum':
        return this.enumLiteral(field, token);
      case 'collection':
        throw errors.notSupported(
          `$filter: filtering on the collection property '${field.name}' is not supported.`,
        );
      default: {
        const unreachable: never = field.type;
        throw errors.internal(`list field type ${String(unreachable)}`);
      }
    }
  }

  private enumLiteral(field: ListField, token: LiteralToken): FilterLiteral {
    const graphEnum = field.enum;
    if (graphEnum === undefined)
      throw errors.internal(`list field ${field.name} is an enum without its enum`);
    let wire: string;
    if (token.kind === 'string') {
      wire = token.value;
    } else if (token.kind === 'enumLiteral') {
      const accepted = [`microsoft.graph.${graphEnum.name}`, `graph.${graphEnum.name}`];
      if (!accepted.includes(token.typeName)) {
        throw errors.badRequest(
          `$filter: '${clip(token.typeName)}' is not the type of '${field.name}' (${accepted[0]}).`,
        );
      }
      wire = token.value;
    } else {
      throw errors.badRequest(
        `$filter: '${field.name}' is the enum ${graphEnum.name}; compare it with a quoted member name such as '${graphEnum.allowed(this.enumOptions())[0] ?? ''}' (position ${token.pos}).`,
      );
    }
    try {
      const member = graphEnum.fromWire(wire, this.enumOptions());
      return { type: 'enum', enum: graphEnum.name, member };
    } catch (error) {
      if (!isVppdError(error)) throw error;
      throw errors.badRequest(
        `$filter: '${clip(wire)}' is not a member of ${graphEnum.name} (property '${field.name}'; member names are case-sensitive). Allowed members: ${graphEnum.allowed(this.enumOptions()).join(', ')}.`,
      );
    }
  }

  private enumOptions() {
    return {
      version: this.options.version,
      includeUnknownEnumMembers: this.options.includeUnknownEnumMembers ?? false,
    };
  }

  /** The allowlisted, filterable field of a property name. */
  private field(name: string, pos: number): ListField {
    const field = Object.hasOwn(this.options.fields, name) ? this.options.fields[name] : undefined;
    if (field === undefined) throw unknownProperty(name, this.options, option, pos);
    if (field.type === 'collection') {
      throw errors.notSupported(`$filter: filtering on the collection property '${name}' is not supported.`);
    }
    if (!field.filterable) throw errors.notSupported(`$filter: filtering on '${name}' is not supported.`);
    return field;
  }

  private count(conditions: number): void {
    this.conditions += conditions;
    if (this.conditions > filterLimits.maxConditions) {
      throw errors.badRequest(`$filter holds more than ${filterLimits.maxConditions} conditions.`);
    }
  }

  private enter(token: ODataToken): void {
    this.depth += 1;
    if (this.depth > filterLimits.maxDepth) {
      throw errors.badRequest(
        `$filter is nested more than ${filterLimits.maxDepth} levels deep (position ${token.pos}).`,
      );
    }
  }

  private expect(kind: 'lparen' | 'rparen', what: string): void {
    const token = this.peek();
    if (token.kind !== kind) this.unexpected(token, what);
    this.take();
  }

  private unexpected(token: ODataToken, expected: string): never {
    if (token.kind === 'identifier' && unsupportedOperators.has(token.text.toLowerCase())) {
      throw errors.notSupported(`$filter: the operator '${token.text.toLowerCase()}' is not supported.`);
    }
    const found = token.kind === 'end' ? 'the end of the filter' : `'${clip(describeToken(token))}'`;
    throw errors.badRequest(
      `Syntax error in $filter at position ${token.pos}: expected ${expected}, found ${found}.`,
    );
  }
}

/** `and`/`or` of several operands, flattened so chains do not nest. */
function combine(kind: 'and' | 'or', operands: FilterExpression[]): FilterExpression {
  if (operands.length === 1) return operands[0] as FilterExpression;
  const flat: FilterExpression[] = [];
  for (const operand of operands) {
    if (operand.kind === kind) flat.push(...operand.operands);
    else flat.push(operand);
  }
  return { kind, operands: flat };
}

/** The 400 for a property that is not in the allowlist, with a hint when only the case differs. */
export function unknownProperty(
  name: string,
  options: { readonly fields: ListFields; readonly typeName: string },
  where: string,
  pos?: number,
) {
  const lower = name.toLowerCase();
  const near = Object.keys(options.fields).find((key) => key.toLowerCase() === lower);
  const at = pos === undefined ? '' : ` (position ${pos})`;
  const hint = near === undefined ? '' : ` Property names are case-sensitive: did you mean '${near}'?`;
  return errors.badRequest(
    `${where}: could not find a property named '${clip(name)}' on type '${options.typeName}'${at}.${hint}`,
  );
}

function describeType(field: ListField): string {
  switch (field.type) {
    case 'string':
      return 'a String';
    case 'guid':
      return 'a Guid';
    case 'boolean':
      return 'a Boolean';
    case 'int32':
      return 'an Int32';
    case 'dateTimeOffset':
      return 'a DateTimeOffset';
    case 'enum':
      return `the enum ${field.enum?.name ?? ''}`;
    case 'collection':
      return 'a collection';
    default: {
      const unreachable: never = field.type;
      return String(unreachable);
    }
  }
}

function exampleLiteral(field: ListField): string {
  switch (field.type) {
    case 'string':
      return "'text'";
    case 'guid':
      return "'00000000-0000-0000-0000-000000000000'";
    case 'boolean':
      return 'true';
    case 'int32':
      return '42';
    case 'dateTimeOffset':
      return '2026-01-01T00:00:00Z';
    case 'enum':
      return `'${field.enum?.names[0] ?? ''}'`;
    case 'collection':
      return "('a')";
    default: {
      const unreachable: never = field.type;
      return String(unreachable);
    }
  }
}

function describeToken(token: ODataToken): string {
  switch (token.kind) {
    case 'lparen':
      return '(';
    case 'rparen':
      return ')';
    case 'comma':
      return ',';
    case 'end':
      return '';
    case 'string':
      return `'${token.value.replaceAll("'", "''")}'`;
    case 'enumLiteral':
      return `${token.typeName}'${token.value}'`;
    default:
      return token.text;
  }
}
