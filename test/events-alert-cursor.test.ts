import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { AlertScanner, alertCursorName, type AlertScanner as Scanner } from '../src/alerts/alert-scanner.js';
import { alertsDatabaseOf } from '../src/alerts/alert-tables.js';
import type { StorageEngine, StorageEngineKind } from '../src/storage/engine.js';
import { appendEvent } from '../src/storage/event-store.js';
import { createStorageEngine, migrateToLatest, parseDatabaseUrl } from '../src/storage/open-database.js';
import { createSyncJobStore, type SyncJobStore } from '../src/storage/sync-job-store.js';
import { createTokenCipher } from '../src/storage/token-cipher.js';
import { createVppTokenStore } from '../src/storage/vpp-token-store.js';
import { createFakeClock, type FakeClock } from './helpers/fake-clock.js';
import { seedTokens } from './helpers/seed-tokens.js';
import { createPostgresDatabase, storageEngines } from './helpers/storage-engines.js';

// Issue 14 part 3: the alert scanner reads the event log after a durable cursor. Asserted: a failed
// sync alerts exactly once however many scanners in separate engines (pools or connections) scan;
// the cursor ends at the newest event; on PostgreSQL, an event whose seq was taken by a transaction
// still in flight holds the cursor back until it commits (then both are handled, in order), and a
// seq whose transaction rolled back is skipped once the grace period passed.

