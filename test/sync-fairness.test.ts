import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { StorageEngine, StorageEngineKind } from '../src/storage/engine.js';
import { openStorage, parseDatabaseUrl, type VppdDatabase } from '../src/storage/open-database.js';
import { type ClaimedSync, createSyncJobStore, type SyncJobStore } from '../src/storage/sync-job-store.js';
import { createTokenCipher } from '../src/storage/token-cipher.js';
import { createVppTokenStore } from '../src/storage/vpp-token-store.js';
import { createFakeClock, createSequentialIds } from './helpers/fake-clock.js';
import { seedTokens } from './helpers/seed-tokens.js';
import { storageEngines, testDatabaseUrl } from './helpers/storage-engines.js';

// Issue 18: claims are round-robin by tenant. One tenant requests 200 syncs first, then ten tenants
// request 10 each. Asserted: every small tenant's first sync is claimed before the big tenant's
// second (k = 1), every tenant's syncs start oldest first, and no job is claimed twice — with one
// claimer, and with two processes (two connections, or two pools on PostgreSQL) claiming in turns; and
// claimers racing on separate connections never hold more leases than the global limit.

const dirs: string[] = [];
const opened: VppdDatabase[] = [];
const dbs = opened;
afterAll(async () => {
  for (const db of opened) await db.destroy();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const big = 'b1000000-0000-4000-8000-000000000000';
const small = Array.from(
  { length: 10 },
  (_, i) => `5a000000-0000-4000-8000-0000000000${String(i).padStart(2, '0')}`,
);

async function queued(kind: StorageEngineKind): Promise<{
  url: string;
  db: VppdDatabase;
  storage: StorageEngine;
  order: Map<string, string[]>;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'vppd-fairness-'));
  dirs.push(dir);
  const url = await testDatabaseUrl(kind, `sqlite:${join(dir, 'vppd.db')}`);
  const dbStorage = await openStorage(parseDatabaseUrl(url));
  const db = dbStorage.db;
  opened.push(db);
  const clock = createFakeClock();
  const tokens = createVppTokenStore({
    storage: dbStorage,
    cipher: createTokenCipher(Buffer.alloc(32, 7)),
    clock: clock.now,
  });
  const jobs = createSyncJobStore({ storage: dbStorage, newId: createSequentialIds('0000aaaa') });
  // Request order per tenant, the order the claims must keep within each tenant.
  const order = new Map<string, string[]>();
  const request = async (tenantId: string, count: number) => {
    const seeded = await seedTokens(tokens, { tenantId, count, now: clock.now });
    for (const token of seeded) {
      clock.advance(1);
      await jobs.requestSync(tenantId, token.id, 'api', clock.now());
    }
    order.set(
      tenantId,
      seeded.map((t) => t.id),
    );
  };
  await request(big, 200);
  for (const tenant of small) await request(tenant, 10);
  return { url, db, storage: dbStorage, order };
}

/** Claims every job one at a time, ending each claim before the next (concurrency 1). */
async function claimAll(claimers: readonly SyncJobStore[], workerIds: readonly string[]) {
  const claimed: ClaimedSync[] = [];
  const now = new Date('2026-03-02T00:00:00.000Z');
  for (let i = 0; ; i++) {
    const which = i % claimers.length;
    const store = claimers[which] as SyncJobStore;
    const result = await store.claimNext({
      workerId: workerIds[which] as string,
      now,
      leaseMs: 30_000,
      maxActive: 1,
      maxAttempts: 2,
      newRunId: () => crypto.randomUUID(),
    });
    if (result === undefined) break;
    if (result.kind !== 'claimed') throw new Error('unexpected interrupted job');
    claimed.push(result.claim);
    // The sync ends (failed is enough here): its job row goes, a slot is free.
    await store.fail(result.claim, { kind: 'appleUnavailable', message: 'test' }, now, now);
  }
  return claimed;
}

/** Claims every job `batch` at a time (a worker with that many free slots), ending each batch before the next. */
async function claimAllInBatches(store: SyncJobStore, batch: number, maxActive: number) {
  const claimed: ClaimedSync[] = [];
  const now = new Date('2026-03-02T00:00:00.000Z');
  for (;;) {
    const results = await store.claimMany(
      {
        workerId: 'w1',
        now,
        leaseMs: 30_000,
        maxActive,
        maxAttempts: 2,
        newRunId: () => crypto.randomUUID(),
      },
      batch,
    );
    if (results.length === 0) break;
    // Never more than the free slots, never more than the global limit allows.
    expect(results.length).toBeLessThanOrEqual(Math.min(batch, maxActive));
    for (const result of results) {
      if (result.kind !== 'claimed') throw new Error('unexpected interrupted job');
      claimed.push(result.claim);
    }
    for (const result of results)
      if (result.kind === 'claimed')
        await store.fail(result.claim, { kind: 'appleUnavailable', message: 'test' }, now, now);
  }
  return claimed;
}

