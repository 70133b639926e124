import type { Transaction } from 'kysely';
import type { AssetRef, HolderKind } from '../../domain/license-operation.js';
import type { DatabaseSchema } from '../database-schema.js';
import type { StorageEngine } from '../engine.js';
import { dateToColumn } from '../vpp-token-columns.js';
import { type BatchOutcome, writeBatchOutcome } from './operation-claims.js';
import type { LicenseOperationTables } from './tables.js';

// Apple's ASSET_MANAGEMENT notification names the eventId of an associate/disassociate call: the batch
// that sent it ends at once, without waiting for the worker's next eventStatus poll. Runs inside the
// notification store's transaction (the one that marks the notification processed), so the batch ends
// exactly once whichever of the notification, a duplicate of it, or a poll comes first.

/** A stored batch as an ASSET_MANAGEMENT notification sees it. */
export interface EventBatch {
  readonly operationId: string;
  readonly batchIndex: number;
  /** `associate` | `disassociate`. */
  readonly kind: string;
  readonly holderKind: HolderKind;
  readonly assets: readonly AssetRef[];
  readonly holders: readonly string[];
  readonly requestedCount: number;
}

/** What the notification says of the batch: its outcome, or "poll now" when it does not tell enough. */
export type EventVerdict =
  | { readonly kind: 'outcome'; readonly outcome: BatchOutcome }
  | { readonly kind: 'pollNow'; readonly reason: string }
  | { readonly kind: 'ignore'; readonly reason: string };

/** What applying the notification did to the operations. */
export type EventResult =
  | { readonly kind: 'unknownEvent' }
  | { readonly kind: 'alreadyEnded'; readonly batch: EventBatch }
  | { readonly kind: 'ended'; readonly batch: EventBatch }
  | { readonly kind: 'pollNow'; readonly batch: EventBatch; readonly reason: string }
  | { readonly kind: 'ignored'; readonly batch: EventBatch; readonly reason: string };

/**
 * Finds the token's batch that Apple's `eventId` belongs to, locks its operation (the row a worker's
 * lease-checked writes update first, so a poll recording the same event waits for this or sees it
 * ended), and ends the batch with what `verdict` reads from the notification. The operation is then due
 * at once: its worker finishes it (snapshot follow-up included) as if its poll had seen the outcome.
 */
export async function applyEventToBatch(
  trx: Transaction<DatabaseSchema>,
  storage: StorageEngine,
  target: { readonly tenantId: string; readonly tokenId: string; readonly eventId: string },
  verdict: (batch: EventBatch) => EventVerdict,
  now: Date,
): Promise<EventResult> {
  const db = trx.withTables<LicenseOperationTables>();
  const row = await db
    .selectFrom('license_operation_batches as b')
    .innerJoin('license_operations as o', 'o.id', 'b.operation_id')
    .select([
      'b.operation_id',
      'b.batch_index',
      'b.assets',
      'b.holders',
      'b.requested_count',
      'o.kind',
      'o.holder_kind',
    ])
    .where('b.event_id', '=', target.eventId)
    .where('o.tenant_id', '=', target.tenantId)
    .where('o.token_id', '=', target.tokenId)
    .executeTakeFirst();
  if (row === undefined) return { kind: 'unknownEvent' };
  const batch: EventBatch = {
    operationId: row.operation_id,
    batchIndex: row.batch_index,
    kind: row.kind,
    holderKind: row.holder_kind as HolderKind,
    assets: JSON.parse(row.assets) as AssetRef[],
    holders: JSON.parse(row.holders) as string[],
    requestedCount: row.requested_count,
  };
  // The operation's row first, as every lease-checked write of the worker does.
  await storage
    .lockForUpdate(db.selectFrom('license_operations').select('id').where('id', '=', batch.operationId))
    .executeTakeFirst();
  const current = await db
    .selectFrom('license_operation_batches')
    .select(['status', 'event_id'])
    .where('operation_id', '=', batch.operationId)
    .where('batch_index', '=', batch.batchIndex)
    .executeTakeFirst();
  // Ended by a poll, or sent again meanwhile under a new eventId: this event no longer decides it.
  if (current?.status !== 'submitted' || current.event_id !== target.eventId) {
    return { kind: 'alreadyEnded', batch };
  }
  const decided = verdict(batch);
  const nowText = dateToColumn(now);
  if (decided.kind === 'ignore') return { kind: 'ignored', batch, reason: decided.reason };
  if (decided.kind === 'outcome') {
    if (!(await writeBatchOutcome(db, batch.operationId, batch.batchIndex, decided.outcome))) {
      return { kind: 'alreadyEnded', batch };
    }
  } else {
    await db
      .updateTable('license_operation_batches')
      .set({ next_poll_at: nowText })
      .where('operation_id', '=', batch.operationId)
      .where('batch_index', '=', batch.batchIndex)
      .execute();
  }
  await db
    .updateTable('license_operations')
    .set({ next_action_at: nowText, updated_at: nowText })
    .where('id', '=', batch.operationId)
    .where('finished_at', 'is', null)
    .execute();
  return decided.kind === 'outcome'
    ? { kind: 'ended', batch }
    : { kind: 'pollNow', batch, reason: decided.reason };
}
