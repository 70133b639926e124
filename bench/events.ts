// `npm run bench -- events [--writes N] [--rounds N] [--database sqlite|postgres|URL]`
//
// What the event log costs a write, measured on the write that runs most often: a running sync's
// progress note (storage/sync-progress-store.ts `record`, at most once a second per run). Against a
// baseline measured in the same run on the same database and job row: the bare conditional UPDATE it
// was before the event log. The store's write adds, in one transaction, the tenant's event_heads
// upsert, the event insert and the notification. Baseline and store alternate for --rounds rounds
// (default 5) of --writes sequential writes (default 2,000); best-of and median per write are printed,
// with their ratio. Also: a tenant's change stamp read (one index seek) on a log of 100,000 events.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { createStorageEngine, migrateToLatest, parseDatabaseUrl } from '../src/storage/open-database.js';
import { createSyncJobStore } from '../src/storage/sync-job-store.js';
import { createSyncProgressStore } from '../src/storage/sync-progress-store.js';
import { createTokenCipher } from '../src/storage/token-cipher.js';
import { createVppTokenStore } from '../src/storage/vpp-token-store.js';
import { seedTokens } from '../test/helpers/seed-tokens.js';
import { benchDatabase } from './database.js';

const tenantId = 'bench-events-tenant';

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      writes: { type: 'string', default: '2000' },
      rounds: { type: 'string', default: '5' },
      database: { type: 'string' },
    },
  });
  const writes = Math.max(1, Number(values.writes));
  const rounds = Math.max(1, Number(values.rounds));
  const where = await benchDatabase(values.database);
  const dir = mkdtempSync(join(tmpdir(), 'vppd-bench-events-'));
  const storage = createStorageEngine(parseDatabaseUrl(await where.fresh(dir)));
  try {
    await migrateToLatest(storage);
    const tokens = createVppTokenStore({
      storage,
      cipher: createTokenCipher(Buffer.alloc(32, 1)),
      clock: () => new Date(),
    });
    const [token] = await seedTokens(tokens, { tenantId, count: 1 });
    if (!token) throw new Error('no token');
    const jobs = createSyncJobStore({ storage, newId: randomUUID });
    await jobs.requestSync(tenantId, token.id, 'api', new Date());
    const claimed = await jobs.claimNext({
      workerId: 'bench',
      now: new Date(),
      leaseMs: 3_600_000,
      maxActive: 1,
      maxAttempts: 2,
      newRunId: randomUUID,
    });
    if (claimed?.kind !== 'claimed') throw new Error('no claim');
    const { job, runId } = claimed.claim;
    const progress = createSyncProgressStore({ storage });
    const db = storage.db.withTables<{
      sync_jobs: {
        progress_pages: number | null;
        progress_records: number | null;
        progress_at: string | null;
      };
    }>();
    const bare = async (i: number) => {
      await db
        .updateTable('sync_jobs')
        .set({ progress_pages: i, progress_records: i * 549, progress_at: new Date().toISOString() })
        .where('id', '=', job.id)
        .where('run_id', '=', runId)
        .execute();
    };
    const withEvent = (i: number) =>
      progress.record(job.id, runId, { phase: 'assignments', pages: i, records: i * 549 }, new Date());
    const time = async (write: (i: number) => Promise<void>) => {
      const start = performance.now();
      for (let i = 0; i < writes; i++) await write(i);
      return ((performance.now() - start) * 1000) / writes;
    };
    await time(bare);
    await time(withEvent);
    const baseline: number[] = [];
    const store: number[] = [];
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        baseline.push(await time(bare));
        store.push(await time(withEvent));
      } else {
        store.push(await time(withEvent));
        baseline.push(await time(bare));
      }
    }
    const best = (xs: number[]) => Math.min(...xs);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const out = (line: string) => process.stdout.write(`${line}\n`);
    out(
      `events benchmark — ${where.label}, ${writes} sequential writes per round, ${rounds} alternating rounds`,
    );
    out(
      `  baseline (bare progress UPDATE): best ${best(baseline).toFixed(1)} µs, median ${median(baseline).toFixed(1)} µs per write`,
    );
    out(
      `  progress write with its event:   best ${best(store).toFixed(1)} µs, median ${median(store).toFixed(1)} µs per write`,
    );
    out(
      `  ratio ${(best(store) / best(baseline)).toFixed(2)}x best-of, ${(median(store) / median(baseline)).toFixed(2)}x median (at most one write a second per running sync)`,
    );

    // A long log: the tenant stamp stays one index seek.
    await sql`with recursive n(i) as (select 1 union all select i + 1 from n where i < 100000)
      insert into events (tenant_id, token_id, type, payload, created_at)
      select ${tenantId}, null, 'syncProgressed', '{}', ${new Date().toISOString()} from n`.execute(
      storage.db,
    );
    const stampReads = 5000;
    const start = performance.now();
    for (let i = 0; i < stampReads; i++) await storage.readTenantStamp(tenantId);
    const perRead = ((performance.now() - start) * 1000) / stampReads;
    const { rows } = await sql<{ n: number }>`select count(*) as n from events`.execute(storage.db);
    out(`  tenant change stamp on a log of ${Number(rows[0]?.n)} events: ${perRead.toFixed(1)} µs per read`);
  } finally {
    await storage.close();
    await where.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
