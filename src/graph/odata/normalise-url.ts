import { graphVersions } from '../../domain/graph-enum.js';

/**
 * Graph's leniency about how a path is spelled, as one rewrite before routing (fastify's `rewriteUrl`):
 * the routes keep a single canonical spelling and the handlers never see the variants.
 *
 * - Segments resolve without regard to case: `/beta/deviceappmanagement/vpptokens` is
 *   `/beta/deviceAppManagement/vppTokens`, `.../SyncLicenses` is `.../syncLicenses`.
 * - Bound actions and functions may carry the namespace or its alias: `.../microsoft.graph.syncLicenses`,
 *   `vppTokens/microsoft.graph.getLicensesForApp(bundleId='…')`, `graph.syncLicenseCounts`. (Type-cast
 *   segments such as `microsoft.graph.iosVppApp` are routes of their own and stay as they are.)
 * - OData's key form: `vppTokens('{id}')` (also unquoted, and `%27` for the quotes) is `vppTokens/{id}`.
 * - Key segments that are GUIDs compare case-insensitively: PowerShell prints GUIDs upper-case, vppd's
 *   ids are lower-case, so a GUID in a key position is lower-cased.
 *
 * Only paths under a Graph version are touched, and only as far as they match a served route: from the
 * first segment that matches nothing, the rest is left exactly as sent, so a 404 still names the
 * segment the client got wrong. The query string is never touched.
 */
export interface GraphUrlNormaliser {
  /** Records a served route path (fastify's syntax: `:id`, `name:args`); paths outside Graph are ignored. */
  add(path: string): void;
  /** The canonical spelling of a request URL (path and query), or the URL itself. */
  normalise(url: string): string;
}

interface PrefixedSegment {
  /** Lower-cased literal before the parameter, e.g. `getlicensesforapp`. */
  readonly lower: string;
  readonly canonical: string;
  readonly node: RouteNode;
}

interface RouteNode {
  readonly literals: Map<string, { readonly canonical: string; readonly node: RouteNode }>;
  readonly prefixed: PrefixedSegment[];
  param: RouteNode | undefined;
  wildcard: boolean;
}

const newNode = (): RouteNode => ({ literals: new Map(), prefixed: [], param: undefined, wildcard: false });

const namespacePrefixes = ['microsoft.graph.', 'graph.'];
const guidPattern = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;
/** `name(key)`: the name, then the key literal between the outermost parentheses. */
const keyFormPattern = /^([A-Za-z_][A-Za-z0-9_.]*)\((.+)\)$/;

/** An empty normaliser; feed it every route path (fastify's `onRoute`). */
export function createGraphUrlNormaliser(): GraphUrlNormaliser {
  const root = newNode();
  const versions = new Set<string>(graphVersions);
  const normalised = new Map<string, string>();

  const resolve = (node: RouteNode, raw: string): { text: string; next: RouteNode } | undefined => {
    const decoded = raw.includes('%') ? decodeSafe(raw) : raw;
    if (decoded !== undefined) {
      const lower = decoded.toLowerCase();
      const literal = node.literals.get(lower);
      if (literal) return { text: literal.canonical, next: literal.node };
      const operation = matchPrefixed(node, raw, decoded);
      if (operation) return operation;
      for (const namespace of namespacePrefixes) {
        if (!lower.startsWith(namespace)) continue;
        const bare = decoded.slice(namespace.length);
        const rawBare = raw.toLowerCase().startsWith(namespace) ? raw.slice(namespace.length) : bare;
        const unqualified = node.literals.get(bare.toLowerCase());
        if (unqualified) return { text: unqualified.canonical, next: unqualified.node };
        const qualified = matchPrefixed(node, rawBare, bare);
        if (qualified) return qualified;
      }
    }
    if (node.param) return { text: keyText(raw, decoded), next: node.param };
    return undefined;
  };

  return {
    add(path) {
      normalised.clear();
      const segments = path.split('/').filter((s) => s !== '');
      if (!versions.has(segments[0] ?? '')) return;
      let node = root;
      for (const segment of segments) {
        if (segment.includes('*')) {
          node.wildcard = true;
          return;
        }
        const colon = segment.indexOf(':');
        if (colon === 0) {
          node.param ??= newNode();
          node = node.param;
          continue;
        }
        if (colon > 0) {
          const canonical = segment.slice(0, colon);
          const lower = canonical.toLowerCase();
          let entry = node.prefixed.find((p) => p.lower === lower);
          if (!entry) {
            entry = { lower, canonical, node: newNode() };
            node.prefixed.push(entry);
          }
          node = entry.node;
          continue;
        }
        const lower = segment.toLowerCase();
        let entry = node.literals.get(lower);
        if (!entry) {
          entry = { canonical: segment, node: newNode() };
          node.literals.set(lower, entry);
        }
        node = entry.node;
      }
    },

    normalise(url) {
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      const query = q < 0 ? '' : url.slice(q);
      // Every request passes here: a path seen before (the same token, list or function) costs one
      // lookup instead of a walk of the route tree. Routes are all known before the first request.
      const known = normalised.get(path);
      if (known !== undefined) return known === path ? url : known + query;
      const result = normalisePath(path);
      if (normalised.size >= maxRemembered) normalised.clear();
      normalised.set(path, result);
      return result === path ? url : result + query;
    },
  };

  function normalisePath(path: string): string {
    const segments = path.split('/');
    const out: string[] = [segments[0] ?? ''];
    let node: RouteNode | undefined = root;
    for (let i = 1; i < segments.length; i++) {
      const raw = segments[i] ?? '';
      if (node === undefined || node.wildcard || raw === '') {
        out.push(raw);
        continue;
      }
      const keyed = keyForm(node, raw);
      if (keyed) {
        out.push(keyed.canonical, keyed.key);
        node = keyed.next;
        continue;
      }
      const resolved = resolve(node, raw);
      if (!resolved) {
        out.push(raw);
        node = undefined;
        continue;
      }
      out.push(resolved.text);
      node = resolved.next;
    }
    return out.join('/');
  }
}

