import { afterAll, describe, expect, it } from 'vitest';
import { realSleep } from '../src/apple/apple-client.js';
import { DatabaseRateLimiter } from '../src/storage/apple-rate-store.js';
import type { StorageEngine } from '../src/storage/engine.js';
import { createStorageEngine, migrateToLatest, parseDatabaseUrl } from '../src/storage/open-database.js';
import { openTestStorage, storageEngines, testDatabaseUrl } from './helpers/storage-engines.js';

// Issue 14: Apple's per-location request rate kept in the database (migration 0009). Several limiters —
// separate processes on PostgreSQL (one pool each), separate instances on one SQLite connection — share
// one budget: on the database's clock, no window of `windowMs` holds more than the limit, whoever asked.

const opened: StorageEngine[] = [];
afterAll(async () => {
  for (const storage of opened) await storage.close();
});

/** The most grants any window of `windowMs` holds (times sorted ascending). */
function busiestWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  let first = 0;
  for (let last = 0; last < sorted.length; last++) {
    while ((sorted[last] as number) - (sorted[first] as number) >= windowMs) first++;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

describe.each(storageEngines)('Apple request rate shared through the database (%s)', (kind) => {
  it('keeps every window at the limit across limiters, each getting its share', async () => {
    const url = await testDatabaseUrl(kind);
    const first = createStorageEngine(parseDatabaseUrl(url));
    await migrateToLatest(first);
    opened.push(first);
    // On PostgreSQL each limiter has its own pool, as a replica would. One SQLite connection serves all
    // (several in one process would block its event loop on the file lock); the state is still shared
    // only through the table.
    const engines = [first];
    if (kind === 'postgres') {
      for (let i = 0; i < 2; i++) {
        const other = createStorageEngine(parseDatabaseUrl(url));
        opened.push(other);
        engines.push(other);
      }
    } else {
      engines.push(first, first);
    }
    const grants: { limiter: number; key: string; at: number }[] = [];
    const limiters = engines.map(
      (storage, i) =>
        new DatabaseRateLimiter({
          storage,
          sleep: realSleep,
          windowMs: 500,
          onGrant: (key, at) => grants.push({ limiter: i, key, at }),
        }),
    );
    // 3 limiters x 10 requests for location A (limit 6 per 500 ms) and 3 x 3 for location B.
    await Promise.all(
      limiters.flatMap((limiter) => [
        ...Array.from({ length: 10 }, () => limiter.acquire('location-a', 6)),
        ...Array.from({ length: 3 }, () => limiter.acquire('location-b', 6)),
      ]),
    );
    const a = grants.filter((g) => g.key === 'location-a');
    const b = grants.filter((g) => g.key === 'location-b');
    expect(a).toHaveLength(30);
    expect(b).toHaveLength(9);
    expect(
      busiestWindow(
        a.map((g) => g.at),
        500,
      ),
    ).toBe(6);
    // Location B has a budget of its own: its 9 grants are not held back by A's queue.
    expect(
      busiestWindow(
        b.map((g) => g.at),
        500,
      ),
    ).toBe(6);
    for (let i = 0; i < limiters.length; i++) expect(a.filter((g) => g.limiter === i)).toHaveLength(10);
  });

  it('never grants past the limit when attempts of several pools land at the same instant', async () => {
    // The engine's attempt alone, without the limiter's per-process queue: 24 at once on one location
    // (on PostgreSQL from three pools, so up to 24 backends race for the row) grant exactly the limit.
    const url = await testDatabaseUrl(kind);
    const engines = [createStorageEngine(parseDatabaseUrl(url))];
    opened.push(engines[0] as StorageEngine);
    await migrateToLatest(engines[0] as StorageEngine);
    if (kind === 'postgres') {
      for (let i = 0; i < 2; i++) {
        const other = createStorageEngine(parseDatabaseUrl(url));
        opened.push(other);
        engines.push(other);
      }
    }
    await (engines[0] as StorageEngine).db
      .insertInto('apple_rate_windows')
      .values({ location_key: 'location-d', grants: '[]' })
      .execute();
    const attempts = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        (engines[i % engines.length] as StorageEngine).tryRateGrant('location-d', 5, 60_000),
      ),
    );
    const granted = attempts.filter((a) => a.granted);
    expect(granted).toHaveLength(5);
    const row = await (engines[0] as StorageEngine).db
      .selectFrom('apple_rate_windows')
      .selectAll()
      .where('location_key', '=', 'location-d')
      .executeTakeFirstOrThrow();
    expect([...JSON.parse(row.grants)].sort()).toEqual(granted.map((a) => a.nowMs).sort());
    // A full window refuses, and says what it found.
    const refused = await (engines[0] as StorageEngine).tryRateGrant('location-d', 5, 60_000);
    expect(refused.granted).toBe(false);
    expect(JSON.parse(refused.grants as string)).toHaveLength(5);
  });

  it('gives up waiting when the signal aborts, and the abort frees nothing it did not take', async () => {
    const storage = await openTestStorage(kind);
    opened.push(storage);
    const granted: number[] = [];
    const limiter = new DatabaseRateLimiter({
      storage,
      sleep: realSleep,
      windowMs: 60_000,
      onGrant: (_key, at) => granted.push(at),
    });
    await limiter.acquire('location-c', 2);
    await limiter.acquire('location-c', 2);
    const controller = new AbortController();
    const waiting = limiter.acquire('location-c', 2, controller.signal);
    controller.abort(new Error('sync stopped'));
    await expect(waiting).rejects.toThrow('sync stopped');
    expect(granted).toHaveLength(2);
    // Another process reading the table sees the same two grants, and no room for a third.
    const other = new DatabaseRateLimiter({ storage, sleep: realSleep, windowMs: 60_000 });
    const blocked = new AbortController();
    const third = other.acquire('location-c', 2, blocked.signal);
    setTimeout(() => blocked.abort(new Error('still full')), 200);
    await expect(third).rejects.toThrow('still full');
    const row = await storage.db
      .selectFrom('apple_rate_windows')
      .selectAll()
      .where('location_key', '=', 'location-c')
      .executeTakeFirstOrThrow();
    expect(JSON.parse(row.grants)).toEqual(granted);
  });
});
