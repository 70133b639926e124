import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTokenFeed, type TokenFeed, type TokenFeedEvent } from './token-feed.js';
import type { TokenSummary } from './token-summaries.js';

function summary(id: string, overrides: Partial<TokenSummary> = {}): TokenSummary {
  return {
    id,
    displayName: `token ${id}`,
    organizationName: 'Org',
    locationName: null,
    countryOrRegion: null,
    appleId: null,
    vppTokenAccountType: 'business',
    state: 'valid',
    lastSyncStatus: 'completed',
    expirationDateTime: '2027-01-01T00:00:00.000Z',
    lastModifiedDateTime: '2026-01-01T00:00:00.000Z',
    lastSuccessDateTime: null,
    failure: null,
    sync: null,
    ...overrides,
  };
}

/** A database stand-in the test drives: rows per tenant, a stamp that moves on every write, read counts. */
function fakeDatabase() {
  const tenants = new Map<string, TokenSummary[]>([['t1', [summary('a'), summary('b')]]]);
  let stamp = 0;
  const reads: string[] = [];
  return {
    reads,
    write(tenantId: string, rows: TokenSummary[]) {
      tenants.set(tenantId, rows);
      stamp += 1;
    },
    load: async (tenantId: string) => {
      reads.push(tenantId);
      return [...(tenants.get(tenantId) ?? [])];
    },
    changeStamp: async () => String(stamp),
  };
}

let feed: TokenFeed | undefined;
afterEach(() => {
  feed?.close();
  vi.useRealTimers();
});

function build(db: ReturnType<typeof fakeDatabase>, now: { ms: number }) {
  feed = createTokenFeed({
    load: db.load,
    changeStamp: db.changeStamp,
    checkEveryMs: 100,
    refreshEveryMs: 10_000,
    logger: pino({ level: 'silent' }),
    monotonicNow: () => now.ms,
  });
  return feed;
}

