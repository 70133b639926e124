import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InProcessRateLimiter, locationKeyOf } from './rate-limiter.js';

/** Virtual time: `sleep` parks until `run()` advances the clock to the earliest wake-up. */
class VirtualTime {
  now = 0;
  readonly #timers: { at: number; resolve: () => void }[] = [];
  readonly sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      this.#timers.push({ at: this.now + ms, resolve });
    });
  /** Advances time until nothing sleeps any more (or `until` is reached). */
  async run(until = Number.POSITIVE_INFINITY): Promise<void> {
    for (;;) {
      await new Promise((r) => setImmediate(r));
      this.#timers.sort((a, b) => a.at - b.at);
      const next = this.#timers[0];
      if (!next || next.at > until) return;
      this.#timers.shift();
      this.now = Math.max(this.now, next.at);
      next.resolve();
    }
  }
}

function maxInAnyWindow(times: readonly number[], windowMs: number): number {
  let max = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while ((times[end] as number) - (times[start] as number) >= windowMs) start++;
    max = Math.max(max, end - start + 1);
  }
  return max;
}

describe('InProcessRateLimiter', () => {
  it('grants at most the limit in any one-second window, in arrival order, without idling', async () => {
    const time = new VirtualTime();
    const limiter = new InProcessRateLimiter({ now: () => time.now, sleep: time.sleep });
    const grants: { i: number; at: number }[] = [];
    const all = Array.from({ length: 100 }, (_, i) =>
      limiter.acquire('a', 15).then(() => grants.push({ i, at: time.now })),
    );
    await time.run();
    await Promise.all(all);
    expect(grants.map((g) => g.i)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    const times = grants.map((g) => g.at);
    expect(maxInAnyWindow(times, 1000)).toBe(15);
    // 100 requests at 15/s: the 100th may go at 6 s (7 full windows minus the first), not later.
    expect(times.at(-1)).toBe(6000);
  });

  it('keeps keys independent', async () => {
    const time = new VirtualTime();
    const limiter = new InProcessRateLimiter({ now: () => time.now, sleep: time.sleep });
    const done: string[] = [];
    const all = ['a', 'b'].flatMap((key) =>
      Array.from({ length: 5 }, () => limiter.acquire(key, 5).then(() => done.push(`${key}@${time.now}`))),
    );
    await time.run();
    await Promise.all(all);
    expect(done.every((d) => d.endsWith('@0'))).toBe(true);
    expect(done).toHaveLength(10);
  });

  it('rejects an aborted waiter with the reason and serves the others', async () => {
    const time = new VirtualTime();
    const limiter = new InProcessRateLimiter({ now: () => time.now, sleep: time.sleep });
    await limiter.acquire('a', 1);
    const controller = new AbortController();
    const aborted = limiter.acquire('a', 1, controller.signal);
    const next = limiter.acquire('a', 1);
    controller.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    await time.run();
    await next;
    expect(time.now).toBe(1000);
    await expect(limiter.acquire('a', 1, AbortSignal.abort(new Error('early')))).rejects.toThrow('early');
  });

  it('applies a changed limit to requests already waiting', async () => {
    const time = new VirtualTime();
    const limiter = new InProcessRateLimiter({ now: () => time.now, sleep: time.sleep });
    const at: number[] = [];
    const first = Array.from({ length: 4 }, () => limiter.acquire('a', 2).then(() => at.push(time.now)));
    const later = Array.from({ length: 4 }, () => limiter.acquire('a', 4).then(() => at.push(time.now)));
    await time.run();
    await Promise.all([...first, ...later]);
    // Two go at once under the old limit; from the next window on, four per second.
    expect(at).toEqual([0, 0, 1000, 1000, 1000, 1000, 2000, 2000]);
  });

  it('forgets idle keys', async () => {
    const time = new VirtualTime();
    const limiter = new InProcessRateLimiter({ now: () => time.now, sleep: time.sleep });
    await limiter.acquire('a', 5);
    time.now = 120_000;
    await limiter.acquire('b', 5);
    expect(limiter.trackedKeys).toBe(1);
  });

  it('never exceeds the limit for any arrival pattern (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 80 }),
        async (limit, gaps) => {
          const time = new VirtualTime();
          const limiter = new InProcessRateLimiter({ now: () => time.now, sleep: time.sleep });
          const grants: number[] = [];
          const pending: Promise<unknown>[] = [];
          let arrival = 0;
          for (const gap of gaps) {
            arrival += gap;
            await time.run(arrival);
            time.now = Math.max(time.now, arrival);
            pending.push(limiter.acquire('k', limit).then(() => grants.push(time.now)));
          }
          await time.run();
          await Promise.all(pending);
          expect(grants).toHaveLength(gaps.length);
          expect(maxInAnyWindow(grants, 1000)).toBeLessThanOrEqual(limit);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('locationKeyOf', () => {
  it('is a stable hash that does not contain the token', () => {
    const token = 'eyJ0b2tlbiI6InNlY3JldCJ9';
    expect(locationKeyOf(token)).toBe(locationKeyOf(` ${token}\n`));
    expect(locationKeyOf(token)).toMatch(/^[0-9a-f]{24}$/);
    expect(locationKeyOf(token)).not.toContain(token);
    expect(locationKeyOf(`${token}x`)).not.toBe(locationKeyOf(token));
  });
});
