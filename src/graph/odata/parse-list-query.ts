import { errors } from '../../domain/errors.js';
import type { GraphVersion } from '../../domain/graph-enum.js';
import type { ListFields, ListQuery, OrderKey } from '../../domain/list-query.js';
import { clip, tokenizeOData } from './odata-lexer.js';
import { parseFilter, unknownProperty } from './parse-filter.js';
import { decodeSkipToken, maxOffset } from './skip-token.js';

/**
 * Server-driven paging (docs/graph-api.md, "Query options"): a page holds `$top` items when `$top`
 * is given (Graph treats it as the page size, and sends `@odata.nextLink` while more remain), else
 * {@link defaultPageSize}. `$top` above {@link maxPageSize} is capped to it — the rest is still
 * reachable through `@odata.nextLink`, so nothing is silently dropped. `$top=0` returns no items.
 */
export const defaultPageSize = 100;
export const maxPageSize = 999;

/** The query options a list understands (names without `$`). */
export const listQueryOptions = ['select', 'filter', 'orderby', 'top', 'skip', 'count', 'skiptoken'] as const;
export type ListQueryOption = (typeof listQueryOptions)[number];

/** OData system query options vppd knows of but does not implement: a 400 naming them. */
const unsupportedOptions: Readonly<Record<string, string>> = {
  expand: 'The query option $expand is not supported: this resource has no navigation properties to expand.',
  search: "The query option $search is not supported; use $filter with contains(property,'text').",
  apply: 'The query option $apply (aggregation) is not supported.',
  compute: 'The query option $compute is not supported.',
  levels: 'The query option $levels is not supported.',
  index: 'The query option $index is not supported.',
  schemaversion: 'The query option $schemaversion is not supported.',
  deltatoken: 'The query option $deltatoken is not supported: this resource has no delta query.',
  id: 'The query option $id is not supported.',
};

/** Raw query input: the query string (with or without `?`), URLSearchParams, or a parsed record. */
export type ListQueryInput =
  | string
  | URLSearchParams
  | Readonly<Record<string, string | readonly string[] | undefined>>;

export interface ParseListQueryOptions {
  /** The allowlist: wire property name → field (`$select`, `$filter`, `$orderby` use it). */
  readonly fields: ListFields;
  /** Graph type name for messages, e.g. `microsoft.graph.vppToken`. */
  readonly typeName: string;
  /**
   * `beta`: the `$` prefix is optional (`filter=` is `$filter=`). `v1.0`: it is required; a `$`-less
   * parameter named like a query option gets a 400 telling the caller to add the `$` (never ignored).
   */
  readonly version: GraphVersion;
  /** Options this request accepts (default: all of {@link listQueryOptions}); others get a 400. */
  readonly allowedOptions?: readonly ListQueryOption[];
  readonly includeUnknownEnumMembers?: boolean;
  readonly defaultPageSize?: number;
  readonly maxPageSize?: number;
  /** `isof` type tests of the listed items (see `ParseFilterOptions.isOfTypes`). */
  readonly isOfTypes?: Readonly<Record<string, readonly string[]>>;
  /** Navigation properties `$expand` may name; absent: `$expand` is refused. */
  readonly expandable?: readonly string[];
}

/**
 * Parses and validates a list request's OData query options into a {@link ListQuery}. Every option is
 * either honoured or rejected: VppdError(badRequest) for malformed values, duplicates and unknown
 * properties; VppdError(notSupported) for options, functions and operators vppd does not implement.
 * As on Graph, parameters that are not OData system query options (no `$`, and not an option's name:
 * `_=1700000000` cache busters, `api-version`, …) are ignored, and `$format=json` (or
 * `application/json`) is accepted since JSON is what every response is; another `$format` is a 400.
 */