function assertFair(claimed: readonly ClaimedSync[], order: Map<string, string[]>) {
  expect(claimed).toHaveLength(300);
  expect(new Set(claimed.map((c) => c.job.id)).size).toBe(300);
  const tenants = claimed.map((c) => c.job.tenantId);
  const bigSecond = tenants.indexOf(big, tenants.indexOf(big) + 1);
  for (const tenant of small) {
    // Each small tenant's first sync starts before the big tenant's second.
    expect(tenants.indexOf(tenant)).toBeLessThan(bigSecond);
  }
  for (const [tenant, tokenIds] of order) {
    expect(claimed.filter((c) => c.job.tenantId === tenant).map((c) => c.job.tokenId)).toEqual(tokenIds);
  }
  // Round-robin: while the small tenants have jobs left, the big tenant gets one turn per round.
  expect(tenants.slice(0, 11 * 10).filter((t) => t === big)).toHaveLength(10);
}

describe.each(storageEngines)('fair claims across tenants (%s)', (kind) => {
  it('starts each waiting tenant’s first sync before a busy tenant’s second', async () => {
    const { storage, order } = await queued(kind);
    const claimed = await claimAll(
      [createSyncJobStore({ storage, newId: () => crypto.randomUUID() })],
      ['w1'],
    );
    assertFair(claimed, order);
  });

  it('claims several jobs in one transaction in the same fair order', async () => {
    const { storage, order } = await queued(kind);
    const store = createSyncJobStore({ storage, newId: () => crypto.randomUUID() });
    // Batches of 7 under a limit of 7 (every batch fills the slots), then the round-robin as above.
    const claimed = await claimAllInBatches(store, 7, 7);
    assertFair(claimed, order);
    // Each claim recorded its run and started its action, as a claim of one job does.
    const runs = await storage.db.selectFrom('sync_runs').select(['id', 'outcome']).execute();
    expect(new Set(runs.map((r) => r.id))).toEqual(new Set(claimed.map((c) => c.runId)));
  });

  it('a batch takes only the slots the global limit leaves', async () => {
    const { storage } = await queued(kind);
    const store = createSyncJobStore({ storage, newId: () => crypto.randomUUID() });
    const now = new Date('2026-03-02T00:00:00.000Z');
    const options = {
      now,
      leaseMs: 30_000,
      maxActive: 5,
      maxAttempts: 2,
      newRunId: () => crypto.randomUUID(),
    };
    const first = await store.claimMany({ ...options, workerId: 'w1' }, 2);
    expect(first.map((r) => r.kind)).toEqual(['claimed', 'claimed']);
    // Ten free slots in this worker, three left in the cluster: three claimed.
    const second = await store.claimMany({ ...options, workerId: 'w2' }, 10);
    expect(second).toHaveLength(3);
    expect(await store.claimMany({ ...options, workerId: 'w3' }, 10)).toEqual([]);
    const live = await storage.db
      .selectFrom('sync_jobs')
      .select(['id', 'lease_owner'])
      .where('lease_owner', 'is not', null)
      .execute();
    expect(live).toHaveLength(5);
    const ids = [...first, ...second].map((r) => (r.kind === 'claimed' ? r.claim.job.id : ''));
    expect(new Set(ids).size).toBe(5);
    // The first batch: the big tenant's first job and the first small tenant's (round-robin, not the
    // big tenant's two oldest).
    const tenants = first.map((r) => (r.kind === 'claimed' ? r.claim.job.tenantId : ''));
    expect(new Set(tenants).size).toBe(2);
    // A slot frees: the next batch gets exactly one.
    const done = first[0];
    if (done?.kind === 'claimed')
      await store.fail(done.claim, { kind: 'appleUnavailable', message: 'x' }, now, now);
    expect(await store.claimMany({ ...options, workerId: 'w3' }, 10)).toHaveLength(1);
  });

  it('keeps the order and the global limit with two processes claiming in turns', async () => {
    const { url, storage, order } = await queued(kind);
    const otherStorage = await openStorage(parseDatabaseUrl(url));
    const other = otherStorage.db;
    opened.push(other);
    const stores = [storage, otherStorage].map((d) =>
      createSyncJobStore({ storage: d, newId: () => crypto.randomUUID() }),
    );
    // The limit is global: while w1 holds the only slot, w2 claims nothing.
    const now = new Date('2026-03-02T00:00:00.000Z');
    const options = {
      now,
      leaseMs: 30_000,
      maxActive: 1,
      maxAttempts: 2,
      newRunId: () => crypto.randomUUID(),
    };
    const first = await stores[0]?.claimNext({ ...options, workerId: 'w1' });
    expect(first?.kind).toBe('claimed');
    expect(await stores[1]?.claimNext({ ...options, workerId: 'w2' })).toBeUndefined();
    if (first?.kind === 'claimed')
      await stores[0]?.fail(first.claim, { kind: 'appleUnavailable', message: 'x' }, now, now);
    const rest = await claimAll(stores, ['w1', 'w2']);
    assertFair(first?.kind === 'claimed' ? [first.claim, ...rest] : rest, order);
  });
});

