import type { Transaction } from 'kysely';
import { actionState, vppTokenActionFailureReason } from '../domain/enums.js';
import type { TokenActionResult } from '../domain/sync-lifecycle.js';
import { answerNotNeeded } from './answer-not-needed.js';
import type { DatabaseSchema, VppTokenActionResultRow } from './database-schema.js';
import { dateFromColumn, dateToColumn } from './vpp-token-columns.js';

// One conversion between `tokenActionResults` entries and their rows, shared by every store that
// writes them (token store, sync jobs, revoke actions), so the three can never disagree on a column.

/** The row of one action result; the revoke counts are set only on `revokeLicenses` results. */
export function actionResultToRow(
  tenantId: string,
  tokenId: string,
  result: TokenActionResult,
  position: number,
): VppTokenActionResultRow {
  return {
    tenant_id: tenantId,
    token_id: tokenId,
    action_name: result.actionName,
    action_state: actionState.toValue(result.actionState),
    start_date_time: dateToColumn(result.startDateTime),
    last_updated_date_time: dateToColumn(result.lastUpdatedDateTime),
    action_failure_reason: result.revoke
      ? vppTokenActionFailureReason.toValue(result.revoke.actionFailureReason)
      : null,
    total_licenses_count: result.revoke ? result.revoke.totalLicensesCount : null,
    failed_licenses_count: result.revoke ? result.revoke.failedLicensesCount : null,
    position,
  };
}

/** The action result a row holds; a row with a failure reason is a revoke result with its counts. */
export function actionResultFromRow(row: VppTokenActionResultRow): TokenActionResult {
  const base = {
    actionName: row.action_name,
    actionState: actionState.fromValue(row.action_state),
    startDateTime: dateFromColumn(row.start_date_time),
    lastUpdatedDateTime: dateFromColumn(row.last_updated_date_time),
  };
  if (row.action_failure_reason === null) return base;
  return {
    ...base,
    revoke: {
      actionFailureReason: vppTokenActionFailureReason.fromValue(row.action_failure_reason),
      totalLicensesCount: row.total_licenses_count ?? 0,
      failedLicensesCount: row.failed_licenses_count ?? 0,
    },
  };
}

/** Inserts the row, or replaces the state, times and counts of the token's entry for that action. */
export async function upsertActionResult(
  trx: Transaction<DatabaseSchema>,
  row: VppTokenActionResultRow,
): Promise<void> {
  await trx
    .insertInto('vpp_token_action_results')
    .values(row)
    .onConflict((oc) =>
      oc.columns(['token_id', 'action_name']).doUpdateSet({
        action_state: row.action_state,
        start_date_time: row.start_date_time,
        last_updated_date_time: row.last_updated_date_time,
        action_failure_reason: row.action_failure_reason,
        total_licenses_count: row.total_licenses_count,
        failed_licenses_count: row.failed_licenses_count,
      }),
    )
    .modifyEnd(answerNotNeeded)
    .execute();
}
