import { afterAll, describe, expect, it, vi } from 'vitest';
import type { StorageEngine, StorageEngineKind } from '../src/storage/engine.js';
import { openStorage, parseDatabaseUrl, type VppdDatabase } from '../src/storage/open-database.js';
import { claimLockKey } from '../src/storage/postgres/engine.js';
import {
  type ClaimedSync,
  type ClaimResult,
  createSyncJobStore,
  type SyncJobStore,
} from '../src/storage/sync-job-store.js';
import { createTokenCipher } from '../src/storage/token-cipher.js';
import { createVppTokenStore } from '../src/storage/vpp-token-store.js';
import { createFakeClock, createSequentialIds } from './helpers/fake-clock.js';
import { seedTokens } from './helpers/seed-tokens.js';
import { storageEngines, testDatabaseUrl } from './helpers/storage-engines.js';

// Issue 14: on PostgreSQL a claim is one round trip (storage/postgres/job-claim.ts): the claim lock, the
// count of live leases, the round-robin pick, the leases and the tenants' turns in one simple Query,
// so the cluster-wide lock is held for server time only. Asserted against real PostgreSQL: claims
// waiting for the lock have sent their whole claim and see every lease committed before the lock was
// granted; claimers on separate pools racing claims and ends never hold more than the limit nor run a
// job twice; the claims come in the order SQLite's step-by-step transaction takes them (the same rows,
// attempts and tenant turns); a job whose retries are used up is still failed as interrupted.

const opened: VppdDatabase[] = [];
afterAll(async () => {
  for (const db of opened) await db.destroy();
});

const tenants = Array.from(
  { length: 4 },
  (_, i) => `7e000000-0000-4000-8000-0000000000${String(i).padStart(2, '0')}`,
);

async function open(url: string): Promise<StorageEngine> {
  const storage = await openStorage(parseDatabaseUrl(url));
  opened.push(storage.db);
  return storage;
}

/**
 * A database with `perTenant[i]` syncs requested for tenant i, interleaved in request time (tenant 0
 * first), with predictable token, job and request ids.
 */
async function queue(kind: StorageEngineKind, perTenant: readonly number[]) {
  const url = await testDatabaseUrl(kind);
  const storage = await open(url);
  const clock = createFakeClock();
  const tokens = createVppTokenStore({
    storage,
    cipher: createTokenCipher(Buffer.alloc(32, 3)),
    clock: clock.now,
  });
  const jobs = createSyncJobStore({ storage, newId: createSequentialIds('0000bbbb') });
  const tokenIds = createSequentialIds('0000cccc');
  const seeded = [];
  for (const [i, count] of perTenant.entries()) {
    const tenantId = tenants[i] as string;
    seeded.push(...(await seedTokens(tokens, { tenantId, count, now: clock.now, newId: tokenIds })));
  }
  // Requests alternate between tenants in this order, so request time alone would not be round-robin.
  seeded.sort((a, b) => (a.id < b.id ? -1 : 1));
  for (const token of seeded) {
    clock.advance(1);
    await jobs.requestSync(token.tenantId, token.id, 'api', clock.now());
  }
  return { url, storage, jobs };
}

const claimOptions = (workerId: string, maxActive: number, newRunId: () => string) => ({
  workerId,
  now: new Date('2026-03-02T00:00:00.000Z'),
  leaseMs: 30_000,
  maxActive,
  maxAttempts: 2,
  newRunId,
});

const claimOf = (result: ClaimResult): ClaimedSync => {
  if (result.kind !== 'claimed') throw new Error(`unexpected ${result.kind}`);
  return result.claim;
};

