import type { Logger } from '../domain/logger.js';
import type { StorageEngine } from '../storage/engine.js';
import type { VppdDatabase } from '../storage/open-database.js';
import type { TokenCipher } from '../storage/token-cipher.js';
import { AlertDeliverer, type DeliveryAttempt, type DeliveryPolicy } from './alert-deliverer.js';
import { type EndedOperationFacts, operationAlertOf } from './alert-events.js';
import { AlertScanner, enqueue, type ScannedRun, type ScanResult } from './alert-scanner.js';
import { alertsDatabaseOf } from './alert-tables.js';
import { LicenseAlerts } from './license-alerts.js';
import type { WebhookAddressPolicy } from './webhook-address-policy.js';
import type { WebhookLookup } from './webhook-fetch.js';
import { createWebhookStore, type WebhookStore } from './webhook-store.js';

/** Loop periods of the alert machinery. */
export interface AlertSettings {
  /** How often finished syncs, states and expiry dates are scanned (default 15 s). */
  readonly scanMs: number;
  /** How often the outbox is polled for due deliveries (default 2 s). */
  readonly deliverMs: number;
  readonly delivery?: Partial<DeliveryPolicy>;
}

export const defaultAlertSettings: AlertSettings = { scanMs: 15_000, deliverMs: 2_000 };

export interface AlertServiceOptions {
  readonly db: VppdDatabase;
  /** The engine `db` runs on. */
  readonly storage: StorageEngine;
  readonly cipher: TokenCipher;
  readonly clock: () => Date;
  readonly newId: () => string;
  readonly randomBytes: (size: number) => Buffer;
  readonly random: () => number;
  readonly fetch: typeof fetch;
  /** Where deliveries may go (the fetch enforces it at connect time; creation checks it too). */
  readonly addressPolicy: WebhookAddressPolicy;
  /** Resolves webhook host names at creation. */
  readonly lookup?: WebhookLookup;
  readonly logger: Logger;
  readonly owner: string;
  readonly settings?: Partial<AlertSettings>;
  readonly onRunScanned?: (run: ScannedRun) => void;
  readonly onDeliveryAttempt?: (attempt: DeliveryAttempt) => void;
}

/**
 * Alerts of one process: the tenants' webhook endpoints, the scanner that derives events from the
 * database into the outbox, and the deliverer. `start()` runs both as background loops (separate
 * from syncs); tests call `scanOnce()` / `deliverDue()` by hand.
 */
export interface AlertService {
  readonly webhooks: WebhookStore;
  /** licensesLow / licensesExhausted / licensesAvailable: thresholds and crossing detection. */
  readonly licenses: LicenseAlerts;
  scanOnce(): Promise<ScanResult>;
  /** Deletes old delivered/failed alerts and scan marks (the scan loop does it hourly). */
  prune(retentionMs?: number): Promise<number>;
  deliverDue(): Promise<number>;
  /**
   * Queues `operationCompleted` or `operationFailed` for the tenant's endpoints that opted in; answers the
   * outbox rows created (the event id is the operation's, so queueing twice changes nothing).
   */
  queueOperationEnded(operation: EndedOperationFacts): Promise<number>;
  start(): void;
  /** Stops the loops and waits for the pass in flight. Safe to call twice. */
  stop(): Promise<void>;
}

/** Builds the alert subsystem; nothing runs until {@link AlertService.start}. */
export function createAlertService(options: AlertServiceOptions): AlertService {
  const settings = { ...defaultAlertSettings, ...options.settings };
  const webhooks = createWebhookStore(options);
  const scanner = new AlertScanner({
    db: options.db,
    clock: options.clock,
    newId: options.newId,
    ...(options.onRunScanned ? { onRunScanned: options.onRunScanned } : {}),
  });
  const licenses = new LicenseAlerts({ db: options.db, clock: options.clock, newId: options.newId });
  // One pass of the scan loop: the scanner's events, then license levels of changed snapshots.
  const scanOnce = async (): Promise<ScanResult> => {
    const result = await scanner.scanOnce();
    return { ...result, queued: result.queued + (await licenses.scanSnapshots()) };
  };
  const deliverer = new AlertDeliverer({
    db: options.db,
    webhooks,
    clock: options.clock,
    fetch: options.fetch,
    random: options.random,
    logger: options.logger,
    owner: options.owner,
    ...(settings.delivery ? { policy: settings.delivery } : {}),
    ...(options.onDeliveryAttempt ? { onAttempt: options.onDeliveryAttempt } : {}),
  });
  let controller: AbortController | undefined;
  let loops: Promise<void>[] = [];
  let lastPrune = Number.NEGATIVE_INFINITY;

  const loop = async (name: string, everyMs: number, pass: () => Promise<unknown>, signal: AbortSignal) => {
    while (!signal.aborted) {
      try {
        await pass();
      } catch (error) {
        if (signal.aborted) break;
        options.logger.error(
          { err: { message: error instanceof Error ? error.message : String(error) } },
          `alerts: ${name} pass failed`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, everyMs);
        function done() {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        }
        signal.addEventListener('abort', done, { once: true });
      });
    }
  };

  return {
    webhooks,
    licenses,
    scanOnce,
    prune: (retentionMs) => scanner.prune(retentionMs),
    deliverDue: () => deliverer.deliverDue(controller?.signal),
    queueOperationEnded(operation) {
      const event = operationAlertOf(operation);
      return alertsDatabaseOf(options.db)
        .transaction()
        .execute((trx) => enqueue(trx, options.clock(), options.newId, event));
    },
    start() {
      if (controller !== undefined) return;
      controller = new AbortController();
      const { signal } = controller;
      loops = [
        loop(
          'scan',
          settings.scanMs,
          async () => {
            await scanOnce();
            // Housekeeping about once an hour, in the same loop (never beside a sync).
            const now = options.clock().getTime();
            if (now - lastPrune >= 3_600_000) {
              lastPrune = now;
              await scanner.prune();
            }
          },
          signal,
        ),
        loop('delivery', settings.deliverMs, () => deliverer.deliverDue(signal), signal),
      ];
    },
    async stop() {
      controller?.abort();
      await Promise.all(loops);
      loops = [];
      controller = undefined;
    },
  };
}
