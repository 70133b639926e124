import type { Transaction } from 'kysely';
import type { VppTokenActionFailureReason } from '../domain/enums.js';
import { actionState, vppTokenActionFailureReason } from '../domain/enums.js';
import { type ActionEvent, recordActionEvent, type TokenActionResult } from '../domain/sync-lifecycle.js';
import { actionResultFromRow, actionResultToRow, upsertActionResult } from '../storage/action-result-rows.js';
import type { DatabaseSchema } from '../storage/database-schema.js';
import type { StorageEngine } from '../storage/engine.js';
import { appendEvent } from '../storage/event-store.js';
import type { VppdDatabase } from '../storage/open-database.js';
import { dateFromColumn, dateToColumn } from '../storage/vpp-token-columns.js';

// The `revokeLicenses` entry of a token's tokenActionResults, read and written on its own row: a sync
// running at the same time writes only its `syncLicenses` row, so neither overwrites the other.

/** Graph's action name of license revokes. */
export const revokeLicensesAction = 'revokeLicenses';

/** The counts a revoke result carries (`#microsoft.graph.vppTokenRevokeLicensesActionResult`). */
export interface RevokeCounts {
  readonly actionFailureReason: VppTokenActionFailureReason;
  readonly totalLicensesCount: number;
  readonly failedLicensesCount: number;
}

/** What a transition did to the stored entry. */
export interface RevokeTransition {
  /** The entry after the event; undefined when the token does not exist (deleted meanwhile). */
  readonly result: TokenActionResult | undefined;
  /** True when a `requested` event joined a revoke that is already pending or active. */
  readonly coalesced: boolean;
}

/** A revoke entry still pending or active. */
export interface OpenRevoke {
  readonly tenantId: string;
  readonly tokenId: string;
  readonly lastUpdatedDateTime: Date;
}

/** Storage of the `revokeLicenses` action result of tokens. */
export interface RevokeActionStore {
  /**
   * Applies an action event (domain `recordActionEvent`: pending → active → done | failed) in one
   * transaction, with the counts to store; throws VppdError(illegalTransition) when the state
   * machine does not allow the event.
   */
  transition(
    tenantId: string,
    tokenId: string,
    event: ActionEvent,
    at: Date,
    counts: RevokeCounts,
  ): Promise<RevokeTransition>;
  /** Records progress of an active revoke (counts and `lastUpdatedDateTime`); false when not active. */
  progress(tenantId: string, tokenId: string, at: Date, counts: RevokeCounts): Promise<boolean>;
  /** The entry of a token, if any. */
  get(tenantId: string, tokenId: string): Promise<TokenActionResult | undefined>;
  /** Revokes still pending or active whose last update is before `before` (their runner is gone). */
  listStale(before: Date): Promise<OpenRevoke[]>;
}

type Trx = Transaction<DatabaseSchema>;

/** Builds the Kysely-backed store of revoke action results. */
export function createRevokeActionStore(options: { readonly storage: StorageEngine }): RevokeActionStore {
  const { storage } = options;
  const { db } = storage;

  const readRow = (executor: VppdDatabase | Trx, tenantId: string, tokenId: string) =>
    executor
      .selectFrom('vpp_token_action_results')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('token_id', '=', tokenId)
      .where('action_name', '=', revokeLicensesAction)
      .executeTakeFirst();

  return {
    transition(tenantId, tokenId, event, at, counts) {
      return db.transaction().execute(async (trx) => {
        // The token row is locked first: two requests at once read and write one after the other, so
        // the second sees the first's pending revoke and coalesces (on every engine).
        const token = await storage
          .lockForUpdate(
            trx
              .selectFrom('vpp_tokens')
              .select('id')
              .where('tenant_id', '=', tenantId)
              .where('id', '=', tokenId),
          )
          .executeTakeFirst();
        if (!token) return { result: undefined, coalesced: false };
        const existing = await readRow(trx, tenantId, tokenId);
        const current = existing ? [actionResultFromRow(existing)] : [];
        const before = current[0]?.actionState;
        const moved = recordActionEvent(current, revokeLicensesAction, event, at)[0];
        if (!moved) return { result: undefined, coalesced: false };
        const coalesced = event === 'requested' && (before === 'pending' || before === 'active');
        if (coalesced) return { result: current[0], coalesced: true };
        const next: TokenActionResult = { ...moved, revoke: counts };
        let position = existing?.position;
        if (position === undefined) {
          const max = await trx
            .selectFrom('vpp_token_action_results')
            .select((eb) => eb.fn.max<number | null>('position').as('p'))
            .where('tenant_id', '=', tenantId)
            .where('token_id', '=', tokenId)
            .executeTakeFirst();
          position = max?.p === null || max?.p === undefined ? 0 : Number(max.p) + 1;
        }
        await upsertActionResult(trx, actionResultToRow(tenantId, tokenId, next, position));
        await appendEvent(trx, storage, at, {
          tenantId,
          tokenId,
          type: 'actionChanged',
          payload: { action: revokeLicensesAction, state: next.actionState },
        });
        return { result: next, coalesced: false };
      });
    },

    progress(tenantId, tokenId, at, counts) {
      return db.transaction().execute(async (trx) => {
        const result = await trx
          .updateTable('vpp_token_action_results')
          .set({
            last_updated_date_time: dateToColumn(at),
            action_failure_reason: vppTokenActionFailureReason.toValue(counts.actionFailureReason),
            total_licenses_count: counts.totalLicensesCount,
            failed_licenses_count: counts.failedLicensesCount,
          })
          .where('tenant_id', '=', tenantId)
          .where('token_id', '=', tokenId)
          .where('action_name', '=', revokeLicensesAction)
          .where('action_state', '=', actionState.toValue('active'))
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) === 0) return false;
        await appendEvent(trx, storage, at, {
          tenantId,
          tokenId,
          type: 'actionChanged',
          payload: { action: revokeLicensesAction, state: 'active' },
        });
        return true;
      });
    },

    async get(tenantId, tokenId) {
      const row = await readRow(db, tenantId, tokenId);
      return row ? actionResultFromRow(row) : undefined;
    },

    async listStale(before) {
      const rows = await db
        .selectFrom('vpp_token_action_results')
        .select(['tenant_id', 'token_id', 'last_updated_date_time'])
        .where('action_name', '=', revokeLicensesAction)
        .where('action_state', 'in', [actionState.toValue('pending'), actionState.toValue('active')])
        .where('last_updated_date_time', '<', dateToColumn(before))
        .execute();
      return rows.map((r) => ({
        tenantId: r.tenant_id,
        tokenId: r.token_id,
        lastUpdatedDateTime: dateFromColumn(r.last_updated_date_time),
      }));
    },
  };
}
