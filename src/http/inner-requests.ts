import { randomBytes } from 'node:crypto';

/**
 * Requests vppd sends to itself (the steps of a JSON `$batch`, through `app.inject` so every hook,
 * auth and rewrite applies) carry a random, single-use marker in {@link innerRequestHeader}; the
 * marker maps to what the step inherits from the outer request. A client cannot forge it: markers are
 * 128 random bits, known only while the step runs. Anything else claiming the header is an outside
 * request like any other.
 */
export const innerRequestHeader = 'x-vppd-inner-request';

/** What a step inherits from the outer request. */
export interface InnerRequestInfo {
  /** The outer request's external base URL (its trusted forwarded headers, not the step's). */
  readonly externalBase: string;
}

export interface InnerRequests {
  /** Registers a step; returns the header value to send and a release for when it is done. */
  register(info: InnerRequestInfo): { readonly marker: string; release(): void };
  /** The info of a request carrying a live marker, else undefined. */
  lookup(headers: Readonly<Record<string, string | string[] | undefined>>): InnerRequestInfo | undefined;
}

export function createInnerRequests(): InnerRequests {
  const live = new Map<string, InnerRequestInfo>();
  return {
    register(info) {
      const marker = randomBytes(16).toString('base64url');
      live.set(marker, info);
      return { marker, release: () => void live.delete(marker) };
    },
    lookup(headers) {
      const value = headers[innerRequestHeader];
      return typeof value === 'string' ? live.get(value) : undefined;
    },
  };
}
