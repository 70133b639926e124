import type { VppToken } from '../domain/vpp-token.js';
import type { TokenVersion, VppTokenStore } from '../storage/vpp-token-store.js';
import { createResponseCache } from './response-cache.js';

/**
 * Each token's serialized JSON, kept under the token's version, for list pages: a page whose tenant
 * moved on (a sync of one token retires every kept answer of the tenant) is rebuilt from the tokens'
 * kept JSON, and only the tokens whose version moved are read and serialized again. Sound because every
 * change to what a vppToken shows appends an event naming the token in the change's transaction (the
 * token's version is its newest event's seq), and the page's ids and versions are read in one
 * statement after the caller's stamp: a kept form is used only at exactly the version it was read at or
 * later (a form read after its version was read may be newer than it; then the next page re-reads it).
 */
export interface TokenFragments {
  /**
   * The JSON of each token of `page`, in page order, as UTF-8 bytes; `variant` names everything the JSON
   * depends on besides the token (Graph version, `$select`, Prefer). Undefined when a token of the page
   * was gone by the time it was read (deleted between the two reads): the caller reads the page whole
   * instead. Kept as bytes, so a page is assembled by copying them once into the response (no joined
   * string of the page, then its UTF-8 copy, on the request thread's heap for each rebuilt page).
   */
  serialize(
    tenantId: string,
    page: readonly TokenVersion[],
    variant: string,
    present: (token: VppToken) => unknown,
  ): Promise<Buffer[] | undefined>;
}

export interface TokenFragmentsOptions {
  readonly tokens: Pick<VppTokenStore, 'getMany'>;
  readonly now: () => number;
  /**
   * The longest a kept form is used (ms). A token with no event left (older than the event retention)
   * has no version: its form is kept under "none" and used only this long, which must stay well below
   * the event retention, so that a change in between (an event that is then still kept) is never missed.
   */
  readonly maxAgeMs: number;
  /** Most forms kept (default 20,000) and their bytes (default 16 MiB), least recently used first out. */
  readonly maxEntries?: number;
  readonly maxBytes?: number;
}

interface Kept {
  readonly json: Buffer;
  readonly at: number;
}

export function createTokenFragments(options: TokenFragmentsOptions): TokenFragments {
  const { tokens, now, maxAgeMs } = options;
  const kept = createResponseCache<Kept>({
    maxEntries: options.maxEntries ?? 20_000,
    maxBytes: options.maxBytes ?? 16 * 1024 * 1024,
  });
  return {
    async serialize(tenantId, page, variant, present) {
      const out: Buffer[] = new Array(page.length);
      const keyOf = (id: string) => `${tenantId}\u0000${variant}\u0000${id}`;
      const stampOf = (version: string | null) => version ?? 'none';
      const oldest = now() - maxAgeMs;
      const missing: string[] = [];
      for (let i = 0; i < page.length; i++) {
        const { id, version } = page[i] as TokenVersion;
        const hit = kept.get(keyOf(id), stampOf(version));
        if (hit !== undefined && hit.at >= oldest) out[i] = hit.json;
        else missing.push(id);
      }
      if (missing.length === 0) return out;
      const readAt = now();
      const read = new Map((await tokens.getMany(tenantId, missing)).map((token) => [token.id, token]));
      for (let i = 0; i < page.length; i++) {
        if (out[i] !== undefined) continue;
        const { id, version } = page[i] as TokenVersion;
        const token = read.get(id);
        if (token === undefined) return undefined;
        const json = jsonBytes(present(token));
        out[i] = json;
        kept.set(keyOf(id), stampOf(version), { json, at: readAt }, json.length);
      }
      return out;
    },
  };
}

/**
 * A value's JSON as UTF-8 bytes in memory of their own (not a slice of Node's shared 8 KiB pool, which a
 * kept form would hold on to whole).
 */
export function jsonBytes(value: unknown): Buffer {
  const text = JSON.stringify(value);
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  bytes.write(text);
  return bytes;
}
