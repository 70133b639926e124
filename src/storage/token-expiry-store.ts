import { vppTokenState } from '../domain/enums.js';
import type { StorageEngine } from './engine.js';
import { appendEvents } from './event-store.js';
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

export function createTokenExpiryStore({ storage }: { readonly storage: StorageEngine }): TokenExpiryStore {
  const { db } = storage;
  return {
    expireDue(now, limit) {
      const nowText = dateToColumn(now);
      // Written first, read back with `returning`: the transaction takes SQLite's write lock with its
      // first statement (a read first would fail with SQLITE_BUSY when another process wrote meanwhile).
      return db.transaction().execute(async (trx) => {
        const changed = await trx
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
          .returning(['id', 'tenant_id'])
          .execute();
        await appendEvents(
          trx,
          storage,
          now,
          changed.map((t) => ({
            tenantId: t.tenant_id,
            tokenId: t.id,
            type: 'stateChanged' as const,
            payload: { to: 'expired', reason: 'expirationDateTime' },
          })),
        );
        return changed.length;
      });
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
