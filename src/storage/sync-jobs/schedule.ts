import { vppTokenState } from '../../domain/enums.js';
import { answerNotNeeded } from '../answer-not-needed.js';
import { dateToColumn } from '../vpp-token-columns.js';
import type { SyncJobStoreOptions, Trx } from './transaction.js';
import { inProgress } from './transaction.js';

/** When the scheduler syncs each token next. */
export interface SyncSchedule {
  /** Records when the scheduler should next sync a token. */
  schedule(tenantId: string, tokenId: string, nextSyncAt: Date): Promise<void>;
  /** Tokens whose automatic sync is due (or never scheduled) and that are not syncing now. */
  dueTokens(now: Date, limit: number): Promise<{ tenantId: string; tokenId: string }[]>;
  /**
   * Tokens whose delta sync is due (`next_delta_at` passed, or none planned yet) and whose full sync is
   * not: `valid`, with a license snapshot, not syncing now.
   */
  dueDeltaTokens(now: Date, limit: number): Promise<{ tenantId: string; tokenId: string }[]>;
}

/**
 * Sets a token's next full sync inside a transaction (also used by commit and fail), and its next
 * delta sync when `nextDeltaAt` is given (null: none planned).
 */
export const upsertSchedule = (
  trx: Trx,
  tenantId: string,
  tokenId: string,
  nextSyncAt: Date,
  nextDeltaAt?: Date | null,
) => {
  const delta =
    nextDeltaAt === undefined
      ? {}
      : { next_delta_at: nextDeltaAt === null ? null : dateToColumn(nextDeltaAt) };
  return trx
    .insertInto('sync_schedule')
    .values({ token_id: tokenId, tenant_id: tenantId, next_sync_at: dateToColumn(nextSyncAt), ...delta })
    .onConflict((oc) =>
      oc.column('token_id').doUpdateSet({ next_sync_at: dateToColumn(nextSyncAt), ...delta }),
    )
    .modifyEnd(answerNotNeeded)
    .execute();
};

/** Sets only a token's next delta sync (a delta run ended: the full sync keeps its time). */
export const setNextDelta = (trx: Trx, tokenId: string, nextDeltaAt: Date | null) =>
  trx
    .updateTable('sync_schedule')
    .set({ next_delta_at: nextDeltaAt === null ? null : dateToColumn(nextDeltaAt) })
    .where('token_id', '=', tokenId)
    .modifyEnd(answerNotNeeded)
    .execute();

const valid = vppTokenState.toValue('valid');

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

    async dueDeltaTokens(now, limit) {
      const nowText = dateToColumn(now);
      const rows = await db
        .selectFrom('vpp_tokens as t')
        .innerJoin('sync_schedule as s', 's.token_id', 't.id')
        .innerJoin('license_snapshots as l', 'l.token_id', 't.id')
        .select(['t.tenant_id', 't.id'])
        .where('t.last_sync_status', '!=', inProgress)
        .where('t.state', '=', valid)
        .where('s.next_sync_at', '>', nowText)
        .where((eb) => eb.or([eb('s.next_delta_at', 'is', null), eb('s.next_delta_at', '<=', nowText)]))
        .orderBy('s.next_delta_at')
        .orderBy('t.id')
        .limit(limit)
        .execute();
      return rows.map((r) => ({ tenantId: r.tenant_id, tokenId: r.id }));
    },
  };
}
