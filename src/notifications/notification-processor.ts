import type { Logger } from '../domain/logger.js';
import type { SyncTrigger } from '../domain/sync-trigger.js';
import type {
  AppleNotificationStore,
  AppliedCounts,
  AssetCountDelta,
  EventBatch,
  EventVerdict,
  PendingNotification,
} from '../storage/apple-notification-store.js';
import type { LicenseOperationFailure } from '../storage/license-operations/operation-store.js';

export interface NotificationProcessorOptions {
  readonly store: AppleNotificationStore;
  readonly clock: () => Date;
  readonly logger: Logger;
  /** Asks for a sync of the token when a notification cannot be applied consistently. */
  readonly requestSync: (tenantId: string, tokenId: string, trigger: SyncTrigger) => Promise<unknown>;
  /**
   * Asks for a refresh of the token's asset counts (a `licenseCounts` job) after a notification was
   * applied that the counts' own read may already have seen. Without it, a full sync is requested.
   */
  readonly requestCounts?: (tenantId: string, tokenId: string) => Promise<unknown>;
  /** Told after counts moved (license alerts listen here). */
  readonly onCountsChanged?: (tenantId: string, tokenId: string, counts: AppliedCounts) => Promise<void>;
  /** Told after an ASSET_MANAGEMENT notification made a license operation due (wakes the operation worker). */
  readonly onOperationDue?: () => void;
}

/** What one drain did, by outcome. */
export interface ProcessedCounts {
  applied: number;
  ignored: number;
  syncRequested: number;
  duplicate: number;
  /** ASSET_COUNT already counted by the snapshot's read of Apple's assets. */
  superseded: number;
  /** Left pending: a sync or count refresh of the token was running. */
  deferred: number;
}

const batchSize = 100;

/**
 * Applies stored notifications, oldest first, each exactly once (the outcome is written in the same
 * transaction as its effect, so two processes or a restart never apply one twice):
 * - `ASSET_COUNT` `{adamId, pricingParam, countDelta}`: the asset's totalCount and availableCount in the
 *   token's current snapshot, and the snapshot's sums. Deltas commute, so order does not matter. An
 *   unknown asset or counts that no longer add up request a sync instead. Placed against the read of
 *   Apple's assets the snapshot's counts came from: received before it began, it is already counted
 *   (superseded); while it ran, it is applied and the counts are re-read (`requestCounts`); while a
 *   read of the token runs now, it waits.
 * - `ASSET_MANAGEMENT` `{eventId, type, result, error, assignments}` of an associate/disassociate call:
 *   the license operation batch that sent it ends (see {@link assetManagementVerdict}) and its operation
 *   is due at once, so the worker finishes it without its next eventStatus poll. REVOKE events and
 *   eventIds vppd never sent are recorded as ignored with why.
 * - `TEST_NOTIFICATION`: nothing to do. Others (user notifications): recorded as ignored.
 */
export class NotificationProcessor {
  readonly #options: NotificationProcessorOptions;
  #running: Promise<ProcessedCounts> | undefined;
  #again = false;

  constructor(options: NotificationProcessorOptions) {
    this.#options = options;
  }

