import type { ListQuery } from '../domain/list-query.js';
import { applyListFilter, applyListOrder } from '../storage/list-query-compiler.js';
import { vppTokenColumns } from '../storage/vpp-token-columns.js';
import type { RefinableQuery } from '../storage/vpp-token-store.js';

/**
 * Narrows the tenant's token query by a list request's `$filter` and orders it by `$orderby` (then by
 * id, so pages are stable); without `$orderby`, tokens come in creation order. `ordered: false` only
 * filters (for counts).
 */
export function refineTokenQuery(query: RefinableQuery, list: ListQuery, ordered = true): RefinableQuery {
  const filtered = applyListFilter(query, list.filter, vppTokenColumns);
  if (!ordered) return filtered;
  if (list.orderBy.length === 0) return filtered.orderBy('created_at').orderBy('id');
  return applyListOrder(filtered, list, vppTokenColumns, { primaryKey: 'id' });
}
