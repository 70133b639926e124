import type { Logger } from 'pino';
import type { ChangeStamp } from '../storage/change-stamp.js';
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
  /** The database's change stamp: rows are re-read only after something committed. */
  readonly changeStamp: ChangeStamp;
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
}

/**
 * Builds the feed. It costs nothing while nobody listens. While someone does, it reads the change stamp
 * every `checkEveryMs` (one cheap read for all connections of all tenants) and re-reads the tenants'
 * rows only when the stamp moved, then sends each connection only the rows that differ. Browsers never
 * poll: a hundred open dashboards cost one stamp read per period.
 */
export function createTokenFeed(options: TokenFeedOptions): TokenFeed {
  const { load, changeStamp, checkEveryMs, refreshEveryMs, logger } = options;
  const monotonicNow = options.monotonicNow ?? (() => performance.now());
  const tenants = new Map<string, TenantFeed>();
  let timer: NodeJS.Timeout | undefined;
  let lastStamp: string | undefined;
  let lastReadAt = Number.NEGATIVE_INFINITY;
  let lastReadCost = 0;
  let checking = false;
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

  const check = async () => {
    if (checking || closed) return;
    checking = true;
    try {
      const now = monotonicNow();
      // Reads take at most a fifth of the time, however often the database changes (a large sync
      // notes its progress every page): a read starts at least five read-durations after the last.
      if (now - lastReadAt < readCostFactor * lastReadCost) return;
      const stamp = await changeStamp();
      const due = now - lastReadAt >= refreshEveryMs;
      // No stamp (an engine without one): every check re-reads.
      if (stamp !== undefined && stamp === lastStamp && !due) return;
      lastStamp = stamp;
      lastReadAt = now;
      for (const [tenantId, feed] of tenants) {
        if (feed.listeners.size > 0) await refresh(tenantId, feed);
      }
      lastReadCost = monotonicNow() - now;
    } catch (error) {
      logger.warn({ err: error }, 'dashboard feed could not read the database; trying again');
    } finally {
      checking = false;
    }
  };

  const startTimer = () => {
    if (timer !== undefined || closed) return;
    timer = setInterval(() => void check(), checkEveryMs);
    timer.unref();
  };

  const stopTimerIfIdle = () => {
    if (listenerCount() > 0 || timer === undefined) return;
    clearInterval(timer);
    timer = undefined;
  };

  return {
    async subscribe(tenantId, listener) {
      if (closed) throw new Error('dashboard feed is closed');
      const rows = await load(tenantId);
      let feed = tenants.get(tenantId);
      if (feed === undefined) {
        feed = { listeners: new Set(), sent: new Map(rows.map((row) => [row.id, JSON.stringify(row)])) };
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
      tenants.clear();
    },
  };
}