  /** Drains the pending notifications; concurrent calls share one drain (and run it once more after). */
  drain(): Promise<ProcessedCounts> {
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      const total: ProcessedCounts = {
        applied: 0,
        ignored: 0,
        syncRequested: 0,
        duplicate: 0,
        superseded: 0,
        deferred: 0,
      };
      try {
        do {
          this.#again = false;
          for (;;) {
            const pending = await this.#options.store.pendingNotifications(batchSize, this.#options.clock());
            let done = 0;
            for (const notification of pending) {
              const outcome = await this.#process(notification);
              total[outcome] += 1;
              if (outcome !== 'deferred') done += 1;
            }
            // A full batch that only waits (a read began meanwhile) is read again at the next drain.
            if (pending.length < batchSize || done === 0) break;
          }
        } while (this.#again);
      } finally {
        this.#running = undefined;
      }
      return total;
    })();
    return this.#running;
  }

  async #process(notification: PendingNotification): Promise<keyof ProcessedCounts> {
    const { store, clock, logger } = this.#options;
    const { tenantId, tokenId, notificationId, notificationType } = notification;
    const ignore = async (reason: string) =>
      (await store.markProcessed(tokenId, notificationId, `ignored: ${reason}`, clock()))
        ? 'ignored'
        : 'duplicate';
    switch (notificationType) {
      case 'TEST_NOTIFICATION':
        return ignore('test notification');
      case 'ASSET_COUNT': {
        const delta = assetCountDeltaOf(notification.payload);
        if (delta === undefined) return ignore('not an ASSET_COUNT notification Apple documents');
        const outcome = await store.applyAssetCount(notification, [delta], clock());
        switch (outcome.kind) {
          case 'applied':
            logger.info(
              { tenantId, tokenId, notificationId, ...delta, recount: outcome.recount },
              'Apple ASSET_COUNT applied',
            );
            if (outcome.recount) {
              // The snapshot's counts were being read when it arrived: re-read them to be exact again.
              if (this.#options.requestCounts !== undefined)
                await this.#options.requestCounts(tenantId, tokenId);
              else await this.#options.requestSync(tenantId, tokenId, 'notification');
            }
            if (outcome.counts !== undefined)
              await this.#options.onCountsChanged?.(tenantId, tokenId, outcome.counts);
            return 'applied';
          case 'superseded':
            logger.info({ tenantId, tokenId, notificationId }, 'Apple ASSET_COUNT already in the snapshot');
            return 'superseded';
          case 'deferred':
            return 'deferred';
          case 'inconsistent':
            logger.info(
              { tenantId, tokenId, notificationId, reason: outcome.reason },
              'ASSET_COUNT does not fit the snapshot: sync requested',
            );
            await this.#options.requestSync(tenantId, tokenId, 'notification');
            return 'syncRequested';
          case 'ignored':
            return 'ignored';
          case 'duplicate':
            return 'duplicate';
          default: {
            const never: never = outcome;
            throw new Error(`unknown outcome ${String(never)}`);
          }
        }
      }
      case 'ASSET_MANAGEMENT': {
        const report = assetManagementOf(notification.payload);
        if (report === undefined) return ignore('not an ASSET_MANAGEMENT notification Apple documents');
        // Revocations poll their own events in the process that sent them (sync/revoke-licenses.ts).
        if (report.type === 'REVOKE') return ignore('REVOKE events are followed by the revoke action');
        const result = await store.applyAssetManagement(
          notification,
          report.eventId,
          (batch) => assetManagementVerdict(report, batch),
          clock(),
        );
        if (result.kind === 'duplicate') return 'duplicate';
        if (result.kind !== 'ended' && result.kind !== 'pollNow') return 'ignored';
        logger.info(
          {
            tenantId,
            tokenId,
            notificationId,
            eventId: report.eventId,
            operationId: result.batch.operationId,
            batch: result.batch.batchIndex,
            result: report.result,
          },
          result.kind === 'ended'
            ? 'Apple ASSET_MANAGEMENT ended a license operation batch'
            : 'Apple ASSET_MANAGEMENT: the batch is polled now',
        );
        this.#options.onOperationDue?.();
        return 'applied';
      }
      default:
        return ignore(`${notificationType} is not applied yet`);
    }
  }
}

/** One item of an ASSET_MANAGEMENT notification. */
export interface AssetManagementItem {
  readonly adamId: string | null;
  readonly pricingParam: string | null;
  readonly serialNumber: string | null;
  readonly clientUserId: string | null;
  readonly errorNumber: number | null;
  readonly errorMessage: string | null;
}

/** Apple's ASSET_MANAGEMENT body, as vppd reads it. */
export interface AssetManagementReport {
  readonly eventId: string;
  readonly type: 'ASSOCIATE' | 'DISASSOCIATE' | 'REVOKE';
  readonly result: 'SUCCESS' | 'FAILURE';
  readonly error: { readonly errorNumber: number | null; readonly errorMessage: string | null } | undefined;
  /** The items the notification lists, if it lists any. */
  readonly assignments: readonly AssetManagementItem[] | undefined;
}

/** Apple lists at most this many elements in one notification: a longer event may come in parts. */
export const notificationElementLimit = 100;

const text = (value: unknown, max: number): string | null =>
  typeof value === 'string' && value.length > 0 ? value.slice(0, max) : null;

const errorNumberOf = (value: unknown): number | null =>
  typeof value === 'number' && Number.isSafeInteger(value)
    ? value
    : typeof value === 'string' && /^\d{1,9}$/.test(value)
      ? Number(value)
      : null;