export function parseListQuery(input: ListQueryInput, options: ParseListQueryOptions): ListQuery {
  const raw = collectOptions(queryPairs(input), options);
  const fieldOptions = { fields: options.fields, typeName: options.typeName };

  const select = raw.select === undefined ? undefined : parseSelect(raw.select, fieldOptions);
  const filter =
    raw.filter === undefined
      ? undefined
      : parseFilter(raw.filter, {
          ...fieldOptions,
          version: options.version,
          ...(options.includeUnknownEnumMembers === undefined
            ? {}
            : { includeUnknownEnumMembers: options.includeUnknownEnumMembers }),
          ...(options.isOfTypes === undefined ? {} : { isOfTypes: options.isOfTypes }),
        });
  const expand =
    raw.expand === undefined
      ? undefined
      : parseExpand(raw.expand, options.expandable ?? [], options.typeName);
  const orderBy = raw.orderby === undefined ? [] : parseOrderBy(raw.orderby, fieldOptions);
  const top = raw.top === undefined ? undefined : parseNonNegative('$top', raw.top);
  const skip = raw.skip === undefined ? 0 : parseNonNegative('$skip', raw.skip);
  const count = raw.count === undefined ? false : parseCount(raw.count);
  const offset =
    raw.skiptoken === undefined
      ? skip
      : decodeSkipToken(raw.skiptoken, { ...(filter ? { filter } : {}), orderBy, skip });
  const max = options.maxPageSize ?? maxPageSize;
  const pageSize =
    top === undefined ? Math.min(options.defaultPageSize ?? defaultPageSize, max) : Math.min(top, max);
  return {
    ...(select ? { select } : {}),
    ...(expand ? { expand } : {}),
    ...(filter ? { filter } : {}),
    orderBy,
    ...(top === undefined ? {} : { top }),
    skip,
    count,
    offset,
    pageSize,
  };
}

/** Decoded `name=value` pairs of the input, in order, duplicates kept. */
function queryPairs(input: ListQueryInput): Array<[string, string]> {
  if (typeof input === 'string') {
    const text = input.startsWith('?') ? input.slice(1) : input;
    const pairs: Array<[string, string]> = [];
    for (const piece of text.split('&')) {
      if (piece === '') continue;
      const eq = piece.indexOf('=');
      const name = eq < 0 ? piece : piece.slice(0, eq);
      const value = eq < 0 ? '' : piece.slice(eq + 1);
      pairs.push([decodeQueryComponent(name), decodeQueryComponent(value)]);
    }
    return pairs;
  }
  if (input instanceof URLSearchParams) return [...input.entries()];
  const pairs: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if (typeof value === 'string') pairs.push([name, value]);
    else for (const item of value) pairs.push([name, item]);
  }
  return pairs;
}

/** Form-style decoding (`+` is a space), as Graph clients and URLSearchParams expect. */
function decodeQueryComponent(text: string): string {
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    throw errors.badRequest(`The query string holds malformed percent-encoding near '${clip(text)}'.`);
  }
}

/** Maps parameter names to query options: rejects unknown, unsupported and duplicate ones. */
function collectOptions(
  pairs: ReadonlyArray<readonly [string, string]>,
  options: ParseListQueryOptions,
): Partial<Record<ListQueryOption | 'expand', string>> {
  const allowed = new Set<string>(options.allowedOptions ?? listQueryOptions);
  const known = new Set<string>([...listQueryOptions, ...Object.keys(unsupportedOptions), 'format']);
  const found: Partial<Record<ListQueryOption | 'expand', string>> = {};
  for (const [name, value] of pairs) {
    const dollar = name.startsWith('$');
    // OData 4.01: system query option names are case-insensitive.
    const bare = (dollar ? name.slice(1) : name).toLowerCase();
    if (!dollar) {
      // Not a system query option (a cache buster, a proxy's parameter): ignored, as on Graph.
      if (!known.has(bare)) continue;
      if (options.version === 'v1.0') {
        throw errors.badRequest(
          `On /v1.0 query options start with '$': use '$${bare}' instead of '${clip(name)}' (the '$' is optional on /beta only).`,
        );
      }
    }
    if (bare === 'format') {
      checkFormat(value);
      continue;
    }
    if (bare === 'expand' && options.expandable !== undefined) {
      if (found.expand !== undefined)
        throw errors.badRequest('The query option $expand is specified more than once.');
      found.expand = value;
      continue;
    }
    const unsupported = unsupportedOptions[bare];
    if (unsupported !== undefined) throw errors.notSupported(unsupported);
    if (!(listQueryOptions as readonly string[]).includes(bare)) {
      throw errors.notSupported(
        `'${clip(name)}' is not a supported OData query option. Supported: ${[...allowed].map((o) => `$${o}`).join(', ')}.`,
      );
    }
    if (!allowed.has(bare)) {
      throw errors.notSupported(`The query option $${bare} is not supported on this request.`);
    }
    const key = bare as ListQueryOption;
    if (found[key] !== undefined) {
      throw errors.badRequest(`The query option $${key} is specified more than once.`);
    }
    found[key] = value;
  }
  return found;
}

