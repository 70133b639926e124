import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { createTenantChangeStamp } from '../src/storage/change-stamp.js';
import { appendEvent, eventsChannel, parseEventWake } from '../src/storage/event-store.js';
import { createSyncProgressStore } from '../src/storage/sync-progress-store.js';
import { createTokenFeed, type TokenFeed, type TokenFeedEvent } from '../src/vppd-api/token-feed.js';
import { createTokenSummaryLoader } from '../src/vppd-api/token-summaries.js';
import { tenantA } from './helpers/graph-test-app.js';
import { createPostgresDatabase, openTestStorage } from './helpers/storage-engines.js';
import { createSyncHarness, type SyncHarness } from './helpers/sync-harness.js';

// Issue 14 part 3, wake-ups: two app instances (two contexts, each with its own pool and LISTEN
// connection) on one PostgreSQL database. B's worker and dashboard feed poll only every 10 minutes
// here, so only the notification of A's `syncRequested` (sent by pg_notify in A's transaction) can
// make B run the sync and push the new row within the wait below.

const tenMinutes = 600_000;

function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  return vi.waitFor(
    async () => {
      const value = await probe();
      if (value === undefined) throw new Error(`timed out waiting for ${what}`);
      return value;
    },
    { timeout: timeoutMs, interval: 20 },
  );
}

describe('wake-ups across app instances on PostgreSQL', () => {
  let sim: AppleSim;
  let a: SyncHarness;
  let b: SyncHarness;
  let feed: TokenFeed | undefined;

  beforeAll(async () => {
    sim = await startAppleSim({ seed: 'events-wakeups', rateLimit: false, pageSize: 100 });
    const database = await createPostgresDatabase();
    a = await createSyncHarness({ sharedSim: sim, database });
    b = await createSyncHarness({
      sharedSim: sim,
      database,
      settings: { pollMs: tenMinutes, tickMs: tenMinutes, historyTickMs: tenMinutes },
    });
  });
  afterAll(async () => {
    feed?.close();
    await a?.close();
    await b?.close();
    await sim?.close();
  });

  it("a sync requested through A wakes B's worker and B's dashboard feed", async () => {
    await b.context.sync.start('worker');
    // B's first poll (at start) has found nothing; the next one is ten minutes away.
    await (await b.worker()).poll();
    const received: TokenFeedEvent[] = [];
    feed = createTokenFeed({
      load: createTokenSummaryLoader({
        tokens: b.context.tokens,
        jobs: b.context.sync.jobs,
        progress: createSyncProgressStore({ storage: b.context.storage }),
        clock: b.clock.now,
      }),
      changeStamp: createTenantChangeStamp(b.context.storage),
      notifier: b.context.storage.notifier,
      checkEveryMs: tenMinutes,
      refreshEveryMs: tenMinutes,
      logger: pino({ level: 'silent' }),
    });
    await feed.subscribe(tenantA, (event) => received.push(event));
    expect(received.map((e) => e.type)).toEqual(['snapshot']);
    await b.context.storage.notifier.listening();

    // A uploads a token: the upload requests its first sync (A runs no worker).
    const created = await a.upload('small');
    const id = created.id as string;
    expect(created.lastSyncStatus).toBe('inProgress');

    const pushed = await until('B’s feed to push the new token', async () =>
      received.find((e) => e.type === 'upsert' && e.tokens.some((t) => t.id === id)),
    );
    expect(pushed.type).toBe('upsert');
    const synced = await until('B’s worker to run the sync A requested', async () => {
      const token = await a.token(id);
      return token.lastSyncStatus === 'completed' ? token : undefined;
    });
    expect(synced.state).toBe('valid');
    // The run is B's: A never built a worker.
    const runs = await a.context.sync.jobs.listRuns(tenantA, id, 5);
    expect(runs.map((r) => r.outcome)).toEqual(['completed']);
    expect(a.context.sync.worker).toBeUndefined();
  });
});

describe('the LISTEN connection on PostgreSQL', () => {
  it('comes back after the server ends it, tells its listeners to read again, and hears later commits', async () => {
    const storage = await openTestStorage('postgres');
    try {
      const heard: string[] = [];
      const stop = storage.notifier.listen(eventsChannel, (payload) => heard.push(payload));
      await storage.notifier.listening();
      const append = (tokenId: string) =>
        storage.db.transaction().execute((trx) =>
          appendEvent(trx, storage, new Date(), {
            tenantId: tenantA,
            tokenId,
            type: 'tokenUpdated',
          }),
        );
      await append('before');
      await until('the first notification', async () => (heard.length > 0 ? true : undefined));
      expect(parseEventWake(heard[0] as string)).toEqual({ tenantId: tenantA, type: 'tokenUpdated' });

      // The server ends the listening session (a restart, a proxy dropping it, an administrator).
      const ended = await sql<{ ended: boolean }>`
        select pg_terminate_backend(pid) as ended from pg_stat_activity
        where datname = current_database() and query like 'listen %' and pid <> pg_backend_pid()`.execute(
        storage.db,
      );
      expect(ended.rows.map((r) => r.ended)).toEqual([true]);
      // Back again: the listeners hear the empty payload ("something may have changed").
      await until('the reconnection', async () => (heard.includes('') ? true : undefined));
      await storage.notifier.listening();
      heard.length = 0;
      await append('after');
      await until('a notification after the reconnection', async () =>
        heard.some((p) => parseEventWake(p)?.type === 'tokenUpdated') ? true : undefined,
      );
      stop();
    } finally {
      await storage.close();
    }
  });
});

describe('wake-ups on SQLite (in-process)', () => {
  it("an append in this process wakes the process's dashboard feed and worker", async () => {
    const sim = await startAppleSim({ seed: 'events-wakeups-sqlite', rateLimit: false, pageSize: 100 });
    const h = await createSyncHarness({
      sharedSim: sim,
      settings: { pollMs: tenMinutes, tickMs: tenMinutes, historyTickMs: tenMinutes },
    });
    const received: TokenFeedEvent[] = [];
    const sqliteFeed = createTokenFeed({
      load: createTokenSummaryLoader({
        tokens: h.context.tokens,
        jobs: h.context.sync.jobs,
        progress: createSyncProgressStore({ storage: h.context.storage }),
        clock: h.clock.now,
      }),
      changeStamp: createTenantChangeStamp(h.context.storage),
      notifier: h.context.storage.notifier,
      checkEveryMs: tenMinutes,
      refreshEveryMs: tenMinutes,
      logger: pino({ level: 'silent' }),
    });
    try {
      await h.context.sync.start('worker');
      await (await h.worker()).poll();
      await sqliteFeed.subscribe(tenantA, (event) => received.push(event));
      // Created and requested through the stores, not the sync service (whose requestSync also calls
      // the worker's wake()): only the events' notifications can wake the feed and the worker.
      const created = await h.context.tokenService.create(
        tenantA,
        { token: sim.tokenFor('small') },
        { firstSync: false },
      );
      const id = created.id;
      await h.context.sync.jobs.requestSync(tenantA, id, 'api', h.clock.now());
      await until('the feed to push the new token', async () =>
        received.find((e) => e.type === 'upsert' && e.tokens.some((t) => t.id === id)),
      );
      await until('the worker to run the sync', async () =>
        (await h.token(id)).lastSyncStatus === 'completed' ? true : undefined,
      );
    } finally {
      sqliteFeed.close();
      await h.close();
      await sim.close();
    }
  });
});