// Racing claimers need connections that wait for each other without blocking this process: PostgreSQL's
// pools. (Several SQLite connections in one process block its event loop while one waits for the
// file's write lock; the claims' single writer there is covered in turns above and by
// test/sync-recovery.test.ts.)
describe('claims racing on PostgreSQL', () => {
  it('never holds more leases than the limit while claimers race on separate connections', async () => {
    const { url, order } = await queued('postgres');
    const claimers = [];
    for (let i = 0; i < 4; i++) {
      const opened = await openStorage(parseDatabaseUrl(url));
      claimers.push(opened);
      // Closed with the rest (afterAll): each claimer is its own pool, as another process would be.
      const db = opened.db;
      dbs.push(db);
    }
    const now = new Date('2026-03-02T00:00:00.000Z');
    const results = await Promise.all(
      claimers.flatMap((engine, i) =>
        Array.from({ length: 8 }, () =>
          createSyncJobStore({ storage: engine, newId: () => crypto.randomUUID() }).claimNext({
            workerId: `w${i}`,
            now,
            leaseMs: 30_000,
            maxActive: 3,
            maxAttempts: 2,
            newRunId: () => crypto.randomUUID(),
          }),
        ),
      ),
    );
    const claimed = results.filter((r) => r?.kind === 'claimed');
    expect(claimed).toHaveLength(3);
    // Three different jobs, the first three of the round-robin: the big tenant's first, then two tenants'.
    const ids = claimed.map((r) => (r?.kind === 'claimed' ? r.claim.job.tokenId : ''));
    expect(new Set(ids).size).toBe(3);
    const firsts = [...order.values()].map((tokens) => tokens[0]);
    for (const id of ids) expect(firsts).toContain(id);
  });

  it('batches racing on separate connections never exceed the limit nor share a job', async () => {
    const { url, order } = await queued('postgres');
    const claimers = [];
    for (let i = 0; i < 4; i++) {
      const opened = await openStorage(parseDatabaseUrl(url));
      claimers.push(opened);
      dbs.push(opened.db);
    }
    const now = new Date('2026-03-02T00:00:00.000Z');
    const results = await Promise.all(
      claimers.flatMap((engine, i) =>
        Array.from({ length: 4 }, () =>
          createSyncJobStore({ storage: engine, newId: () => crypto.randomUUID() }).claimMany(
            {
              workerId: `w${i}`,
              now,
              leaseMs: 30_000,
              maxActive: 11,
              maxAttempts: 2,
              newRunId: () => crypto.randomUUID(),
            },
            4,
          ),
        ),
      ),
    );
    const claimed = results.flat().filter((r) => r.kind === 'claimed');
    // 16 batches of up to 4 (64 asked) against 11 slots: exactly 11, all different jobs.
    expect(claimed).toHaveLength(11);
    const ids = claimed.map((r) => (r.kind === 'claimed' ? r.claim.job.tokenId : ''));
    expect(new Set(ids).size).toBe(11);
    // Whatever the interleaving, the 11 are the round-robin's first: each tenant's oldest job.
    const firsts = [...order.values()].map((tokens) => tokens[0]);
    for (const id of ids) expect(firsts).toContain(id);
  });
});