describe('sync claims in one round trip on PostgreSQL', () => {
  it('claims waiting for the lock have sent their claim and see the leases committed before it', async () => {
    const { url, storage } = await queue('postgres', [20, 5]);
    // The test holds the claim lock, as a claim in progress on another replica would.
    const holder = await open(url);
    const claimers = await Promise.all(Array.from({ length: 5 }, () => open(url)));
    let outsider: string[] = [];
    const results = await holder.db.transaction().execute(async (trx) => {
      await holder.serializeClaims(trx);
      const waiting = claimers.map((engine, i) =>
        createSyncJobStore({ storage: engine, newId: () => crypto.randomUUID() }).claimMany(
          claimOptions(`w${i}`, 8, () => crypto.randomUUID()),
          3,
        ),
      );
      // Each claimer's backend waits for the advisory lock with its whole claim already sent: the
      // lock, the count, the pick and the leases are one Query, nothing is left for a later round trip.
      await vi.waitFor(
        async () => {
          const backends = await storage.db
            .selectFrom('pg_stat_activity' as never)
            .select(['query' as never])
            .where('wait_event_type' as never, '=', 'Lock' as never)
            .where('wait_event' as never, '=', 'advisory' as never)
            .execute();
          const claims = (backends as { query: string }[]).filter(
            (b) =>
              // (pg_stat_activity keeps the first 1 kB of a query: the claim statement's start.)
              b.query.includes(`pg_advisory_xact_lock(${claimLockKey});`) &&
              b.query.includes('with live as ('),
          );
          expect(claims).toHaveLength(5);
        },
        { timeout: 20_000, interval: 20 },
      );
      // Meanwhile a claim commits three leases (this transaction, which holds the lock).
      const taken = await trx.selectFrom('sync_jobs').select('id').orderBy('requested_at').limit(3).execute();
      outsider = taken.map((t) => t.id);
      await trx
        .updateTable('sync_jobs')
        .set({ lease_owner: 'outsider', lease_expires_at: '2026-03-02T00:10:00.000Z', attempts: 1 })
        .where('id', 'in', outsider)
        .execute();
      return waiting;
    });
    const claimed = (await Promise.all(results)).flat().map(claimOf);
    // Eight allowed, three taken before the lock was granted to them: five, all different, none of the three.
    expect(claimed).toHaveLength(5);
    expect(new Set(claimed.map((c) => c.job.id)).size).toBe(5);
    for (const c of claimed) expect(outsider).not.toContain(c.job.id);
    const live = await storage.db
      .selectFrom('sync_jobs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('lease_expires_at', '>', '2026-03-02T00:00:00.000Z')
      .executeTakeFirstOrThrow();
    expect(Number(live.n)).toBe(8);
  });

  it('claimers on separate pools racing claims and ends never exceed the limit nor run a job twice', async () => {
    const { url, storage } = await queue('postgres', [40, 12, 8, 4]);
    const maxActive = 4;
    const pools = await Promise.all(Array.from({ length: 4 }, () => open(url)));
    const held = new Set<string>();
    const claimedIds: string[] = [];
    let most = 0;
    const now = new Date('2026-03-02T00:00:00.000Z');
    // Each pool runs three slots: claim up to two jobs, hold them for a few round trips, end
    // them (failed is enough: the job row goes and the slot frees), until the queue is empty.
    const slot = async (engine: StorageEngine, workerId: string) => {
      const store = createSyncJobStore({ storage: engine, newId: () => crypto.randomUUID() });
      for (let idle = 0; idle < 3; ) {
        const results = await store.claimMany(
          claimOptions(workerId, maxActive, () => crypto.randomUUID()),
          2,
        );
        if (results.length === 0) {
          idle += 1;
          await new Promise((resolve) => setImmediate(resolve));
          continue;
        }
        idle = 0;
        const claims = results.map(claimOf);
        for (const claim of claims) {
          // A lease is live from its claim's commit (before this) until its end commits (after the delete
          // below), so this count never exceeds the live leases in the database.
          expect(held.has(claim.job.id)).toBe(false);
          held.add(claim.job.id);
          claimedIds.push(claim.job.id);
        }
        most = Math.max(most, held.size);
        expect(held.size).toBeLessThanOrEqual(maxActive);
        // The run: a few database round trips of its own while the other slots claim; until the limit
        // has been reached once, up to 200 of them, so the slots are sure to fill on a busy machine.
        for (let i = 0; i < 2 || (most < maxActive && i < 200); i++) {
          await engine.db.selectFrom('sync_jobs').select('id').limit(1).execute();
        }
        for (const claim of claims) {
          held.delete(claim.job.id);
          await store.fail(claim, { kind: 'appleUnavailable', message: 'test' }, now, now);
        }
      }
    };
    await Promise.all(pools.flatMap((engine, p) => [0, 1, 2].map((s) => slot(engine, `w${p}.${s}`))));
    // Every job ran exactly once, and the slots were actually contended.
    expect(claimedIds).toHaveLength(64);
    expect(new Set(claimedIds).size).toBe(64);
    expect(most).toBe(maxActive);
    const left = await storage.db.selectFrom('sync_jobs').select('id').execute();
    expect(left).toEqual([]);
  });

  it('a job whose retries are used up is failed as interrupted; the next claim takes one round trip again', async () => {
    const { storage, jobs } = await queue('postgres', [3]);
    const first = claimOf(
      (
        await jobs.claimMany(
          claimOptions('w1', 5, () => crypto.randomUUID()),
          1,
        )
      )[0] as ClaimResult,
    );
    // Its worker died on the first run and on the retry: two attempts, the lease expired.
    await storage.db
      .updateTable('sync_jobs')
      .set({ attempts: 2, lease_expires_at: '2026-03-01T23:00:00.000Z' })
      .where('id', '=', first.job.id)
      .execute();
    const request = {
      workerId: 'w2',
      now: '2026-03-02T00:00:00.000Z',
      leaseExpiresAt: '2026-03-02T00:00:30.000Z',
      maxActive: 5,
      maxAttempts: 2,
      limit: 2,
      newRunId: () => crypto.randomUUID(),
    };
    // The engine claims nothing while that job waits, and says so.
    expect(await storage.claimSyncJobs(request)).toBeUndefined();
    const leased = await storage.db
      .selectFrom('sync_jobs')
      .select('id')
      .where('lease_owner', 'is not', null)
      .execute();
    expect(leased.map((r) => r.id)).toEqual([first.job.id]);
    // The store then fails it through the portable transaction, and that is the claim's only result.
    const failed = await jobs.claimMany(
      claimOptions('w2', 5, () => crypto.randomUUID()),
      2,
    );
    expect(failed).toHaveLength(1);
    expect(failed[0]?.kind).toBe('interrupted');
    if (failed[0]?.kind === 'interrupted') expect(failed[0].job.id).toBe(first.job.id);
    expect(await jobs.jobOf(first.job.tenantId, first.job.tokenId)).toBeUndefined();
    // Nothing exhausted is left: the engine claims the other two itself, oldest first.
    const rows = await storage.claimSyncJobs(request);
    expect(rows?.map((r) => r.row.attempts)).toEqual([0, 0]);
    expect(rows?.map((r) => r.row.requested_at)).toEqual(
      [...(rows ?? [])].map((r) => r.row.requested_at).sort(),
    );
  });
});

describe('the one-trip claim takes what the step-by-step transaction takes', () => {
  /**
   * Claims everything in batches of varying size; one job of the first batch is left to expire and is
   * retried. What each claim took (token, attempt, previous run), and the tenants' turns at the end.
   */
  async function claimInBatches(kind: StorageEngineKind) {
    const { storage, jobs } = await queue(kind, [9, 4, 1, 6]);
    const runIds = createSequentialIds('0000dddd');
    const taken: string[] = [];
    const store: SyncJobStore = jobs;
    const sizes = [1, 3, 2, 5, 4, 1];
    let at = new Date('2026-03-02T00:00:00.000Z').getTime();
    let abandoned = false;
    for (let round = 0; ; round++) {
      const size = sizes[round % sizes.length] as number;
      const now = new Date(at);
      const results = await store.claimMany(
        { workerId: 'w', now, leaseMs: 60_000, maxActive: 4, maxAttempts: 2, newRunId: runIds },
        size,
      );
      if (results.length === 0) break;
      expect(results.length).toBeLessThanOrEqual(Math.min(size, 4));
      for (const [i, result] of results.entries()) {
        const claim = claimOf(result);
        const previous = await storage.db
          .selectFrom('sync_runs')
          .select(['id', 'outcome'])
          .where('job_id', '=', claim.job.id)
          .where('id', '!=', claim.runId)
          .execute();
        // (Run ids are left out: PostgreSQL draws one per job it may claim before it knows how many.)
        taken.push(
          `${claim.job.tenantId.slice(-2)} ${claim.job.tokenId.slice(-3)} #${claim.attempt} ${previous.map((p) => p.outcome).join(',')}`,
        );
        // The first job claimed is abandoned (its worker died): it comes back once its lease expires.
        if (!abandoned && i === 0) {
          abandoned = true;
          continue;
        }
        await store.fail(claim, { kind: 'appleUnavailable', message: 'test' }, now, now);
      }
      at += 20_000;
    }
    const turns = await storage.db.selectFrom('sync_tenant_turns').selectAll().orderBy('tenant_id').execute();
    return { taken, turns };
  }

  it('the same jobs in the same order, the same attempts and retries, the same tenant turns', async () => {
    const sqlite = await claimInBatches('sqlite');
    const postgres = await claimInBatches('postgres');
    expect(sqlite.taken).toHaveLength(21);
    // The abandoned job was retried: a second attempt whose previous run was closed as interrupted.
    expect(sqlite.taken.filter((t) => t.includes(' #2 '))).toHaveLength(1);
    expect(sqlite.taken.find((t) => t.includes(' #2 '))).toMatch(/ interrupted$/);
    expect(postgres.taken).toEqual(sqlite.taken);
    expect(postgres.turns).toEqual(sqlite.turns);
  });
});

// Both engines answer the interface: SQLite always leaves the claim to the portable transaction.
describe.each(storageEngines)('claimSyncJobs on %s', (kind) => {
  it('claims through the engine on PostgreSQL, through the portable transaction on SQLite', async () => {
    const { storage } = await queue(kind, [2]);
    const rows = await storage.claimSyncJobs({
      workerId: 'w',
      now: '2026-03-02T00:00:00.000Z',
      leaseExpiresAt: '2026-03-02T00:00:30.000Z',
      maxActive: 5,
      maxAttempts: 2,
      limit: 5,
      newRunId: () => crypto.randomUUID(),
    });
    if (kind === 'sqlite') {
      expect(rows).toBeUndefined();
      return;
    }
    expect(rows).toHaveLength(2);
    const leased = await storage.db
      .selectFrom('sync_jobs')
      .select(['id', 'lease_owner', 'attempts', 'run_id'])
      .orderBy('requested_at')
      .execute();
    expect(leased).toEqual(
      (rows ?? []).map((r) => ({ id: r.row.id, lease_owner: 'w', attempts: 1, run_id: r.runId })),
    );
  });
});
