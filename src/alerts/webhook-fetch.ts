import { promises as dns, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { Agent, buildConnector, fetch as undiciFetch } from 'undici';
import type { WebhookAddressPolicy } from './webhook-address-policy.js';

/** Resolves a host name to every address (dns.lookup with `all`); injected in tests. */
export type WebhookLookup = (hostname: string) => Promise<readonly LookupAddress[]>;

export const systemLookup: WebhookLookup = (hostname) => dns.lookup(hostname, { all: true, verbatim: true });

/** The error code of a delivery refused because of where it would connect. */
export const webhookRefusedCode = 'EWEBHOOKREFUSED';

function refused(reason: string): Error {
  return Object.assign(new Error(reason), { code: webhookRefusedCode });
}

/**
 * A lookup for `net.connect`/`tls.connect` that resolves through `lookup` and fails when the name
 * resolves to an address the policy refuses: the check is on the very addresses the socket will
 * connect to, at connect time, so a re-resolution (DNS rebinding) is checked again.
 */
export function guardedLookup(policy: WebhookAddressPolicy, lookup: WebhookLookup): LookupFunction {
  return (hostname, options, callback) => {
    lookup(hostname).then(
      (found) => {
        for (const entry of found) {
          const verdict = policy.checkAddress(hostname, entry.address);
          if (verdict !== undefined) return callback(refused(verdict), '', 0);
        }
        const family = options.family === 4 || options.family === 6 ? options.family : undefined;
        const usable = found.filter((a) => family === undefined || a.family === family);
        if (usable.length === 0) {
          const error = Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' });
          return callback(error, '', 0);
        }
        if (options.all === true) return (callback as (e: null, a: LookupAddress[]) => void)(null, usable);
        const [first] = usable as [LookupAddress];
        return callback(null, first.address, first.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, '', 0),
    );
  };
}

/** A fetch for webhook deliveries and the agent it runs on (close it on shutdown). */
export interface WebhookFetch {
  readonly fetch: typeof fetch;
  close(): Promise<void>;
}

/**
 * Builds the fetch deliveries use: its own undici agent whose connector refuses a literal address
 * the policy refuses before connecting, resolves names through {@link guardedLookup}, and checks the
 * connected socket's remote address once more. Redirects are the caller's (`redirect: 'manual'`).
 */
export function createWebhookFetch(
  policy: WebhookAddressPolicy,
  lookup: WebhookLookup = systemLookup,
): WebhookFetch {
  const base = buildConnector({ lookup: guardedLookup(policy, lookup), timeout: 10_000 });
  const connect: buildConnector.connector = (options, callback) => {
    const host = options.hostname;
    const bare = host.startsWith('[') ? host.slice(1, -1) : host;
    if (isIP(bare) !== 0) {
      const verdict = policy.checkAddress(host, bare);
      if (verdict !== undefined) return callback(refused(verdict), null);
    }
    base(options, (error, socket) => {
      if (error !== null) return callback(error, null);
      const remote = socket.remoteAddress;
      const verdict = remote === undefined ? 'no remote address' : policy.checkAddress(host, remote);
      if (verdict !== undefined) {
        socket.destroy();
        return callback(refused(verdict), null);
      }
      callback(null, socket);
    });
  };
  const agent = new Agent({ connect, keepAliveTimeout: 4_000 });
  const guarded = ((input: string | URL, init?: RequestInit) =>
    undiciFetch(input, {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher: agent,
    })) as unknown as typeof fetch;
  return { fetch: guarded, close: () => agent.close() };
}
