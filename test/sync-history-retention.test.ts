import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { SyncRunRow } from '../src/storage/database-schema.js';
import { openStorage, type VppdDatabase } from '../src/storage/open-database.js';
import { createSyncJobStore } from '../src/storage/sync-job-store.js';
import { createTokenCipher } from '../src/storage/token-cipher.js';
import { createVppTokenStore } from '../src/storage/vpp-token-store.js';
import { HistoryPruner } from '../src/sync/history-pruner.js';
import { createFakeClock } from './helpers/fake-clock.js';
import { seedTokens } from './helpers/seed-tokens.js';

const tenantId = '4e7e0000-0000-4000-8000-000000000001';
const day = 86_400_000;
const dirs: string[] = [];
const opened: VppdDatabase[] = [];
afterAll(async () => {
  for (const db of opened) await db.destroy();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function fixture() {
  const dir = mkdtempSync(join(tmpdir(), 'vppd-history-'));
  dirs.push(dir);
  const file = join(dir, 'vppd.db');
  const dbStorage = await openStorage({ kind: 'sqlite', url: `sqlite:${file}`, filename: file });
  const db = dbStorage.db;
  opened.push(db);
  const clock = createFakeClock('2026-06-01T00:00:00.000Z');
  const tokens = createVppTokenStore({
    storage: dbStorage,
    cipher: createTokenCipher(Buffer.alloc(32, 3)),
    clock: clock.now,
  });
  const jobs = createSyncJobStore({ storage: dbStorage, newId: () => crypto.randomUUID() });
  return { file, db, clock, tokens, jobs };
}

/** `count` runs of a token, one a day ending `endDaysAgo` days before the clock, oldest first. */
async function insertRuns(
  db: VppdDatabase,
  tokenId: string,
  now: Date,
  count: number,
  outcome: (i: number) => SyncRunRow['outcome'],
  prefix = 'run',
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const started = new Date(now.getTime() - (count - i) * day);
    const id = `${tokenId.slice(0, 8)}-${prefix}-${String(i).padStart(4, '0')}`;
    ids.push(id);
    await db
      .insertInto('sync_runs')
      .values({
        id,
        tenant_id: tenantId,
        token_id: tokenId,
        job_id: `job-${i}`,
        trigger: 'scheduled',
        attempt: 1,
        worker_id: 'w',
        started_at: started.toISOString(),
        finished_at: new Date(started.getTime() + 60_000).toISOString(),
        outcome: outcome(i),
        failure_kind: null,
        failure_reason: null,
        error_message: null,
        apple_error_number: null,
        http_status: null,
        location_uid: null,
        version_id: null,
        asset_count: null,
        assignment_count: null,
        page_count: null,
        staging_cleared: 1,
        kind: 'licenses',
      })
      .execute();
  }
  return ids;
}

const remaining = async (db: VppdDatabase, tokenId: string) =>
  (await db.selectFrom('sync_runs').select('id').where('token_id', '=', tokenId).orderBy('id').execute()).map(
    (r) => r.id,
  );

describe('sync history retention', () => {
  it('deletes runs past the retention in small batches, keeping what must stay', async () => {
    const { db, clock, tokens, jobs } = await fixture();
    const [a, b] = await seedTokens(tokens, { tenantId, count: 2, now: clock.now });
    const tokenA = a?.id as string;
    const tokenB = b?.id as string;
    // Token A: 400 daily runs: run 0 failed, 1-5 completed (5 is the last success), 6-399 interrupted.
    const runsA = await insertRuns(db, tokenA, clock.now(), 400, (i) =>
      i === 0 ? 'failed' : i <= 5 ? 'completed' : 'interrupted',
    );
    // Run 3 is still the snapshot of A (a snapshot only ever points at a committed run).
    await db
      .insertInto('license_snapshots')
      .values({
        token_id: tokenA,
        tenant_id: tenantId,
        run_id: runsA[3] as string,
        version_id: 'v',
        location_uid: 'loc',
        committed_at: clock.now().toISOString(),
        asset_count: 0,
        assignment_count: 0,
        total_license_count: 0,
        used_license_count: 0,
        available_license_count: 0,
      })
      .execute();
    // Token B: 30 runs, all young: nothing of B goes.
    const runsB = await insertRuns(db, tokenB, clock.now(), 30, () => 'completed');

    const pruner = new HistoryPruner({
      jobs,
      clock: clock.now,
      logger: pino({ level: 'silent' }),
      retentionMs: 90 * day,
      batchRows: 25,
      idleMs: 60_000,
    });
    const result = await pruner.prune();
    const kept = await remaining(db, tokenA);
    // Kept: the 90 days (runs 310-399, started 90..1 days ago: 90 runs), which include the newest
    // 50; the last success (5); the snapshot's run (3); the last failure is the newest interrupted
    // run (399, already kept); run 0 (failed) goes, being older than a newer failure.
    const expected = [3, 5, ...Array.from({ length: 90 }, (_, i) => 310 + i)].map((i) => runsA[i] as string);
    expect(kept).toEqual([...expected].sort());
    expect(result.deleted).toBe(400 - expected.length);
    expect(await remaining(db, tokenB)).toEqual(runsB);

    // Time passes with no sync: only the newest 50 and the last success/failure remain.
    clock.advance(365 * day);
    await pruner.prune();
    const later = await remaining(db, tokenA);
    expect(later).toEqual(
      [3, 5, ...Array.from({ length: 50 }, (_, i) => 350 + i)].map((i) => runsA[i] as string).sort(),
    );
    expect(await remaining(db, tokenB)).toEqual(runsB);
  });

  it('never deletes a run a live job references, and keeps the newest 50 however old', async () => {
    const { db, clock, tokens, jobs } = await fixture();
    const [t] = await seedTokens(tokens, { tenantId, count: 1, now: clock.now });
    const tokenId = t?.id as string;
    const runs = await insertRuns(db, tokenId, clock.now(), 80, () => 'interrupted');
    await jobs.requestSync(tenantId, tokenId, 'api', clock.now());
    await db
      .updateTable('sync_jobs')
      .set({ run_id: runs[0] as string })
      .where('token_id', '=', tokenId)
      .execute();
    clock.advance(1000 * day);
    const pruner = new HistoryPruner({
      jobs,
      clock: clock.now,
      logger: pino({ level: 'silent' }),
      retentionMs: day,
    });
    await pruner.prune();
    expect(await remaining(db, tokenId)).toEqual(
      [0, ...Array.from({ length: 50 }, (_, i) => 30 + i)].map((i) => runs[i] as string).sort(),
    );
  });

  it('truncates the WAL when no sync ran for a while, not while one did', async () => {
    const { file, db, clock, tokens, jobs } = await fixture();
    const [t] = await seedTokens(tokens, { tenantId, count: 1, now: clock.now });
    await insertRuns(db, t?.id as string, clock.now(), 200, () => 'completed');
    const wal = () => statSync(`${file}-wal`).size;
    expect(wal()).toBeGreaterThan(0);
    const pruner = new HistoryPruner({
      jobs,
      clock: clock.now,
      logger: pino({ level: 'silent' }),
      retentionMs: 3650 * day,
      idleMs: 5 * 60_000,
    });
    // The newest run finished a minute after it started, a day ago: idle for 5 minutes.
    expect((await pruner.prune()).checkpointed).toBe(true);
    expect(wal()).toBe(0);
    // A sync finished a minute ago: no checkpoint.
    await insertRuns(
      db,
      t?.id as string,
      new Date(clock.now().getTime() + day - 120_000),
      1,
      () => 'completed',
      'late',
    );
    expect((await pruner.prune()).checkpointed).toBe(false);
    expect(wal()).toBeGreaterThan(0);
  });
});
