import type { Logger } from 'pino';
import type { ChangeNotifier } from '../storage/change-notifier.js';
import type { TenantChangeStamp } from '../storage/change-stamp.js';
import { eventsChannel, parseEventWake } from '../storage/event-store.js';
import type { TokenSummary } from './token-summaries.js';

/** A read starts at least this many times the last read's duration after the last read started. */
const readCostFactor = 5;

/** What a dashboard connection receives: the whole table once, then only what changed. */
export type TokenFeedEvent =
  | { readonly type: 'snapshot'; readonly tokens: readonly TokenSummary[] }
  | { readonly type: 'upsert'; readonly tokens: readonly TokenSummary[] }
  | { readonly type: 'remove'; readonly ids: readonly string[] };

export type TokenFeedListener = (event: TokenFeedEvent) => void;

export interface TokenFeedOptions {
  /** Reads a tenant's rows from the database (every process's writes are there). */
  readonly load: (tenantId: string) => Promise<TokenSummary[]>;
  /** Each tenant's change stamp: a tenant's rows are re-read only after one of its changes committed. */
  readonly changeStamp: TenantChangeStamp;
  /**
   * Wakes the feed as soon as an event of a tenant it serves is appended (by any process, where the
   * engine can tell), in addition to the periodic check.
   */
  readonly notifier?: ChangeNotifier;
  /** How often the stamp is checked while anyone listens (ms). */
  readonly checkEveryMs: number;
  /**
   * Rows are re-read at least this often even without a commit (ms): what time alone changes (an
   * expiry passing, a worker's lease running out) shows up too.
   */
  readonly refreshEveryMs: number;
  readonly logger: Logger;
  readonly monotonicNow?: () => number;
}

/** Live token rows for the dashboard: one database check per period, shared by every connection. */
export interface TokenFeed {
  /** Sends the tenant's table to `listener` now, then its changes; returns the unsubscribe function. */
  subscribe(tenantId: string, listener: TokenFeedListener): Promise<() => void>;
  /** Connections listening now (all tenants). */
  readonly listeners: number;
  /** Stops checking and forgets every listener. */
  close(): void;
}

interface TenantFeed {
  readonly listeners: Set<TokenFeedListener>;
  /** The rows last sent, as JSON by token id: what the next read is compared with. */
  sent: Map<string, string>;
  /** The tenant's change stamp read before those rows. */
  stamp: string | undefined;
  /** When those rows were read (monotonic ms). */
  readAt: number;
}

/**
 * Builds the feed. It costs nothing while nobody listens. While someone does, it reads the change stamp
 * of each tenant listened to every `checkEveryMs`, and at once when the notifier says one of them
 * changed; it re-reads a tenant's rows only when its stamp moved (or `refreshEveryMs` passed), then
 * sends each connection only the rows that differ. Browsers never poll: a hundred open dashboards of
 * one tenant cost one stamp read per period.
 */
export function createTokenFeed(options: TokenFeedOptions): TokenFeed {
  const { load, changeStamp, checkEveryMs, refreshEveryMs, logger } = options;
  const monotonicNow = options.monotonicNow ?? (() => performance.now());
  const tenants = new Map<string, TenantFeed>();
  let timer: NodeJS.Timeout | undefined;
  let stopListening: (() => void) | undefined;
  let lastReadAt = Number.NEGATIVE_INFINITY;
  let lastReadCost = 0;
  let checking = false;
  // A wake that arrived during a check: its commit may have come after that check's reads.
  let checkAgain = false;
  let closed = false;

  const listenerCount = () => {
    let n = 0;
    for (const feed of tenants.values()) n += feed.listeners.size;
    return n;
  };

  const emit = (listeners: readonly TokenFeedListener[], event: TokenFeedEvent) => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        logger.warn({ err: error }, 'dashboard feed listener failed');
      }
    }
  };

  const refresh = async (tenantId: string, feed: TenantFeed) => {
    // Only those listening before the read: one who joined during it has a newer snapshot already.
    const audience = [...feed.listeners];
    const rows = await load(tenantId);
    const next = new Map(rows.map((row) => [row.id, JSON.stringify(row)]));
    const changed = rows.filter((row) => feed.sent.get(row.id) !== next.get(row.id));
    const removed = [...feed.sent.keys()].filter((id) => !next.has(id));
    feed.sent = next;
    if (changed.length > 0) emit(audience, { type: 'upsert', tokens: changed });
    if (removed.length > 0) emit(audience, { type: 'remove', ids: removed });
  };

  const check = async (): Promise<void> => {
    if (closed) return;
    if (checking) {
      checkAgain = true;
      return;
    }
    checking = true;
    checkAgain = false;
    try {
      const now = monotonicNow();
      // Reads take at most a fifth of the time, however often the database changes (a large sync
      // notes its progress every page): a read starts at least five read-durations after the last.
      if (now - lastReadAt < readCostFactor * lastReadCost) return;
      const listened = [...tenants].filter(([, feed]) => feed.listeners.size > 0);
      const stamps = await Promise.all(listened.map(([tenantId]) => changeStamp(tenantId)));
      let read = false;
      for (const [i, [tenantId, feed]] of listened.entries()) {
        const stamp = stamps[i];
        if (stamp === feed.stamp && now - feed.readAt < refreshEveryMs) continue;
        read = true;
        feed.stamp = stamp;
        feed.readAt = now;
        await refresh(tenantId, feed);
      }
      if (read) {
        lastReadAt = now;
        lastReadCost = monotonicNow() - now;
      }
    } catch (error) {
      logger.warn({ err: error }, 'dashboard feed could not read the database; trying again');
    } finally {
      checking = false;
    }
    if (checkAgain) void check();
  };

  const startTimer = () => {
    if (timer !== undefined || closed) return;
    timer = setInterval(() => void check(), checkEveryMs);
    timer.unref();
    stopListening = options.notifier?.listen(eventsChannel, (payload) => {
      const wake = parseEventWake(payload);
      // The empty payload (notifications may have been missed) concerns every tenant.
      if (wake === undefined || tenants.get(wake.tenantId)?.listeners.size) void check();
    });
  };

  const stopTimerIfIdle = () => {
    if (listenerCount() > 0 || timer === undefined) return;
    clearInterval(timer);
    timer = undefined;
    stopListening?.();
    stopListening = undefined;
  };

  return {
    async subscribe(tenantId, listener) {
      if (closed) throw new Error('dashboard feed is closed');
      // The stamp before the rows: a change committed in between moves it, and the next check re-reads.
      const stamp = await changeStamp(tenantId);
      const readAt = monotonicNow();
      const rows = await load(tenantId);
      let feed = tenants.get(tenantId);
      if (feed === undefined) {
        feed = {
          listeners: new Set(),
          sent: new Map(rows.map((row) => [row.id, JSON.stringify(row)])),
          stamp,
          readAt,
        };
        tenants.set(tenantId, feed);
      }
      listener({ type: 'snapshot', tokens: rows });
      // Joined after its snapshot: a change after the read reaches it as an upsert on the next check.
      feed.listeners.add(listener);
      startTimer();
      const joined = feed;
      return () => {
        joined.listeners.delete(listener);
        if (joined.listeners.size === 0) tenants.delete(tenantId);
        stopTimerIfIdle();
      };
    },
    get listeners() {
      return listenerCount();
    },
    close() {
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      stopListening?.();
      stopListening = undefined;
      tenants.clear();
    },
  };
}
