import { hostname } from 'node:os';
import type { AppleClient } from '../apple/apple-client.js';
import type { AppleMdmInfo } from '../apple/apple-types.js';
import type { Logger } from '../domain/logger.js';
import type { SyncTrigger } from '../domain/sync-trigger.js';
import {
  type AppleNotificationStore,
  type AppliedCounts,
  createAppleNotificationStore,
} from '../storage/apple-notification-store.js';
import type { StorageEngine } from '../storage/engine.js';
import { loadInstallationId } from '../storage/sync-installation.js';
import type { TokenCipher } from '../storage/token-cipher.js';
import type { VppTokenStore } from '../storage/vpp-token-store.js';
import { NotificationProcessor } from './notification-processor.js';
import { NotificationRegistrar } from './notification-registrar.js';

/** Loop periods (short ones in tests). */
export interface NotificationSettings {
  /** How often the worker registers tokens that need it (default 10 s: a new token is registered soon after its first sync). */
  readonly registrationTickMs: number;
  /** How often stored notifications left by another process or a restart are applied (default 5 s). */
  readonly processorPollMs: number;
}

export interface NotificationServiceOptions {
  readonly storage: StorageEngine;
  readonly tokens: VppTokenStore;
  readonly apple: AppleClient;
  readonly cipher: TokenCipher;
  /** `VPPD_PUBLIC_URL`; without it nothing is registered (Apple has nowhere to deliver). */
  readonly publicUrl: string | undefined;
  readonly clock: () => Date;
  readonly newId: () => string;
  readonly logger: Logger;
  readonly requestSync: (tenantId: string, tokenId: string, trigger: SyncTrigger) => Promise<unknown>;
  /** Queues a refresh of the token's asset counts (a `licenseCounts` job). */
  readonly requestCounts?: (tenantId: string, tokenId: string) => Promise<unknown>;
  readonly settings?: Partial<NotificationSettings>;
  readonly onCountsChanged?: (tenantId: string, tokenId: string, counts: AppliedCounts) => Promise<void>;
  /** An ASSET_MANAGEMENT notification made a license operation due: wake this process's operation worker. */
  readonly onOperationDue?: () => void;
}

/** Apple's notifications in one process: the registrar (worker role), the receiver's store, the processor. */
export interface NotificationService {
  readonly store: AppleNotificationStore;
  /** Hashes notification tokens (the receiver's check). */
  readonly cipher: TokenCipher;
  /** Undefined without `VPPD_PUBLIC_URL`. */
  readonly registrar: NotificationRegistrar | undefined;
  readonly processor: NotificationProcessor;
  /** A notification was stored: apply it now. */
  wake(): void;
  /** Starts the loops: registration in `worker`/`all`, the processor's poll everywhere. */
  start(role: 'all' | 'api' | 'worker'): void;
  /** Stops the loops and waits for a pass in flight. Safe to call twice. */
  stop(): Promise<void>;
}

/** Builds the notification subsystem; nothing runs until {@link NotificationService.start}. */
export function createNotificationService(options: NotificationServiceOptions): NotificationService {
  const { storage, clock, logger } = options;
  const store = createAppleNotificationStore({ storage });
  const settings: NotificationSettings = {
    registrationTickMs: 10_000,
    processorPollMs: 5_000,
    ...options.settings,
  };
  let mdmInfo: Promise<AppleMdmInfo> | undefined;
  const registrar =
    options.publicUrl === undefined
      ? undefined
      : new NotificationRegistrar({
          store,
          tokens: options.tokens,
          apple: options.apple,
          cipher: options.cipher,
          publicUrl: options.publicUrl,
          clock,
          newId: options.newId,
          logger,
          mdmInfo: () => {
            mdmInfo ??= loadInstallationId(storage.db, options.newId).then((id) => ({
              id,
              name: 'vppd',
              metadata: `vppd on ${hostname()}`,
            }));
            return mdmInfo;
          },
        });
  const processor = new NotificationProcessor({
    store,
    clock,
    logger,
    requestSync: options.requestSync,
    ...(options.requestCounts === undefined ? {} : { requestCounts: options.requestCounts }),
    ...(options.onCountsChanged === undefined ? {} : { onCountsChanged: options.onCountsChanged }),
    ...(options.onOperationDue === undefined ? {} : { onOperationDue: options.onOperationDue }),
  });

  const timers: NodeJS.Timeout[] = [];
  const inFlight = new Set<Promise<unknown>>();
  const abort = new AbortController();
  let stopped = false;
  const run = (name: string, work: () => Promise<unknown>) => {
    if (stopped) return;
    const pass = work().catch((error: unknown) => logger.error({ err: error }, `${name} failed`));
    inFlight.add(pass);
    void pass.finally(() => inFlight.delete(pass));
  };
  const drain = () => run('applying Apple notifications', () => processor.drain());

  return {
    store,
    cipher: options.cipher,
    registrar,
    processor,
    wake: drain,
    start(role) {
      drain();
      timers.push(setInterval(drain, settings.processorPollMs).unref());
      if (registrar !== undefined && role !== 'api') {
        // One pass at a time: two passes registering one token would race their bearer tokens.
        let pass: Promise<unknown> | undefined;
        const register = () => {
          if (pass !== undefined) return;
          pass = registrar.registerPending(abort.signal).finally(() => {
            pass = undefined;
          });
          const current = pass;
          run('registering for Apple notifications', () => current);
        };
        register();
        timers.push(setInterval(register, settings.registrationTickMs).unref());
      }
    },
    async stop() {
      stopped = true;
      abort.abort();
      for (const timer of timers) clearInterval(timer);
      timers.length = 0;
      await Promise.all([...inFlight]);
    },
  };
}