describe('token feed', () => {
  it('sends the snapshot, then only the rows that changed, and removals', async () => {
    vi.useFakeTimers();
    const db = fakeDatabase();
    const now = { ms: 0 };
    const events: TokenFeedEvent[] = [];
    await build(db, now).subscribe('t1', (e) => events.push(e));
    expect(events).toEqual([{ type: 'snapshot', tokens: [summary('a'), summary('b')] }]);

    db.write('t1', [summary('a', { lastSyncStatus: 'inProgress' }), summary('b'), summary('c')]);
    await vi.advanceTimersByTimeAsync(100);
    expect(events.slice(1)).toEqual([
      { type: 'upsert', tokens: [summary('a', { lastSyncStatus: 'inProgress' }), summary('c')] },
    ]);

    db.write('t1', [summary('a', { lastSyncStatus: 'inProgress' }), summary('c')]);
    await vi.advanceTimersByTimeAsync(100);
    expect(events.slice(2)).toEqual([{ type: 'remove', ids: ['b'] }]);
  });

  it('reads the database only when the stamp moved or the refresh period passed', async () => {
    vi.useFakeTimers();
    const db = fakeDatabase();
    const now = { ms: 0 };
    const events: TokenFeedEvent[] = [];
    await build(db, now).subscribe('t1', (e) => events.push(e));
    await vi.advanceTimersByTimeAsync(100); // first check: no stamp seen yet, one read
    const readsAfterFirstCheck = db.reads.length;
    await vi.advanceTimersByTimeAsync(1000); // ten checks, nothing committed
    expect(db.reads.length).toBe(readsAfterFirstCheck);
    now.ms = 10_000; // the refresh period passed: re-read even without a commit, send nothing unchanged
    await vi.advanceTimersByTimeAsync(100);
    expect(db.reads.length).toBe(readsAfterFirstCheck + 1);
    expect(events).toHaveLength(1);
  });

  it('shares one read per check among every listener of a tenant, and keeps tenants apart', async () => {
    vi.useFakeTimers();
    const db = fakeDatabase();
    db.write('t2', [summary('x')]);
    const f = build(db, { ms: 0 });
    const one: TokenFeedEvent[] = [];
    const two: TokenFeedEvent[] = [];
    const other: TokenFeedEvent[] = [];
    await f.subscribe('t1', (e) => one.push(e));
    await f.subscribe('t1', (e) => two.push(e));
    await f.subscribe('t2', (e) => other.push(e));
    await vi.advanceTimersByTimeAsync(100);
    db.reads.length = 0;
    db.write('t1', [summary('a', { displayName: 'renamed' }), summary('b')]);
    await vi.advanceTimersByTimeAsync(100);
    expect(db.reads.filter((t) => t === 't1')).toHaveLength(1);
    expect(one.at(-1)).toEqual({ type: 'upsert', tokens: [summary('a', { displayName: 'renamed' })] });
    expect(two.at(-1)).toEqual(one.at(-1));
    expect(other).toEqual([{ type: 'snapshot', tokens: [summary('x')] }]);
  });

  it('stops checking when the last listener leaves, and starts again for the next', async () => {
    vi.useFakeTimers();
    const db = fakeDatabase();
    const f = build(db, { ms: 0 });
    const stop = await f.subscribe('t1', () => undefined);
    expect(f.listeners).toBe(1);
    stop();
    expect(f.listeners).toBe(0);
    db.reads.length = 0;
    db.write('t1', [summary('a')]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(db.reads).toEqual([]);
    const events: TokenFeedEvent[] = [];
    await f.subscribe('t1', (e) => events.push(e));
    expect(events).toEqual([{ type: 'snapshot', tokens: [summary('a')] }]);
  });

  it('never sends a listener rows older than its snapshot (it joined during a read)', async () => {
    vi.useFakeTimers();
    const db = fakeDatabase();
    let release: (() => void) | undefined;
    let slow = false;
    const load = async (tenantId: string) => {
      const rows = await db.load(tenantId);
      if (slow) await new Promise<void>((resolve) => (release = resolve));
      return rows;
    };
    feed = createTokenFeed({
      load,
      changeStamp: db.changeStamp,
      checkEveryMs: 100,
      refreshEveryMs: 10_000,
      logger: pino({ level: 'silent' }),
      monotonicNow: () => 0,
    });
    await feed.subscribe('t1', () => undefined);
    db.write('t1', [summary('a', { lastSyncStatus: 'inProgress' }), summary('b')]);
    slow = true;
    await vi.advanceTimersByTimeAsync(100); // a check reads the inProgress rows and waits
    slow = false;
    db.write('t1', [summary('a', { lastSyncStatus: 'completed' }), summary('b')]);
    const late: TokenFeedEvent[] = [];
    await feed.subscribe('t1', (e) => late.push(e));
    release?.();
    await vi.advanceTimersByTimeAsync(0);
    expect(late).toEqual([{ type: 'snapshot', tokens: [summary('a'), summary('b')] }]);
  });

  it('spaces reads by five times their cost while the database keeps changing', async () => {
    vi.useFakeTimers();
    const db = fakeDatabase();
    const clock = { ms: 0 };
    let loads = 0;
    feed = createTokenFeed({
      load: async (tenantId) => {
        loads += 1;
        clock.ms += 100; // each read costs 100 ms
        return db.load(tenantId);
      },
      changeStamp: db.changeStamp,
      checkEveryMs: 100,
      refreshEveryMs: 60_000,
      logger: pino({ level: 'silent' }),
      monotonicNow: () => clock.ms,
    });
    const events: TokenFeedEvent[] = [];
    await feed.subscribe('t1', (e) => events.push(e));
    loads = 0;
    // A commit in every check period, for 20 periods.
    for (let i = 0; i < 20; i += 1) {
      db.write('t1', [summary('a', { displayName: `name ${i}` }), summary('b')]);
      clock.ms += 100;
      await vi.advanceTimersByTimeAsync(100);
    }
    // Reads at periods 0, 4, 8, 12 and 16 (each 500 ms after the last began), not 20 of them...
    expect(loads).toBe(5);
    // ...and the last state still arrives once the commits stop.
    clock.ms += 1000;
    await vi.advanceTimersByTimeAsync(100);
    expect(events.at(-1)).toEqual({ type: 'upsert', tokens: [summary('a', { displayName: 'name 19' })] });
  });
});