/** `$expand=a,b` → navigation property names (`*`: all of them); nested options are not supported. */
export function parseExpand(text: string, expandable: readonly string[], typeName: string): string[] {
  if (text.trim() === '') throw errors.badRequest('The query option $expand has no value.');
  const out: string[] = [];
  for (const item of text.split(',')) {
    const name = item.trim();
    if (name === '*') {
      for (const each of expandable) if (!out.includes(each)) out.push(each);
      continue;
    }
    if (/[/($]/.test(name)) {
      throw errors.notSupported(
        `$expand: '${clip(name)}' is not supported; expand navigation properties by name, without nested options.`,
      );
    }
    if (!expandable.includes(name)) {
      throw errors.badRequest(
        `$expand: could not find a navigation property named '${clip(name)}' on type '${typeName}'.${
          expandable.length > 0 ? ` Expandable: ${expandable.join(', ')}.` : ''
        }`,
      );
    }
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/** `$select=a,b` → property names (`*` = all → undefined). */
export function parseSelect(
  text: string,
  options: { readonly fields: ListFields; readonly typeName: string },
): string[] | undefined {
  if (text.trim() === '') throw errors.badRequest('The query option $select has no value.');
  const selected: string[] = [];
  let all = false;
  for (const item of text.split(',')) {
    const name = item.trim();
    if (name === '*') {
      all = true;
      continue;
    }
    if (name === '') throw errors.badRequest(`$select holds an empty item: '${clip(text)}'.`);
    if (/[/(]/.test(name)) {
      throw errors.notSupported(
        `$select: '${clip(name)}' is not supported; select top-level properties only.`,
      );
    }
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw errors.badRequest(`$select: '${clip(name)}' is not a property name.`);
    }
    if (!Object.hasOwn(options.fields, name)) throw unknownProperty(name, options, '$select');
    if (!selected.includes(name)) selected.push(name);
  }
  return all ? undefined : selected;
}

/** `$orderby=a desc,b` → order keys; a property may appear once. */
export function parseOrderBy(
  text: string,
  options: { readonly fields: ListFields; readonly typeName: string },
): OrderKey[] {
  if (text.trim() === '') throw errors.badRequest('The query option $orderby has no value.');
  const tokens = tokenizeOData(text, '$orderby');
  const keys: OrderKey[] = [];
  let i = 0;
  const syntax = (pos: number, expected: string): never => {
    throw errors.badRequest(`Syntax error in $orderby at position ${pos}: expected ${expected}.`);
  };
  for (;;) {
    const token = tokens[i++];
    if (token === undefined || token.kind !== 'identifier') return syntax(token?.pos ?? 1, 'a property name');
    if (tokens[i]?.kind === 'lparen') {
      throw errors.notSupported(
        `$orderby: ordering by an expression ('${clip(token.text)}(…)') is not supported.`,
      );
    }
    const name = token.text;
    if (!Object.hasOwn(options.fields, name)) throw unknownProperty(name, options, '$orderby', token.pos);
    const field = options.fields[name];
    if (field === undefined || !field.sortable) {
      throw errors.notSupported(`$orderby: ordering by '${name}' is not supported.`);
    }
    let direction: OrderKey['direction'] = 'asc';
    const next = tokens[i];
    if (next?.kind === 'identifier') {
      const word = next.text.toLowerCase();
      if (word !== 'asc' && word !== 'desc') return syntax(next.pos, "'asc', 'desc', ',' or the end");
      direction = word;
      i += 1;
    }
    if (keys.some((key) => key.property === name)) {
      throw errors.badRequest(`$orderby lists '${name}' more than once.`);
    }
    keys.push({ property: name, direction });
    const separator = tokens[i++];
    if (separator?.kind === 'end') return keys;
    if (separator?.kind !== 'comma') return syntax(separator?.pos ?? text.length, "',' or the end");
  }
}

function parseNonNegative(option: string, text: string): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) > maxOffset) {
    throw errors.badRequest(
      `The query option ${option} must be a whole number from 0 to ${maxOffset}; got '${clip(text)}'.`,
    );
  }
  return Number(text);
}

/** `$format`: JSON is all vppd writes, so `json` / `application/json` (with parameters) is a no-op. */
function checkFormat(text: string): void {
  const format = text.trim().toLowerCase();
  if (format === 'json' || format === 'application/json' || format.startsWith('application/json;')) return;
  throw errors.notSupported(
    `The query option $format value '${clip(text)}' is not supported; responses are always JSON ($format=json).`,
  );
}

function parseCount(text: string): boolean {
  // Literals are case-insensitive here, as on Graph (`$count=TRUE`).
  const lower = text.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  throw errors.badRequest(`The query option $count must be true or false; got '${clip(text)}'.`);
}

/** Keeps only the selected properties of a presented entity (OData annotations `@odata.*` stay). */
export function applySelect(
  entity: Readonly<Record<string, unknown>>,
  select: readonly string[] | undefined,
): Record<string, unknown> {
  if (select === undefined) return { ...entity };
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entity)) {
    if (key.startsWith('@') || select.includes(key)) kept[key] = value;
  }
  return kept;
}
