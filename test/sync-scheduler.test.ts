import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { tenantA } from './helpers/graph-test-app.js';
import { createSyncHarness, type SyncHarness } from './helpers/sync-harness.js';

// Automatic syncs: interval with jitter (here random() = 0.5 → 5% early), start-up catch-up of
// overdue tokens, expired tokens re-checked once a day, and no second sync while one is in flight.

const hour = 3_600_000;
let sim: AppleSim;
let h: SyncHarness;

beforeAll(async () => {
  sim = await startAppleSim({ seed: 'sync-scheduler', rateLimit: false, pageSize: 100 });
});
afterAll(async () => {
  await sim.close();
});
beforeEach(async () => {
  sim.reset();
  // Full syncs only: delta syncs between them have their own suite (sync-delta.test.ts).
  h = await createSyncHarness({ sharedSim: sim, settings: { intervalMs: 12 * hour, deltaIntervalMs: 0 } });
});
afterEach(async () => {
  await h.close();
});

describe('SyncScheduler', () => {
  it('syncs again one interval (minus jitter) after a sync, not before', async () => {
    const created = await h.upload('small');
    await h.syncNow();
    const scheduler = h.context.sync.createScheduler();
    expect(await scheduler.tick()).toBe(0);
    h.clock.advance(12 * hour * 0.95 - 1000);
    expect(await scheduler.tick()).toBe(0);
    h.clock.advance(1000);
    expect(await scheduler.tick()).toBe(1);
    expect(await scheduler.tick()).toBe(0); // in progress: never requested twice
    const job = await h.context.sync.jobs.jobOf(tenantA, created.id as string);
    expect(job?.trigger).toBe('scheduled');
    await h.syncNow();
    expect((await h.token(created.id as string)).lastSyncStatus).toBe('completed');
  });

  it('a token never synced (or overdue after downtime) syncs once at the first tick', async () => {
    // A token stored while no sync ran: status none, no schedule.
    const response = await h.app.inject({
      method: 'POST',
      url: '/beta/deviceAppManagement/vppTokens',
      headers: { authorization: h.auth },
      payload: { token: sim.tokenFor('small') },
    });
    const tokenId = response.json().id as string;
    await h.context.db.deleteFrom('sync_jobs').execute();
    await h.context.tokens.update(tenantA, tokenId, { lastSyncStatus: 'none' });
    const scheduler = h.context.sync.createScheduler();
    scheduler.start();
    await scheduler.stop();
    expect((await h.token(tokenId)).lastSyncStatus).toBe('inProgress');
    await h.syncNow();
    expect((await h.token(tokenId)).lastSyncStatus).toBe('completed');
    expect(await scheduler.tick()).toBe(0);
  });

  it('an expired token is not hammered: one re-check a day', async () => {
    const created = await h.upload('expired');
    await h.syncNow();
    expect((await h.token(created.id as string)).state).toBe('expired');
    const scheduler = h.context.sync.createScheduler();
    h.clock.advance(12 * hour);
    expect(await scheduler.tick()).toBe(0);
    h.clock.advance(12 * hour);
    expect(await scheduler.tick()).toBe(1);
  });
});
