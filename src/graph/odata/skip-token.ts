import { createHash } from 'node:crypto';
import { errors } from '../../domain/errors.js';
import type { FilterExpression, OrderKey } from '../../domain/list-query.js';

/** What a `$skiptoken` is bound to: the options that decide which rows exist and in which order. */
export interface SkipTokenScope {
  readonly filter?: FilterExpression;
  readonly orderBy: readonly OrderKey[];
  readonly skip: number;
}

/** Largest offset a token (or `$skip`) may carry; fits an Int32 in every database. */
export const maxOffset = 2147483647;

const tokenPattern = /^v1\.(\d{1,10})\.([0-9a-f]{16})$/;

/**
 * A short fingerprint of the query a token belongs to. It is computed from the parsed form, so
 * whitespace or `$`-less spellings of the same query give the same fingerprint.
 */
export function queryFingerprint(scope: SkipTokenScope): string {
  const canonical = JSON.stringify({ f: scope.filter ?? null, o: scope.orderBy, s: scope.skip });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** Encodes the `$skiptoken` of the page starting at `offset` (opaque to clients: base64url). */
export function encodeSkipToken(offset: number, scope: SkipTokenScope): string {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > maxOffset) {
    throw errors.internal(`skip token offset out of range: ${offset}`);
  }
  return Buffer.from(`v1.${offset}.${queryFingerprint(scope)}`, 'utf8').toString('base64url');
}

/**
 * Decodes a `$skiptoken` into the offset it encodes. 400 when it is malformed or was issued for a
 * different `$filter`/`$orderby`/`$skip` (an offset into another result set would skip or repeat rows).
 */
export function decodeSkipToken(token: string, scope: SkipTokenScope): number {
  const text = /^[A-Za-z0-9_-]{1,64}$/.test(token) ? Buffer.from(token, 'base64url').toString('utf8') : '';
  const m = tokenPattern.exec(text);
  const offset = m ? Number(m[1]) : Number.NaN;
  if (!m || !(offset <= maxOffset)) {
    throw errors.badRequest(
      'The $skiptoken is not valid. Use the @odata.nextLink returned by the previous page.',
    );
  }
  if (m[2] !== queryFingerprint(scope)) {
    throw errors.badRequest(
      'The $skiptoken was issued for a different query ($filter, $orderby or $skip differ). Follow @odata.nextLink unchanged, or restart paging without $skiptoken.',
    );
  }
  return offset;
}
