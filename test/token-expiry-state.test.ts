import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AppleSim, defaultSimLocations, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { vppTokenState } from '../src/domain/enums.js';
import { createFakeClock, type FakeClock } from './helpers/fake-clock.js';
import { tenantA } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { createSyncHarness, type SyncHarness, tokensPath } from './helpers/sync-harness.js';

// Issue: Graph read the stored `state` while the dashboard, metrics and alerts computed an effective one, so a
// token past its expiration date was `valid` on GET, in `$filter=state eq 'expired'` and `$orderby`, but
// `expired` on the dashboard. Now the scheduler stores `expired` when the date passes, and every reader reads
// the column. Two harnesses on one database file stand for two vppd processes.

let sim: AppleSim;
let dir: string;
let clock: FakeClock;
let p1: SyncHarness;
let p2: SyncHarness;

beforeAll(async () => {
  sim = await startAppleSim({
    seed: 'expiry-tests',
    rateLimit: false,
    pageSize: 100,
    locations: defaultSimLocations(),
  });
});
afterAll(async () => {
  await sim.close();
});
beforeEach(async () => {
  sim.reset();
  dir = mkdtempSync(join(tmpdir(), 'vppd-expiry-'));
  clock = createFakeClock();
  const database = `sqlite:${join(dir, 'vppd.db')}`;
  p1 = await createSyncHarness({ sharedSim: sim, database, clock });
  p2 = await createSyncHarness({ sharedSim: sim, database, clock });
});
afterEach(async () => {
  await p1.close();
  await p2.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A bearer token valid at the fake clock's now (the harness's own was minted at its start). */
async function authNow(): Promise<string> {
  return `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite], now: clock.now() })}`;
}

async function get(h: SyncHarness, url: string): Promise<Record<string, unknown>> {
  const response = await h.app.inject({ method: 'GET', url, headers: { authorization: await authNow() } });
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
}

const ids = (list: Record<string, unknown>) => (list.value as { id: string }[]).map((t) => t.id);

describe('a token whose expiration date passes', () => {
  it('is stored as expired once, and every reader agrees: GET, $filter, dashboard, alerts', async () => {
    const created = await p1.upload('small');
    const id = created.id as string;
    await p1.syncNow();
    expect((await p1.token(id)).state).toBe('valid');
    // The alert scanner has seen the token once (a first sight is not news).
    await p1.context.alerts.scanOnce();

    const expiresAt = new Date(created.expirationDateTime as string);
    clock.set(new Date(expiresAt.getTime() + 1_000));

    // Both "processes" scan: the token turns once. One after the other: two better-sqlite3 connections
    // in one thread cannot run write transactions at once (the second's busy wait blocks the thread
    // the first needs to commit), which separate processes can.
    const expire = async () => {
      await p1.context.sync.createScheduler().tick();
      await p2.context.sync.createScheduler().tick();
    };
    await expire();

    for (const h of [p1, p2]) {
      expect((await get(h, `${tokensPath}/${id}`)).state).toBe('expired');
      const filtered = await get(h, `${tokensPath}?$filter=state eq 'expired'`);
      expect(ids(filtered)).toContain(id);
      const valid = await get(h, `${tokensPath}?$filter=state eq 'valid'`);
      expect(ids(valid)).not.toContain(id);
      const dashboard = await get(h, '/vppd/v1/dashboard/tokens');
      const row = (dashboard.value as { id: string; state: string }[]).find((t) => t.id === id);
      expect(row?.state).toBe('expired');
    }

    // One stateChanged alert, however many scans and ticks follow.
    for (let i = 0; i < 3; i++) {
      await p1.context.alerts.scanOnce();
      await p2.context.alerts.scanOnce();
      await expire();
    }
    const alerted = await sql<{ state: number; seq: number }>`
      select state, seq from alert_token_states where token_id = ${id}`.execute(p1.context.db);
    expect(alerted.rows).toEqual([{ state: vppTokenState.toValue('expired'), seq: 1 }]);
  });

  it('is not touched before its expiration date', async () => {
    const created = await p1.upload('small');
    await p1.syncNow();
    clock.set(new Date(new Date(created.expirationDateTime as string).getTime() - 1_000));
    await p1.context.sync.createScheduler().tick();
    expect((await get(p1, `${tokensPath}/${created.id as string}`)).state).toBe('valid');
  });
});
