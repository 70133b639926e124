import type { Logger } from '../domain/logger.js';
import type { SyncTrigger } from '../domain/sync-trigger.js';
import type {
  AppleNotificationStore,
  AppliedCounts,
  AssetCountDelta,
  PendingNotification,
} from '../storage/apple-notification-store.js';

export interface NotificationProcessorOptions {
  readonly store: AppleNotificationStore;
  readonly clock: () => Date;
  readonly logger: Logger;
  /** Asks for a sync of the token when a notification cannot be applied consistently. */
  readonly requestSync: (tenantId: string, tokenId: string, trigger: SyncTrigger) => Promise<unknown>;
  /** Told after counts moved (license alerts listen here). */
  readonly onCountsChanged?: (tenantId: string, tokenId: string, counts: AppliedCounts) => Promise<void>;
}

/** What one drain did, by outcome. */
export interface ProcessedCounts {
  applied: number;
  ignored: number;
  syncRequested: number;
  duplicate: number;
}

const batchSize = 100;

/**
 * Applies stored notifications, oldest first, each exactly once (the outcome is written in the same
 * transaction as its effect, so two processes or a restart never apply one twice):
 * - `ASSET_COUNT` `{adamId, pricingParam, countDelta}`: the asset's totalCount and availableCount in the
 *   token's current snapshot, and the snapshot's sums. Deltas commute, so order does not matter. An
 *   unknown asset or counts that no longer add up request a sync instead.
 * - `TEST_NOTIFICATION`: nothing to do. Others (ASSET_MANAGEMENT until license operations are tracked,
 *   user notifications): recorded as ignored.
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
      const total: ProcessedCounts = { applied: 0, ignored: 0, syncRequested: 0, duplicate: 0 };
      try {
        do {
          this.#again = false;
          for (;;) {
            const pending = await this.#options.store.pendingNotifications(batchSize);
            for (const notification of pending) total[await this.#process(notification)] += 1;
            if (pending.length < batchSize) break;
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
            logger.info({ tenantId, tokenId, notificationId, ...delta }, 'Apple ASSET_COUNT applied');
            if (outcome.counts !== undefined)
              await this.#options.onCountsChanged?.(tenantId, tokenId, outcome.counts);
            return 'applied';
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
      default:
        return ignore(`${notificationType} is not applied yet`);
    }
  }
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
