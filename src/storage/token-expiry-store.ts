import { vppTokenState } from '../domain/enums.js';
import type { VppdDatabase } from './open-database.js';
import { dateFromColumn, dateToColumn } from './vpp-token-columns.js';

/**
 * Where a token's expiry becomes its stored `state`: every reader (Graph's GET and `$filter`, the dashboard,
 * metrics, alerts) reads the column, so they all agree on `expired` from the moment it is written.
 * Across tenants: the scheduler of any process runs it.
 */
export interface TokenExpiryStore {
  /**
   * Stores `expired` on tokens whose expiration date is at or before `now` and that are not expired yet (at
   * most `limit`); returns how many changed. One conditional statement, so processes scanning at the same
   * time change each token once.
   */
  expireDue(now: Date, limit: number): Promise<number>;
  /** The earliest expiration date after `now` among tokens not yet expired, or undefined. */
  nextExpiry(now: Date): Promise<Date | undefined>;
}

const expired = vppTokenState.toValue('expired');

export function createTokenExpiryStore({ db }: { readonly db: VppdDatabase }): TokenExpiryStore {
  return {
    async expireDue(now, limit) {
      const nowText = dateToColumn(now);
      const result = await db
        .updateTable('vpp_tokens')
        .set({ state: expired })
        .where('state', '!=', expired)
        .where('id', 'in', (eb) =>
          eb
            .selectFrom('vpp_tokens')
            .select('id')
            .where('state', '!=', expired)
            .where('expiration_date_time', '<=', nowText)
            .limit(limit),
        )
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    async nextExpiry(now) {
      const row = await db
        .selectFrom('vpp_tokens')
        .select((eb) => eb.fn.min('expiration_date_time').as('next'))
        .where('state', '!=', expired)
        .where('expiration_date_time', '>', dateToColumn(now))
        .executeTakeFirst();
      return row?.next ? dateFromColumn(row.next) : undefined;
    },
  };
}
