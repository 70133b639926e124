import type { AppleRequestObservation } from '../apple/apple-client.js';
import type { DatabaseConfig } from '../storage/open-database.js';
import type { SyncSettings } from './sync-service.js';

/**
 * What a sync thread (sync-thread.ts) is started with: plain data only, since it crosses into a
 * worker thread. The thread opens its own connection to the same database and its own Apple client.
 */
export interface SyncThreadData {
  readonly database: DatabaseConfig;
  /** The sTokens' encryption key (never logged; it only crosses the thread boundary). */
  readonly encryptionKey: Uint8Array;
  readonly apple: {
    readonly baseUrl: string;
    readonly metadataUrl: string | undefined;
    /** Connections per Apple origin, sized to the sync concurrency. */
    readonly connections: number;
    /** Pace Apple's per-location rate in the database (shared with the request thread and replicas). */
    readonly sharedRate: boolean;
  };
  readonly settings: SyncSettings;
  /** The process's name in leases and history. */
  readonly workerId: string;
  /** Records below this level are not sent to the request thread at all. */
  readonly logLevel: string;
  /**
   * The sync thread's nice value (Linux keeps one per thread): above the request thread's 0, so on a
   * busy CPU the kernel runs the request thread first.
   */
  readonly nice: number;
}

/** Request thread → sync thread. Commands with an `id` are answered by a `done` event of that id. */
export type SyncThreadCommand =
  | { readonly type: 'start' }
  | { readonly type: 'wake' }
  | { readonly type: 'drain'; readonly id: number; readonly graceMs: number }
  | { readonly type: 'stop'; readonly id: number }
  | { readonly type: 'close'; readonly id: number };

export type SyncThreadLogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Sync thread → request thread. */
export type SyncThreadEvent =
  | { readonly type: 'ready' }
  | { readonly type: 'startFailed'; readonly message: string }
  | { readonly type: 'active'; readonly active: number }
  | { readonly type: 'done'; readonly id: number; readonly value: number }
  | {
      readonly type: 'log';
      readonly level: SyncThreadLogLevel;
      readonly bindings: Record<string, unknown>;
      readonly details: object;
      readonly message: string;
    }
  | {
      /** Apple requests and rate-limit waits since the last such message (sent at most every 100 ms). */
      readonly type: 'apple';
      readonly requests: readonly AppleRequestObservation[];
      readonly waits: readonly { readonly endpoint: string; readonly waitedMs: number }[];
    };

/** pino's numeric levels, to drop records below the configured level before they cross. */
export const logLevelValues: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Number.POSITIVE_INFINITY,
};
