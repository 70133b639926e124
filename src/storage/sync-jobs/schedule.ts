import { dateToColumn } from '../vpp-token-columns.js';
import type { SyncJobStoreOptions, Trx } from './transaction.js';
import { inProgress } from './transaction.js';

/** When the scheduler syncs each token next. */
export interface SyncSchedule {
  /** Records when the scheduler should next sync a token. */
  schedule(tenantId: string, tokenId: string, nextSyncAt: Date): Promise<void>;
  /** Tokens whose automatic sync is due (or never scheduled) and that are not syncing now. */
  dueTokens(now: Date, limit: number): Promise<{ tenantId: string; tokenId: string }[]>;
}

/** Sets a token's next sync inside a transaction (also used by commit and fail). */
export const upsertSchedule = (trx: Trx, tenantId: string, tokenId: string, nextSyncAt: Date) =>
  trx
    .insertInto('sync_schedule')
    .values({ token_id: tokenId, tenant_id: tenantId, next_sync_at: dateToColumn(nextSyncAt) })
    .onConflict((oc) => oc.column('token_id').doUpdateSet({ next_sync_at: dateToColumn(nextSyncAt) }))
    .execute();

export function createSyncSchedule({ db, storage }: SyncJobStoreOptions): SyncSchedule {
  return {
    async schedule(tenantId, tokenId, nextSyncAt) {
      try {
        await db.transaction().execute((trx) => upsertSchedule(trx, tenantId, tokenId, nextSyncAt));
      } catch (error) {
        // The token was deleted meanwhile: nothing to schedule.
        if (!storage.isUniqueViolation(error) && !storage.isForeignKeyViolation(error)) throw error;
      }
    },

    async dueTokens(now, limit) {
      const rows = await db
        .selectFrom('vpp_tokens as t')
        .leftJoin('sync_schedule as s', 's.token_id', 't.id')
        .select(['t.tenant_id', 't.id'])
        .where('t.last_sync_status', '!=', inProgress)
        .where((eb) =>
          eb.or([eb('s.next_sync_at', 'is', null), eb('s.next_sync_at', '<=', dateToColumn(now))]),
        )
        .orderBy('s.next_sync_at')
        .orderBy('t.id')
        .limit(limit)
        .execute();
      return rows.map((r) => ({ tenantId: r.tenant_id, tokenId: r.id }));
    },
  };
}
