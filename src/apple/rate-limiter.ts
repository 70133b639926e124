import { createHash } from 'node:crypto';

/**
 * Grants permission to send one request to Apple for a location. Apple allows `maxRequestPerSecond`
 * requests per second per location across all of a server's processes (docs/apple.md,
 * "Rate limits and retries"); an implementation backed by the database can enforce it across processes.
 */
export interface RateLimiter {
  /**
   * Resolves when one more request for `key` may be sent, at most `limitPerSecond` per second.
   * Rejects with the signal's reason when `signal` aborts first.
   */
  acquire(key: string, limitPerSecond: number, signal?: AbortSignal): Promise<void>;
}

/** The rate-limit key of a location: a short hash of its sToken, so the token itself is never kept. */
export function locationKeyOf(sToken: string): string {
  return createHash('sha256').update(sToken.trim()).digest('hex').slice(0, 24);
}

export interface InProcessRateLimiterOptions {
  readonly now: () => number;
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Length of the window `limitPerSecond` applies to; 1000 unless a safety margin is wanted. */
  readonly windowMs?: number;
}

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

interface KeyState {
  /** Grant times inside the current window, oldest first. */
  readonly grants: number[];
  readonly waiters: Waiter[];
  pumping: boolean;
  /** The most recent limit asked for; Apple's limit can change while requests wait. */
  limit: number;
}

/**
 * Sliding-window limiter for one process: no window of `windowMs` ever holds more than `limitPerSecond`
 * grants for a key, and waiters are served in arrival order. Share one instance by every caller.
 */
export class InProcessRateLimiter implements RateLimiter {
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #windowMs: number;
  readonly #keys = new Map<string, KeyState>();
  #lastSweep = Number.NEGATIVE_INFINITY;

  constructor(options: InProcessRateLimiterOptions) {
    this.#now = options.now;
    this.#sleep = options.sleep;
    this.#windowMs = options.windowMs ?? 1000;
  }

  /** {@inheritDoc RateLimiter.acquire} */
  acquire(key: string, limitPerSecond: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const limit = Math.max(1, Math.floor(limitPerSecond));
    this.#sweep();
    let state = this.#keys.get(key);
    if (!state) {
      state = { grants: [], waiters: [], pumping: false, limit };
      this.#keys.set(key, state);
    }
    const keyState = state;
    keyState.limit = limit;
    // Fast path: nobody queued and room in the window.
    if (keyState.waiters.length === 0 && this.#tryGrant(keyState)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = keyState.waiters.indexOf(waiter);
          if (i >= 0) keyState.waiters.splice(i, 1);
          reject(signal?.reason);
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      keyState.waiters.push(waiter);
      if (!keyState.pumping) void this.#pump(keyState);
    });
  }

  /** Keys currently tracked (for tests and metrics). */
  get trackedKeys(): number {
    return this.#keys.size;
  }

  #tryGrant(state: KeyState): boolean {
    const now = this.#now();
    const cutoff = now - this.#windowMs;
    while (state.grants.length > 0 && (state.grants[0] as number) <= cutoff) state.grants.shift();
    if (state.grants.length >= state.limit) return false;
    state.grants.push(now);
    return true;
  }

  /** Forgets idle keys whose window has passed, at most once a minute, so keys do not accumulate. */
  #sweep(): void {
    const now = this.#now();
    if (now - this.#lastSweep < 60_000) return;
    this.#lastSweep = now;
    for (const [key, state] of this.#keys) {
      const last = state.grants[state.grants.length - 1];
      const idle = state.waiters.length === 0 && !state.pumping;
      if (idle && (last === undefined || last <= now - this.#windowMs)) this.#keys.delete(key);
    }
  }

  async #pump(state: KeyState): Promise<void> {
    state.pumping = true;
    try {
      while (state.waiters.length > 0) {
        if (this.#tryGrant(state)) {
          const waiter = state.waiters.shift() as Waiter;
          waiter.signal?.removeEventListener('abort', waiter.onAbort);
          waiter.resolve();
          continue;
        }
        // The grant whose expiry makes room: with `limit` grants allowed, the limit-th newest.
        const oldest = state.grants[state.grants.length - state.limit] ?? state.grants[0] ?? this.#now();
        const wait = Math.max(1, oldest + this.#windowMs - this.#now());
        await this.#sleep(wait);
      }
    } catch (error) {
      // The injected sleep failed: release every waiter with the error rather than hang them.
      for (const waiter of state.waiters.splice(0)) {
        waiter.signal?.removeEventListener('abort', waiter.onAbort);
        waiter.reject(error);
      }
    } finally {
      state.pumping = false;
    }
  }
}
