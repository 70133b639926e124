import { createHmac } from 'node:crypto';

/** The JSON inside a `.vpptoken` file. See docs/apple.md, "The content token". */
export interface VppTokenFile {
  readonly token: string;
  readonly expDate: string;
  readonly orgName: string;
}

/** Formats a date the way Apple writes `expDate`: `2027-11-08T22:33:22+0000` (UTC, no colon in the offset). */
export function formatAppleDate(date: Date): string {
  return `${date.toISOString().slice(0, 19)}+0000`;
}

/**
 * The opaque inner `token` of a location's n-th token file: an HMAC over the seed and the location id,
 * so `vppd apple-sim tokens --seed S` and a later `vppd apple-sim --seed S` agree without sharing state.
 */
export function innerTokenFor(seed: string | number, locationId: string, index: number): string {
  const mac = createHmac('sha256', `vppd-apple-sim:${String(seed)}`);
  mac.update(`location:${locationId}:token:${index}`);
  // Apple's inner tokens are long opaque base64 strings; two MACs give a similarly shaped value.
  const first = mac.digest();
  const second = createHmac('sha256', first).update('vppd-apple-sim:expand').digest();
  return Buffer.concat([first, second]).toString('base64');
}

/** Encodes `.vpptoken` file content: base64 of the JSON object, exactly what Apple lets admins download. */
export function encodeVppTokenFile(file: VppTokenFile): string {
  return Buffer.from(
    JSON.stringify({ token: file.token, expDate: file.expDate, orgName: file.orgName }),
    'utf8',
  ).toString('base64');
}

/** The outcome of reading an `Authorization` header: the inner token, or why it is malformed. */
export type BearerReading = { readonly ok: true; readonly token: string } | { readonly ok: false };

const base64Pattern = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Reads `Authorization: Bearer <.vpptoken content>` and returns the inner token. Anything that is not
 * a bearer credential holding base64 JSON with a string `token` is malformed (Apple's 9722).
 */
export function readBearer(header: string | undefined): BearerReading {
  if (header === undefined) return { ok: false };
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  const content = match?.[1];
  if (content === undefined || !base64Pattern.test(content)) return { ok: false };
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(content, 'base64').toString('utf8'));
  } catch {
    return { ok: false };
  }
  if (typeof parsed !== 'object' || parsed === null) return { ok: false };
  const token = (parsed as Record<string, unknown>).token;
  if (typeof token !== 'string' || token.length === 0) return { ok: false };
  return { ok: true, token };
}