/** Paths whose canonical form is remembered (a full map is emptied, not grown). */
const maxRemembered = 4096;

/** `getLicensesForApp(…)` spelled in any case: the canonical name, then the parameter list as sent. */
function matchPrefixed(
  node: RouteNode,
  raw: string,
  decoded: string,
): { text: string; next: RouteNode } | undefined {
  const lower = decoded.toLowerCase();
  for (const entry of node.prefixed) {
    if (!lower.startsWith(entry.lower)) continue;
    const rest = decoded.slice(entry.lower.length);
    // The parameter list is the route's parameter; anything else after the name is another segment.
    if (rest !== '' && !rest.startsWith('(')) continue;
    const rawRest = raw.toLowerCase().startsWith(entry.lower)
      ? raw.slice(entry.lower.length)
      : encodeURIComponent(rest);
    return { text: entry.canonical + rawRest, next: entry.node };
  }
  return undefined;
}

/** `vppTokens('id')` where `vppTokens` is a collection with a key route: its name and key segments. */
function keyForm(
  node: RouteNode,
  raw: string,
): { canonical: string; key: string; next: RouteNode } | undefined {
  if (!raw.endsWith(')')) return undefined;
  const decoded = raw.includes('%') ? decodeSafe(raw) : raw;
  if (decoded === undefined) return undefined;
  const m = keyFormPattern.exec(decoded);
  if (!m) return undefined;
  const collection = node.literals.get((m[1] ?? '').toLowerCase());
  const keyed = collection?.node.param;
  if (!collection || !keyed) return undefined;
  const key = keyLiteral(m[2] ?? '');
  if (key === undefined) return undefined;
  return { canonical: collection.canonical, key: keyText(encodeURIComponent(key), key), next: keyed };
}

/** The value of a key literal: `'a''b'` is `a'b`; an unquoted key (a GUID) is itself. */
function keyLiteral(text: string): string | undefined {
  const literal = text.trim();
  if (literal.length >= 2 && literal.startsWith("'") && literal.endsWith("'")) {
    const inner = literal.slice(1, -1);
    if (/'(?!')/.test(inner.replaceAll("''", ''))) return undefined;
    return inner.replaceAll("''", "'");
  }
  return /^[^'(),=\s]+$/.test(literal) ? literal : undefined;
}

/** A key segment as routed: GUIDs lower-cased, anything else as sent. */
function keyText(raw: string, decoded: string | undefined): string {
  return decoded !== undefined && guidPattern.test(decoded) ? decoded.toLowerCase() : raw;
}

function decodeSafe(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}
