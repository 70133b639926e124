import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import type { ClaimOptions } from '../src/storage/sync-job-store.js';
import { createFakeClock, type FakeClock } from './helpers/fake-clock.js';
import { tenantA, tenantB } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { countRunRows, currentSnapshot } from './helpers/license-snapshot-sql.js';
import { storageEngines, testDatabaseUrl } from './helpers/storage-engines.js';
import { createSyncHarness, type SyncHarness, tokensPath } from './helpers/sync-harness.js';

// Invariants 1 and 4 of docs/architecture.md with two vppd "processes" (two contexts, two workers) on one
// database file: one sync per token, enforced by the database; no token stays inProgress after its
// worker died — an expired lease is taken over, retried once, then failed as interrupted.

// On each storage engine: a SQLite file, or one PostgreSQL database, shared by both "processes".
describe.each(storageEngines)('sync recovery on %s', (engine) => {
  let sim: AppleSim;
  let dir: string;
  let clock: FakeClock;
  let p1: SyncHarness;
  let p2: SyncHarness;

  beforeAll(async () => {
    sim = await startAppleSim({ seed: 'sync-recovery', rateLimit: false, pageSize: 100 });
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(async () => {
    sim.reset();
    dir = mkdtempSync(join(tmpdir(), 'vppd-sync-recovery-'));
    clock = createFakeClock();
    const database = await testDatabaseUrl(engine, `sqlite:${join(dir, 'vppd.db')}`);
    p1 = await createSyncHarness({ sharedSim: sim, database, clock, settings: { leaseMs: 30_000 } });
    p2 = await createSyncHarness({ sharedSim: sim, database, clock, settings: { leaseMs: 30_000 } });
  });
  afterEach(async () => {
    await p1.close();
    await p2.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const id = (token: Record<string, unknown>) => token.id as string;

  function claimAs(h: SyncHarness, workerId: string): Promise<unknown> {
    const options: ClaimOptions = {
      workerId,
      now: clock.now(),
      leaseMs: 30_000,
      maxActive: 4,
      maxAttempts: 2,
      newRunId: h.context.newId,
    };
    return h.context.sync.jobs.claimNext(options);
  }

  // Note: better-sqlite3 is synchronous, so two connections in one thread cannot hold overlapping
  // transactions (the waiting one would block the thread the holder needs). Races between writers are
  // therefore raced inside one context, where the awaits between read and conditional update still
  // interleave; the SIGKILL test (sync-sigkill.test.ts) runs real separate processes.
  describe('one sync per token across processes', () => {
    it('concurrent requests make one job; the others coalesce', async () => {
      const created = await p1.upload('small');
      await p1.syncNow();
      const results = await Promise.all([
        p1.context.sync.requestSync(tenantA, id(created), 'api'),
        p1.context.sync.requestSync(tenantA, id(created), 'api'),
        p1.context.sync.requestSync(tenantA, id(created), 'scheduled'),
        p1.context.sync.requestSync(tenantA, id(created), 'scheduled'),
      ]);
      expect(results.filter((r) => r.effect === 'started')).toHaveLength(1);
      expect(results.filter((r) => r.effect === 'coalesced')).toHaveLength(3);
      // Seen from the other process: the same single job.
      expect(await p2.context.sync.jobs.jobOf(tenantA, id(created))).toMatchObject({ attempts: 0 });
    });

    it('two workers claiming at once: only one gets the job', async () => {
      await p1.upload('small');
      const claims = await Promise.all([
        claimAs(p1, 'worker-1'),
        claimAs(p1, 'worker-2'),
        claimAs(p1, 'worker-3'),
      ]);
      expect(claims.filter((c) => c !== undefined)).toHaveLength(1);
      // The other process sees the lease and claims nothing.
      expect(await claimAs(p2, 'worker-4')).toBeUndefined();
    });

    it('a live lease is never taken over while its heartbeats run', async () => {
      const created = await p1.upload('large');
      sim.faults.latency('large', 3);
      const w1 = await p1.worker();
      const w2 = await p2.worker();
      await w1.poll();
      const done = w1.idle();
      let finished = false;
      void done.then(() => {
        finished = true;
      });
      // Time runs 10 s per 60 ms of real time: the 30 s lease would lapse without the 50 ms heartbeats.
      while (!finished) {
        clock.advance(10_000);
        expect(await w2.poll()).toBe(0);
        await new Promise((r) => setTimeout(r, 60));
      }
      const runs = await p1.context.sync.jobs.listRuns(tenantA, id(created));
      expect(runs.map((r) => [r.outcome, r.attempt, r.workerId])).toEqual([['completed', 1, w1.workerId]]);
    });
  });

  describe('recovery of a dead worker', () => {
    it('an expired lease is taken over by another process and the retry completes', async () => {
      const created = await p1.upload('small');
      // "Process 1" claims the job and dies at once (no heartbeat, no commit).
      const claim = (await claimAs(p1, 'dead-worker')) as { claim: { runId: string } };
      await p1.context.sync.licenses.insertAssignments(claim.claim.runId, 0, [
        { adamId: '1', pricingParam: 'STDQ', serialNumber: 'HALF-WRITTEN' },
      ]);
      expect(await (await p2.worker()).poll()).toBe(0); // the lease is still live
      clock.advance(31_000);
      await p2.syncNow();
      const token = await p2.token(id(created));
      expect(token).toMatchObject({ lastSyncStatus: 'completed', state: 'valid' });
      const runs = await p2.context.sync.jobs.listRuns(tenantA, id(created));
      expect(runs.map((r) => [r.outcome, r.attempt])).toEqual([
        ['completed', 2],
        ['interrupted', 1],
      ]);
      expect(runs[1]?.failure).toMatchObject({ kind: 'interrupted', reason: 'internalError' });
      // The dead run's half-written rows are swept; nothing of them is ever visible.
      await p2.context.sync.createScheduler().tick();
      expect(await countRunRows(p2.context.db, claim.claim.runId)).toEqual({
        assets: 0,
        assignments: 0,
      });
    });

    it('a retry that dies too ends failed with an interrupted message, never stuck inProgress', async () => {
      const created = await p1.upload('small');
      await claimAs(p1, 'dead-1');
      clock.advance(31_000);
      await claimAs(p2, 'dead-2');
      clock.advance(31_000);
      expect(await (await p1.worker()).poll()).toBe(0);
      const token = await p1.token(id(created));
      expect(token.lastSyncStatus).toBe('failed');
      expect(token.state).toBe('unknown');
      expect(token.tokenActionResults).toEqual([expect.objectContaining({ actionState: 'failed' })]);
      const runs = await p1.context.sync.jobs.listRuns(tenantA, id(created));
      expect(runs.map((r) => [r.outcome, r.attempt])).toEqual([
        ['interrupted', 2],
        ['interrupted', 1],
      ]);
      expect(runs[0]?.failure).toMatchObject({ kind: 'interrupted', reason: 'internalError' });
      expect(runs[0]?.failure?.message).toMatch(/interrupted/);
      expect(await p1.context.sync.jobs.jobOf(tenantA, id(created))).toBeUndefined();
      // A new request starts a fresh sync that works.
      expect((await p1.requestSync(id(created))).body.lastSyncStatus).toBe('inProgress');
      await p1.syncNow();
      expect((await p1.token(id(created))).lastSyncStatus).toBe('completed');
    });

    it('a worker that lost its lease does not commit; the new owner does', async () => {
      const created = await p1.upload('large');
      sim.faults.latency('large', 3);
      const w1 = await p1.worker();
      await w1.poll();
      const job = await p1.context.sync.jobs.jobOf(tenantA, id(created));
      // Another process took the lease over (as after a long pause of process 1).
      await p1.context.db
        .updateTable('sync_jobs')
        .set({ lease_owner: 'thief', run_id: 'thief-run' })
        .where('id', '=', job?.id as string)
        .execute();
      await w1.idle();
      expect(await currentSnapshot(p1.context.db, tenantA, id(created))).toBeUndefined();
      expect((await p1.token(id(created))).lastSyncStatus).toBe('inProgress');
      expect(await countRunRows(p1.context.db, job?.runId as string)).toEqual({
        assets: 0,
        assignments: 0,
      });
      // The thief "died" too: after its lease expires the sync fails as interrupted (attempts used up).
      await p1.context.db
        .updateTable('sync_jobs')
        .set({ lease_expires_at: clock.now().toISOString() })
        .where('id', '=', job?.id as string)
        .execute();
      clock.advance(1);
      await p2.syncNow();
      expect((await p2.token(id(created))).lastSyncStatus).toBe('completed');
      const runs = await p2.context.sync.jobs.listRuns(tenantA, id(created));
      expect(runs[0]).toMatchObject({ outcome: 'completed', attempt: 2 });
    });

    it('stopping a worker gives its job back; the next worker runs it without counting an attempt', async () => {
      const created = await p1.upload('large');
      sim.faults.latency('large', 3);
      const w1 = await p1.worker();
      await w1.poll();
      await new Promise((r) => setTimeout(r, 100));
      await w1.stop();
      const job = await p1.context.sync.jobs.jobOf(tenantA, id(created));
      expect(job).toMatchObject({ leaseOwner: null, attempts: 0 });
      expect((await p1.token(id(created))).lastSyncStatus).toBe('inProgress');
      sim.faults.latency('large', 0);
      await p2.syncNow();
      expect((await p2.token(id(created))).lastSyncStatus).toBe('completed');
      const runs = await p2.context.sync.jobs.listRuns(tenantA, id(created));
      expect(runs.map((r) => [r.outcome, r.attempt])).toEqual([
        ['completed', 1],
        ['interrupted', 1],
      ]);
    });
  });

  describe('global concurrency and fairness', () => {
    it('claims at most the limit across processes, alternating tenants', async () => {
      const bearerB = `Bearer ${await mintToken({ tenantId: tenantB, roles: [roles.readWrite], now: clock.now() })}`;
      const a1 = await p1.upload('small');
      clock.advance(1);
      await p1.upload('revoked');
      clock.advance(1);
      const b1 = await p1.app.inject({
        method: 'POST',
        url: tokensPath,
        headers: { authorization: bearerB },
        payload: { token: sim.tokenFor('expired') },
      });
      expect(b1.statusCode).toBe(201);
      const claim = (h: SyncHarness, worker: string) =>
        h.context.sync.jobs.claimNext({
          workerId: worker,
          now: clock.now(),
          leaseMs: 30_000,
          maxActive: 2,
          maxAttempts: 2,
          newRunId: h.context.newId,
        });
      const first = await claim(p1, 'w1');
      const second = await claim(p2, 'w2');
      const third = await claim(p1, 'w1');
      expect(first?.kind === 'claimed' && first.claim.job.tokenId).toBe(id(a1));
      // Tenant B's job was requested last but goes before tenant A's second one.
      expect(second?.kind === 'claimed' && second.claim.job.tokenId).toBe(b1.json().id);
      expect(third).toBeUndefined();
    });
  });
});
