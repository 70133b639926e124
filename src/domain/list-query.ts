import type { GraphEnum } from './graph-enum.js';

// The neutral form of a Graph list request's query options ($select, $filter, $orderby, $top, $skip,
// $count, $skiptoken): the OData parser in graph/ produces it, the storage compiler consumes it. Pure
// data, no wire syntax and no SQL.

/** How a listable property is typed, which decides which literals and operators it accepts. */
export const listFieldTypes = [
  'string',
  'enum',
  'dateTimeOffset',
  'boolean',
  'int32',
  'guid',
  'collection',
] as const;
export type ListFieldType = (typeof listFieldTypes)[number];

/** One property of a listed entity type, as the query options see it (keyed by its wire name). */
export interface ListField {
  /** The wire (Graph) property name. */
  readonly name: string;
  readonly type: ListFieldType;
  /** The Graph enum of an `enum` field: its literals are decoded with `fromWire` (case-sensitive). */
  readonly enum?: GraphEnum<string>;
  /** Whether `$filter` may use the property. */
  readonly filterable: boolean;
  /** Whether `$orderby` may use the property. */
  readonly sortable: boolean;
}

/** The allowlist of a list: wire property name → field. Properties not here do not exist for queries. */
export type ListFields = Readonly<Record<string, ListField>>;

export const comparisonOperators = ['eq', 'ne', 'gt', 'ge', 'lt', 'le'] as const;
export type ComparisonOperator = (typeof comparisonOperators)[number];

/** The string functions `$filter` supports; all three compare case-insensitively. */
export const stringFunctions = ['startswith', 'endswith', 'contains'] as const;
export type StringFunction = (typeof stringFunctions)[number];

/** A typed literal of a filter. */
export type FilterLiteral =
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'number'; readonly value: number }
  | { readonly type: 'boolean'; readonly value: boolean }
  | { readonly type: 'null' }
  /**
   * An instant in UTC, `value` in the fixed-width form `YYYY-MM-DDTHH:mm:ss.sssZ`. When the literal
   * was more precise than milliseconds, `value` is truncated and `exact` is false: the real instant
   * lies strictly between `value` and `value` + 1 ms (comparisons use that, so nothing is rounded).
   */
  | { readonly type: 'dateTime'; readonly value: string; readonly exact: boolean }
  /** A member of a Graph enum, by name (already checked against the enum). */
  | { readonly type: 'enum'; readonly enum: string; readonly member: string };

export type FilterLiteralType = FilterLiteral['type'];

/** A `$filter` expression tree. `and`/`or` are n-ary (flattened) so deep chains stay shallow. */
export type FilterExpression =
  | { readonly kind: 'and'; readonly operands: readonly FilterExpression[] }
  | { readonly kind: 'or'; readonly operands: readonly FilterExpression[] }
  | { readonly kind: 'not'; readonly operand: FilterExpression }
  /** `property <operator> literal` (a literal written on the left is turned around by the parser). */
  | {
      readonly kind: 'compare';
      readonly property: string;
      readonly operator: ComparisonOperator;
      readonly value: FilterLiteral;
    }
  /** `property in (v1, v2, ...)`, at least one value. */
  | { readonly kind: 'in'; readonly property: string; readonly values: readonly FilterLiteral[] }
  /** `startswith(property, 'text')` and friends. */
  | {
      readonly kind: 'stringFunction';
      readonly function: StringFunction;
      readonly property: string;
      readonly value: string;
    }
  /**
   * `isof('<type>')` on the listed entity, resolved by the parser into the concrete types (qualified
   * names, `microsoft.graph.iosVppApp`) an item must have: none when no item can be of the type.
   */
  | { readonly kind: 'isOf'; readonly typeNames: readonly string[] };

/** The pseudo-property holding an item's concrete type (its `@odata.type`), for `isOf` filters. */
export const typeProperty = '@odata.type';

export type SortDirection = 'asc' | 'desc';

/** One `$orderby` key. */
export interface OrderKey {
  readonly property: string;
  readonly direction: SortDirection;
}

/** A list request's query options, validated and resolved into a page to read. */
export interface ListQuery {
  /** Properties to return; undefined = all (no `$select`, or `$select=*`). */
  readonly select?: readonly string[];
  /** Navigation properties to expand inline (`$expand`), where the list allows it. */
  readonly expand?: readonly string[];
  readonly filter?: FilterExpression;
  /** `$orderby` keys in order (the storage appends the primary key to make paging stable). */
  readonly orderBy: readonly OrderKey[];
  /** `$top` as sent, if sent. */
  readonly top?: number;
  /** `$skip` as sent (0 when absent). */
  readonly skip: number;
  /** `$count=true`: include the total number of matching items. */
  readonly count: boolean;
  /** Index of the first item of this page: from `$skiptoken` when present, else `$skip`. */
  readonly offset: number;
  /** How many items this page holds at most (server-driven paging: `$top` capped by the max page). */
  readonly pageSize: number;
}