/** Reads Apple's ASSET_MANAGEMENT body; undefined when it is not one. */
export function assetManagementOf(payload: unknown): AssetManagementReport | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const o = payload as Record<string, unknown>;
  const eventId = text(o.eventId, 200);
  const { type, result } = o;
  if (eventId === null || typeof o.eventId !== 'string' || o.eventId.length > 200) return undefined;
  if (type !== 'ASSOCIATE' && type !== 'DISASSOCIATE' && type !== 'REVOKE') return undefined;
  if (result !== 'SUCCESS' && result !== 'FAILURE') return undefined;
  const rawError =
    typeof o.error === 'object' && o.error !== null ? (o.error as Record<string, unknown>) : undefined;
  const error =
    rawError === undefined
      ? undefined
      : { errorNumber: errorNumberOf(rawError.errorNumber), errorMessage: text(rawError.errorMessage, 1000) };
  let assignments: AssetManagementItem[] | undefined;
  if (Array.isArray(o.assignments)) {
    assignments = [];
    for (const item of o.assignments.slice(0, 10_000)) {
      if (typeof item !== 'object' || item === null) return undefined;
      const a = item as Record<string, unknown>;
      assignments.push({
        adamId: typeof a.adamId === 'number' ? String(a.adamId) : text(a.adamId, 64),
        pricingParam: text(a.pricingParam, 16),
        serialNumber: text(a.serialNumber, 200),
        clientUserId: text(a.clientUserId, 256),
        errorNumber: errorNumberOf(a.errorNumber),
        errorMessage: text(a.errorMessage, 1000),
      });
    }
  }
  return { eventId, type, result, error, assignments };
}

/**
 * What an ASSET_MANAGEMENT notification says of the batch that sent its event:
 * - `SUCCESS`: every item of the batch is done.
 * - `FAILURE`: the items it lists failed (each with its own error number, else the notification's
 *   `error`), the others are done; without a list, every item failed. A list as long as Apple's limit
 *   per notification, shorter than the batch, may be one part of several: the batch is polled now instead.
 * - A type that is not the operation's kind: ignored (the event is not the one vppd sent).
 */
export function assetManagementVerdict(report: AssetManagementReport, batch: EventBatch): EventVerdict {
  const expected = batch.kind === 'associate' ? 'ASSOCIATE' : 'DISASSOCIATE';
  if (report.type !== expected) {
    return { kind: 'ignore', reason: `a ${report.type} result for a ${batch.kind} operation` };
  }
  if (report.result === 'SUCCESS') {
    return { kind: 'outcome', outcome: { completed: batch.requestedCount, failures: [] } };
  }
  const listed = report.assignments ?? [];
  if (listed.length >= notificationElementLimit && listed.length < batch.requestedCount) {
    return { kind: 'pollNow', reason: `Apple listed ${listed.length} of ${batch.requestedCount} items` };
  }
  const number = report.error?.errorNumber ?? null;
  const message = report.error?.errorMessage ?? 'Apple reported the event FAILURE';
  const failure = (
    item: Pick<AssetManagementItem, 'adamId' | 'pricingParam' | 'serialNumber' | 'clientUserId'>,
    own?: AssetManagementItem,
  ): LicenseOperationFailure => ({
    adamId: item.adamId,
    pricingParam: item.pricingParam,
    serialNumber: item.serialNumber,
    clientUserId: item.clientUserId,
    errorNumber: own?.errorNumber ?? number,
    errorMessage: own?.errorMessage ?? message,
  });
  let failures: LicenseOperationFailure[];
  if (listed.length > 0) {
    failures = listed.map((item) => failure(item, item));
  } else {
    failures = [];
    for (const asset of batch.assets) {
      for (const holder of batch.holders) {
        failures.push(
          failure({
            adamId: asset.adamId,
            pricingParam: asset.pricingParam,
            serialNumber: batch.holderKind === 'serialNumber' ? holder : null,
            clientUserId: batch.holderKind === 'clientUserId' ? holder : null,
          }),
        );
      }
    }
  }
  const failed = Math.min(failures.length, batch.requestedCount);
  return { kind: 'outcome', outcome: { completed: batch.requestedCount - failed, failures } };
}

/** Reads Apple's ASSET_COUNT body; undefined when it is not one. */
export function assetCountDeltaOf(payload: unknown): AssetCountDelta | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const o = payload as Record<string, unknown>;
  const adamId = typeof o.adamId === 'number' ? String(o.adamId) : o.adamId;
  const { pricingParam, countDelta } = o;
  if (typeof adamId !== 'string' || adamId.length === 0 || adamId.length > 64) return undefined;
  if (typeof pricingParam !== 'string' || pricingParam.length === 0 || pricingParam.length > 16)
    return undefined;
  if (typeof countDelta !== 'number' || !Number.isSafeInteger(countDelta) || countDelta === 0)
    return undefined;
  return { adamId, pricingParam, countDelta };
}