const tenantId = 'a1e00000-0000-4000-8000-000000000001';
const dirs: string[] = [];
const engines: StorageEngine[] = [];
afterAll(async () => {
  for (const engine of engines) await engine.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Two engines (two pools or connections) on one fresh, migrated database. */
async function twoProcesses(kind: StorageEngineKind): Promise<[StorageEngine, StorageEngine]> {
  let url: string;
  if (kind === 'postgres') url = await createPostgresDatabase();
  else {
    const dir = mkdtempSync(join(tmpdir(), 'vppd-events-'));
    dirs.push(dir);
    url = `sqlite:${join(dir, 'vppd.db')}`;
  }
  const open = () => createStorageEngine(parseDatabaseUrl(url, { poolSize: 4 }));
  const a = open();
  await migrateToLatest(a);
  const b = open();
  engines.push(a, b);
  return [a, b];
}

interface Harness {
  readonly jobs: SyncJobStore;
  readonly scanner: Scanner;
  readonly scanned: string[];
}

function harness(storage: StorageEngine, clock: FakeClock): Harness {
  const scanned: string[] = [];
  return {
    jobs: createSyncJobStore({ storage, newId: randomUUID }),
    scanned,
    scanner: new AlertScanner({
      db: storage.db,
      clock: clock.now,
      newId: randomUUID,
      onRunScanned: (run) => scanned.push(run.runId),
      gapGraceMs: 30_000,
    }),
  };
}

async function subscribe(storage: StorageEngine, clock: FakeClock): Promise<void> {
  await alertsDatabaseOf(storage.db)
    .insertInto('alert_webhooks')
    .values({
      id: randomUUID(),
      tenant_id: tenantId,
      url: 'https://alerts.example.com/hook',
      events: JSON.stringify(['syncFailed', 'syncRecovered']),
      secret_ciphertext: 'x',
      secret_iv: 'x',
      secret_tag: 'x',
      created_at: clock.now().toISOString(),
    })
    .execute();
}

/** A sync of `tokenId` requested, claimed and failed through the job store; its run id. */
async function failedSync(jobs: SyncJobStore, tokenId: string, clock: FakeClock): Promise<string> {
  const now = clock.now();
  await jobs.requestSync(tenantId, tokenId, 'api', now);
  const result = await jobs.claimNext({
    workerId: 'worker-1',
    now,
    leaseMs: 30_000,
    maxActive: 10,
    maxAttempts: 2,
    newRunId: randomUUID,
  });
  if (result?.kind !== 'claimed') throw new Error('nothing to claim');
  const failed = await jobs.fail(
    result.claim,
    { kind: 'revoked', message: 'Apple says the token was revoked.', appleErrorNumber: 9625 },
    now,
    new Date(now.getTime() + 86_400_000),
  );
  expect(failed).toBe(true);
  return result.claim.runId;
}

async function outboxEvents(storage: StorageEngine): Promise<string[]> {
  const rows = await alertsDatabaseOf(storage.db)
    .selectFrom('alert_outbox')
    .select('event_id')
    .orderBy('event_id')
    .execute();
  return rows.map((r) => r.event_id);
}

async function cursorOf(storage: StorageEngine): Promise<number> {
  const row = await storage.db
    .selectFrom('event_cursors')
    .select('seq')
    .where('name', '=', alertCursorName)
    .executeTakeFirstOrThrow();
  return Number(row.seq);
}

async function newestSeq(storage: StorageEngine): Promise<number> {
  const { rows } = await sql<{ s: number }>`select coalesce(max(seq), 0) as s from events`.execute(
    storage.db,
  );
  return Number(rows[0]?.s);
}

async function setUp(kind: StorageEngineKind) {
  const clock = createFakeClock();
  const [a, b] = await twoProcesses(kind);
  const tokens = createVppTokenStore({
    storage: a,
    cipher: createTokenCipher(Buffer.alloc(32, 3)),
    clock: clock.now,
  });
  const seeded = await seedTokens(tokens, { tenantId, count: 3, now: clock.now });
  await subscribe(a, clock);
  return { clock, a, b, ids: seeded.map((t) => t.id), one: harness(a, clock), two: harness(b, clock) };
}

describe.each(storageEngines)('the alert cursor on %s', (kind) => {
  it('turns each failed sync into one alert, however many processes scan', async () => {
    const { a, ids, one, two } = await setUp(kind);
    const runs = [
      await failedSync(one.jobs, ids[0] as string, createFakeClock()),
      await failedSync(two.jobs, ids[1] as string, createFakeClock()),
    ];
    for (let round = 0; round < 3; round++) {
      // PostgreSQL: at the same time; SQLite's two connections here share one thread, so in turns.
      if (kind === 'postgres') await Promise.all([one.scanner.scanOnce(), two.scanner.scanOnce()]);
      else {
        await one.scanner.scanOnce();
        await two.scanner.scanOnce();
      }
    }
    expect(await outboxEvents(a)).toEqual(runs.map((id) => `syncFailed:${id}`).sort());
    // Each run was reported by exactly one of the scanners, once.
    expect([...one.scanned, ...two.scanned].sort()).toEqual([...runs].sort());
    expect(await cursorOf(a)).toBe(await newestSeq(a));
  });
});

describe('the alert cursor on postgres, with seqs committing out of order', () => {
  it('waits for a transaction holding a lower seq, then handles both in order', async () => {
    const { a, b, ids, one, clock } = await setUp('postgres');
    await one.scanner.scanOnce();
    const before = await cursorOf(a);

    // A transaction of "process" b takes the next seq and stays open.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let held!: () => void;
    const taken = new Promise<void>((resolve) => {
      held = resolve;
    });
    const inFlight = b.db.transaction().execute(async (trx) => {
      await appendEvent(trx, b, clock.now(), {
        tenantId: 'another-tenant',
        tokenId: null,
        type: 'tokenUpdated',
      });
      // An append waits for the commit (storage/postgres/at-commit.ts) unless a statement follows it:
      // this one makes it take its seq now, held while the transaction stays open.
      await sql`select 1`.execute(trx);
      held();
      await gate;
    });
    await taken;
    // Meanwhile a sync fails and commits, with a higher seq.
    const run = await failedSync(one.jobs, ids[2] as string, clock);
    const scan = await one.scanner.scanOnce();
    expect(scan.queued).toBe(0);
    expect(one.scanned).toEqual([]);
    expect(await cursorOf(a)).toBe(before);
    expect(await outboxEvents(a)).toEqual([]);

    release();
    await inFlight;
    const after = await one.scanner.scanOnce();
    expect(after.queued).toBe(1);
    expect(one.scanned).toEqual([run]);
    expect(await outboxEvents(a)).toEqual([`syncFailed:${run}`]);
    expect(await cursorOf(a)).toBe(await newestSeq(a));
  });

  it('skips the seq of a transaction that rolled back once the grace period has passed', async () => {
    const { a, b, ids, one, clock } = await setUp('postgres');
    await one.scanner.scanOnce();
    await b.db
      .transaction()
      .execute(async (trx) => {
        await appendEvent(trx, b, clock.now(), { tenantId, tokenId: null, type: 'tokenUpdated' });
        // Sent now (a statement follows it), so its seq is taken and then lost with the rollback.
        await sql`select 1`.execute(trx);
        throw new Error('rolled back');
      })
      .catch(() => undefined);
    const run = await failedSync(one.jobs, ids[0] as string, clock);
    expect((await one.scanner.scanOnce()).queued).toBe(0);
    clock.advance(29_000);
    expect((await one.scanner.scanOnce()).queued).toBe(0);
    clock.advance(2_000);
    expect((await one.scanner.scanOnce()).queued).toBe(1);
    expect(one.scanned).toEqual([run]);
    expect(await cursorOf(a)).toBe(await newestSeq(a));
  });
});
