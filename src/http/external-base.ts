import { BlockList, isIPv4 } from 'node:net';
import type { Config } from '../config.js';

/**
 * The external base URL of a request: what a client must put in front of `/beta/...` to reach vppd
 * (`https://tools.example.com/vppd`, never a trailing slash). Every absolute URL vppd writes
 * (`@odata.context`, `@odata.nextLink`, `Location`) starts with it.
 *
 * In order:
 *  1. `VPPD_PUBLIC_URL` when set: pinned, every forwarded header ignored.
 *  2. When the socket peer (`request.socket.remoteAddress`, never a header) is in `VPPD_TRUST_PROXY`:
 *     the forwarded headers it sent. `Forwarded` (RFC 7239) `proto=`/`host=` win over
 *     `X-Forwarded-Proto`/`X-Forwarded-Host`; `X-Forwarded-Prefix` adds a path prefix in both cases.
 *     Only the **rightmost** value of each header is read: the one the trusted peer itself added or
 *     set, describing the request as it received it. Values further left came from hops vppd cannot
 *     vouch for (a client can send any `X-Forwarded-Host`; a proxy that appends keeps it on the left).
 *     A malformed value is ignored (that part falls back to what the socket says).
 *  3. Otherwise the socket's own protocol and the `Host` header.
 */
export type ExternalBaseResolver = (request: ForwardedRequest) => string;

/** The parts of a request the resolver reads (a FastifyRequest has them). */
export interface ForwardedRequest {
  readonly protocol: string;
  readonly host: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly socket: { readonly remoteAddress?: string | undefined };
}

/** Builds the resolver for a configuration (`Config.externalUrl`). */
export function createExternalBaseResolver(settings: Config['externalUrl']): ExternalBaseResolver {
  const pinned = settings.publicUrl;
  if (pinned !== undefined) return () => pinned;
  const trusted = new BlockList();
  for (const range of settings.trustedProxies) trusted.addSubnet(range.address, range.prefix, range.family);
  const anyTrusted = settings.trustedProxies.length > 0;
  // Most requests come straight from their client: no closure or header parsing for them (every read
  // asks for the base, to key its kept bytes).
  if (!anyTrusted) return (request) => socketBaseOf(request.protocol, request.host);
  return (request) => {
    if (!isTrustedPeer(trusted, request.socket.remoteAddress)) {
      return socketBaseOf(request.protocol, request.host);
    }
    const forwarded = lastForwardedElement(headerValues(request.headers.forwarded));
    const proto =
      validProto(forwarded?.proto) ?? validProto(lastListValue(request.headers['x-forwarded-proto']));
    const host = validHost(forwarded?.host) ?? validHost(lastListValue(request.headers['x-forwarded-host']));
    const prefix = validPrefix(lastListValue(request.headers['x-forwarded-prefix'])) ?? '';
    const origin =
      originOf(proto ?? request.protocol, host ?? request.host) ??
      socketBaseOf(request.protocol, request.host);
    return `${origin}${prefix}`;
  };
}

/** What the socket says: its protocol and the `Host` header (`localhost` when that makes no URL). */
function socketBaseOf(protocol: string, host: string): string {
  return originOf(protocol, host) ?? `${protocol}://localhost`;
}

/** Whether the socket peer is a configured proxy (IPv4-mapped IPv6 peers count as their IPv4). */
function isTrustedPeer(trusted: BlockList, address: string | undefined): boolean {
  if (address === undefined || address === '') return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped !== undefined) return trusted.check(mapped, 'ipv4') || trusted.check(address, 'ipv6');
  return trusted.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
}

/** Origins already worked out: the same few hosts ask on every request (a full map is emptied). */
const origins = new Map<string, string | null>();

/** `https://host:port` with the default port dropped, or undefined when the parts make no URL. */
function originOf(proto: string, host: string): string | undefined {
  const key = `${proto}://${host}`;
  const known = origins.get(key);
  if (known !== undefined) return known ?? undefined;
  let origin: string | null;
  try {
    origin = new URL(key).origin;
  } catch {
    origin = null;
  }
  if (origins.size >= 1024) origins.clear();
  origins.set(key, origin);
  return origin ?? undefined;
}

function headerValues(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** The rightmost item of a comma-separated header (repeated headers are one list, in order). */
function lastListValue(value: string | string[] | undefined): string | undefined {
  const items = headerValues(value)
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
  return items.at(-1);
}

const hostPattern =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function validProto(value: string | undefined): string | undefined {
  const lower = value?.toLowerCase();
  return lower === 'http' || lower === 'https' ? lower : undefined;
}

function validHost(value: string | undefined): string | undefined {
  return value !== undefined && value.length <= 255 && hostPattern.test(value) ? value : undefined;
}

/** `/vppd` from `/vppd/` or `vppd`; undefined for anything that is not a plain path. */
function validPrefix(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.replace(/\/+$/, '');
  if (trimmed === '') return '';
  const path = trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
  // Path characters only (RFC 3986 pchar, percent-encoded bytes allowed); no `//`, dot segments, query.
  if (path.length > 200 || !/^(?:\/[A-Za-z0-9\-._~!$&'()*+,;=:@%]+)+$/.test(path)) return undefined;
  if (path.split('/').some((segment) => segment === '.' || segment === '..')) return undefined;
  return path;
}

/** The parameters of the rightmost element of `Forwarded` headers (RFC 7239 §4), names lower-cased. */
export function lastForwardedElement(values: readonly string[]): Record<string, string> | undefined {
  const elements = splitOutsideQuotes(values.join(','), ',');
  const last = elements
    .map((e) => e.trim())
    .filter((e) => e !== '')
    .at(-1);
  if (last === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const pair of splitOutsideQuotes(last, ';')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim().toLowerCase();
    let value = pair.slice(eq + 1).trim();
    if (value.startsWith('"')) {
      if (value.length < 2 || !value.endsWith('"')) continue;
      value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    }
    out[name] = value;
  }
  return out;
}

/** Splits on `separator` except inside double-quoted strings. */
function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i] as string;
    if (quoted && c === '\\' && i + 1 < text.length) {
      current += c + (text[i + 1] as string);
      i += 1;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === separator && !quoted) {
      parts.push(current);
      current = '';
      continue;
    }
    current += c;
  }
  parts.push(current);
  return parts;
}
