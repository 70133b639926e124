import { dateToColumn } from '../vpp-token-columns.js';
import type { SyncJobStoreOptions } from './transaction.js';

/** Which token of a tenant holds each Apple location. */
export interface LocationClaims {
  /**
   * Records that the token holds an Apple location; answers the id of another token of the tenant that
   * already holds it (the database's unique constraint decides races), or undefined when it is ours.
   */
  claimLocation(
    tenantId: string,
    tokenId: string,
    location: { readonly uid: string; readonly name: string },
    now: Date,
  ): Promise<string | undefined>;
}

export function createLocationClaims({ db, storage }: SyncJobStoreOptions): LocationClaims {
  return {
    async claimLocation(tenantId, tokenId, location, now) {
      const holderOf = async () => {
        const row = await db
          .selectFrom('token_locations')
          .select('token_id')
          .where('tenant_id', '=', tenantId)
          .where('location_uid', '=', location.uid)
          .executeTakeFirst();
        return row?.token_id;
      };
      const holder = await holderOf();
      if (holder !== undefined && holder !== tokenId) return holder;
      const values = {
        location_uid: location.uid,
        location_name: location.name,
        claimed_at: dateToColumn(now),
      };
      try {
        await db
          .insertInto('token_locations')
          .values({ token_id: tokenId, tenant_id: tenantId, ...values })
          .onConflict((oc) => oc.column('token_id').doUpdateSet(values))
          .execute();
      } catch (error) {
        if (!storage.isUniqueViolation(error)) throw error;
        const winner = await holderOf();
        if (winner !== undefined && winner !== tokenId) return winner;
        throw error;
      }
      return undefined;
    },
  };
}
