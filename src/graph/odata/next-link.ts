import type { ListQuery } from '../../domain/list-query.js';
import { encodeSkipToken } from './skip-token.js';

/**
 * The absolute `@odata.nextLink` of the page after the current one (docs/graph-api.md, "Query
 * options"): the same URL — path and every query option exactly as the client spelled them — with
 * `$skiptoken` replaced by a token for `nextOffset`. `requestUrl` must be absolute
 * (`https://host/beta/deviceAppManagement/vppTokens?$top=5`).
 */
export function buildNextLink(requestUrl: string | URL, query: ListQuery, nextOffset: number): string {
  const url = new URL(requestUrl);
  const token = encodeSkipToken(nextOffset, {
    ...(query.filter ? { filter: query.filter } : {}),
    orderBy: query.orderBy,
    skip: query.skip,
  });
  // The query as the client wrote it: URL's own serialisation would re-encode characters such as '.
  const text = typeof requestUrl === 'string' ? requestUrl : requestUrl.href;
  const question = text.indexOf('?');
  const rawQuery = question < 0 ? '' : text.slice(question + 1).split('#')[0];
  const kept = (rawQuery ?? '').split('&').filter((piece) => piece !== '' && !isSkipToken(piece));
  kept.push(`$skiptoken=${token}`);
  return `${url.origin}${url.pathname}?${kept.join('&')}`;
}

function isSkipToken(piece: string): boolean {
  const eq = piece.indexOf('=');
  const name = eq < 0 ? piece : piece.slice(0, eq);
  let decoded: string;
  try {
    decoded = decodeURIComponent(name);
  } catch {
    return false;
  }
  const lower = decoded.toLowerCase();
  return lower === '$skiptoken' || lower === 'skiptoken';
}
