import { BlockList, isIP } from 'node:net';

/**
 * Where webhook deliveries may go. By default only to public addresses: a tenant's webhook URL must
 * not reach vppd's own network (the cloud metadata service, a database, an admin port on loopback).
 * The check runs twice: when an endpoint is created (on the URL's host and what it resolves to now),
 * and on every delivery at connect time, on the address actually connected to (so a name that
 * resolves to a public address at creation and to a private one later, DNS rebinding, is refused).
 * An operator opens exceptions with `VPPD_WEBHOOK_ALLOW`: host names, addresses or CIDRs.
 */

/** One `VPPD_WEBHOOK_ALLOW` entry. */
export type WebhookAllowEntry =
  | { readonly kind: 'host'; readonly host: string }
  | {
      readonly kind: 'subnet';
      readonly address: string;
      readonly prefix: number;
      readonly family: 'ipv4' | 'ipv6';
    };

/** Parses `VPPD_WEBHOOK_ALLOW`: entries separated by commas or spaces; throws naming a bad entry. */
export function parseWebhookAllow(text: string): WebhookAllowEntry[] {
  const entries: WebhookAllowEntry[] = [];
  for (const item of text.split(/[\s,]+/)) {
    if (item === '') continue;
    const slash = item.indexOf('/');
    const address = unbracket(slash < 0 ? item : item.slice(0, slash));
    const family = isIP(address);
    if (family !== 0) {
      const max = family === 4 ? 32 : 128;
      const prefixText = slash < 0 ? String(max) : item.slice(slash + 1);
      const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
      if (!(prefix >= 0 && prefix <= max)) throw new Error(`'${item}' has no valid prefix length (0-${max})`);
      entries.push({ kind: 'subnet', address, prefix, family: family === 4 ? 'ipv4' : 'ipv6' });
      continue;
    }
    const host = item.toLowerCase().replace(/\.$/, '');
    if (slash >= 0 || !/^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/.test(host)) {
      throw new Error(`'${item}' is not a host name, an IP address or a CIDR`);
    }
    entries.push({ kind: 'host', host });
  }
  return entries;
}

/**
 * Addresses that are not the public internet (IANA special-purpose registries): this network,
 * private, CGNAT, loopback, link-local, IETF protocol and documentation ranges, benchmarking,
 * multicast, reserved, broadcast; IPv6 unspecified, loopback, IPv4-mapped and -compatible, NAT64,
 * discard, 6to4 and Teredo (both carry an IPv4 address), ORCHIDs, documentation, unique-local,
 * link-local, site-local and multicast.
 */
const nonPublic = (() => {
  // One list per family: node's BlockList also matches an IPv4 address against IPv6 rules (as
  // `::ffff:a.b.c.d`), so `::ffff:0:0/96` in the same list would refuse every IPv4 address.
  const ipv4 = new BlockList();
  const ipv6 = new BlockList();
  const v4: [string, number][] = [
    ['0.0.0.0', 8],
    ['10.0.0.0', 8],
    ['100.64.0.0', 10],
    ['127.0.0.0', 8],
    ['169.254.0.0', 16],
    ['172.16.0.0', 12],
    ['192.0.0.0', 24],
    ['192.0.2.0', 24],
    ['192.31.196.0', 24],
    ['192.52.193.0', 24],
    ['192.88.99.0', 24],
    ['192.168.0.0', 16],
    ['192.175.48.0', 24],
    ['198.18.0.0', 15],
    ['198.51.100.0', 24],
    ['203.0.113.0', 24],
    ['224.0.0.0', 4],
    ['240.0.0.0', 4],
  ];
  for (const [address, prefix] of v4) ipv4.addSubnet(address, prefix, 'ipv4');
  const v6: [string, number][] = [
    ['::', 96], // unspecified, loopback and the deprecated IPv4-compatible addresses
    ['::ffff:0:0', 96],
    ['64:ff9b::', 96],
    ['64:ff9b:1::', 48],
    ['100::', 64],
    ['2001::', 23],
    ['2001:db8::', 32],
    ['2002::', 16],
    ['3fff::', 20],
    ['5f00::', 16],
    ['fc00::', 7],
    ['fe80::', 10],
    ['fec0::', 10],
    ['ff00::', 8],
  ];
  for (const [address, prefix] of v6) ipv6.addSubnet(address, prefix, 'ipv6');
  return { ipv4, ipv6 };
})();

/** Names that never denote a public host: RFC 6761/6762 special-use and ICANN's private-use `.internal`. */
const privateNameSuffixes = ['localhost', 'local', 'internal', 'home.arpa', 'localdomain', 'lan', 'intranet'];

/** True for an IP address (either family, brackets allowed) outside the public internet. */
export function isNonPublicAddress(address: string): boolean {
  const bare = unbracket(address);
  const family = isIP(bare);
  if (family === 0) return true;
  return family === 4 ? nonPublic.ipv4.check(bare, 'ipv4') : nonPublic.ipv6.check(bare, 'ipv6');
}

/** The decision on one host or address: undefined when allowed, else why not (for the API's 400). */
export type AddressVerdict = string | undefined;

/** Decides where deliveries may go; built once from `VPPD_WEBHOOK_ALLOW`. */
export interface WebhookAddressPolicy {
  /** True when the operator allowed this host name or literal address by name or CIDR. */
  allowsHost(hostname: string): boolean;
  /** Verdict on a URL's host as written (after WHATWG normalisation: `127.1` is `127.0.0.1`). */
  checkHost(hostname: string): AddressVerdict;
  /** Verdict on an address a host resolved to or a socket connected to; `hostname` as in the URL. */
  checkAddress(hostname: string, address: string): AddressVerdict;
}

/** Builds the policy: public addresses, plus the operator's exceptions. */
export function createWebhookAddressPolicy(allow: readonly WebhookAllowEntry[] = []): WebhookAddressPolicy {
  const allowedHosts = new Set<string>();
  const allowedSubnets = new BlockList();
  for (const entry of allow) {
    if (entry.kind === 'host') allowedHosts.add(entry.host);
    else allowedSubnets.addSubnet(entry.address, entry.prefix, entry.family);
  }
  const inAllowedSubnet = (address: string) => {
    const family = isIP(address);
    return family !== 0 && allowedSubnets.check(address, family === 4 ? 'ipv4' : 'ipv6');
  };
  const allowsHost = (hostname: string) => {
    const host = unbracket(hostname).toLowerCase().replace(/\.$/, '');
    return allowedHosts.has(host) || inAllowedSubnet(host);
  };
  const refusal = (what: string) =>
    `${what} is not a public address; webhooks reach public addresses only (an operator can allow it with VPPD_WEBHOOK_ALLOW).`;
  return {
    allowsHost,
    checkHost(hostname) {
      if (allowsHost(hostname)) return undefined;
      const host = unbracket(hostname).toLowerCase().replace(/\.$/, '');
      if (isIP(host) !== 0) return isNonPublicAddress(host) ? refusal(`'${host}'`) : undefined;
      if (!host.includes('.') || privateNameSuffixes.some((s) => host === s || host.endsWith(`.${s}`))) {
        return refusal(`'${host}'`);
      }
      return undefined;
    },
    checkAddress(hostname, address) {
      if (allowsHost(hostname) || inAllowedSubnet(unbracket(address))) return undefined;
      return isNonPublicAddress(address)
        ? refusal(`'${unbracket(hostname)}' resolves to ${unbracket(address)}, which`)
        : undefined;
    },
  };
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
