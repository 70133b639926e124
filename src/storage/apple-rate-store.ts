import type { StorageEngine } from './engine.js';

/** Options of {@link DatabaseRateLimiter}. */
export interface DatabaseRateLimiterOptions {
  readonly storage: StorageEngine;
  /** How this process waits for the next free moment; rejects with the signal's reason on abort. */
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /**
   * Length of the window `limitPerSecond` applies to: over a second (default 1100 ms) so that jitter never
   * makes Apple count `limit + 1` in its own second. Wider than the in-process limiter's 1050 ms: a grant
   * is timed on the database server, and its request leaves another machine after a commit round trip
   * and whatever its event loop was busy with (on a loaded 2-core VM, 1050 ms let the replica test's
   * simulator see 16 in a second in 2 runs of 4).
   */
  readonly windowMs?: number;
  /** Told of every grant: the location key and the grant's time on the database clock (tests, metrics). */
  readonly onGrant?: (key: string, atMs: number) => void;
}

/** What one attempt at a grant decided. */
type Decision =
  | { readonly granted: true; readonly atMs: number }
  | { readonly granted: false; readonly waitMs: number };

/**
 * Apple's per-location request rate kept in the database, so every process on it (replicas on several
 * machines) shares one budget: no window of `windowMs` ever holds more than `limitPerSecond` grants for
 * a location, whichever processes asked. A grant is one attempt of the engine's
 * (`StorageEngine.tryRateGrant`) on the location's row (`apple_rate_windows`: its grant times on the
 * database server's clock): one statement that counts the window and appends the grant only when
 * there is room; no transaction and no lock held across round trips. Without room, the caller sleeps
 * until the oldest grant in the window leaves it and tries again. Requests of one location in this
 * process ask one at a time, so they queue here rather than race each other for the row. Structurally the `RateLimiter` of apple/rate-limiter.ts (wired in context.ts).
 */
export class DatabaseRateLimiter {
  readonly #storage: StorageEngine;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #windowMs: number;
  readonly #onGrant: ((key: string, atMs: number) => void) | undefined;
  /** Per location: the end of the queue of this process's acquires. */
  readonly #queues = new Map<string, Promise<void>>();

  constructor(options: DatabaseRateLimiterOptions) {
    this.#storage = options.storage;
    this.#sleep = options.sleep;
    this.#windowMs = options.windowMs ?? 1100;
    this.#onGrant = options.onGrant;
  }

  /** Resolves when one more request for `key` may be sent; rejects with the signal's reason on abort. */
  acquire(key: string, limitPerSecond: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const limit = Math.max(1, Math.floor(limitPerSecond));
    const previous = this.#queues.get(key) ?? Promise.resolve();
    const turn = previous.then(() => this.#grantOrWait(key, limit, signal));
    const settled = turn.then(
      () => undefined,
      () => undefined,
    );
    this.#queues.set(key, settled);
    // The last in the queue forgets the key when done, so keys do not accumulate.
    void settled.then(() => {
      if (this.#queues.get(key) === settled) this.#queues.delete(key);
    });
    return turn;
  }

  async #grantOrWait(key: string, limit: number, signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const decision = await this.#tryGrant(key, limit);
      if (decision.granted) {
        this.#onGrant?.(key, decision.atMs);
        return;
      }
      await this.#sleep(decision.waitMs, signal);
    }
  }

  async #tryGrant(key: string, limit: number): Promise<Decision> {
    for (;;) {
      const attempt = await this.#storage.tryRateGrant(key, limit, this.#windowMs);
      if (attempt.granted) return { granted: true, atMs: attempt.nowMs };
      if (attempt.grants === undefined) {
        // The location's first request on this database: its row, then the attempt again.
        await this.#storage.db
          .insertInto('apple_rate_windows')
          .values({ location_key: key, grants: '[]' })
          .onConflict((oc) => oc.column('location_key').doNothing())
          .execute();
        continue;
      }
      const now = attempt.nowMs;
      const recent = parseGrants(attempt.grants)
        .filter((t) => t > now - this.#windowMs)
        .sort((a, b) => a - b);
      // Room in the window as found: another process took the place in between; try again.
      if (recent.length < limit) continue;
      // The grant whose leaving makes room: with `limit` allowed, the limit-th newest.
      const freeing = recent[recent.length - limit] as number;
      return { granted: false, waitMs: Math.max(1, freeing + this.#windowMs - now + 1) };
    }
  }
}

function parseGrants(text: string): number[] {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.filter((t): t is number => typeof t === 'number') : [];
  } catch {
    return [];
  }
}

/**
 * The database limiter for `storage`: the default window where processes on other machines share the
 * database, the in-process limiter's 1050 ms where only threads and processes of this machine do (a
 * SQLite file): their requests leave on the clock the grants are timed with, and the rate-limited sync
 * stays as fast as with the in-process limiter (`npm run bench -- sync`, part 2: 1.078x with 1100 ms).
 */
export function createDatabaseRateLimiter(
  storage: StorageEngine,
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>,
): DatabaseRateLimiter {
  return new DatabaseRateLimiter({
    storage,
    sleep,
    ...(storage.sharedAcrossHosts ? {} : { windowMs: 1050 }),
  });
}
