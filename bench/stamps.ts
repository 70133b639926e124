// `npm run bench -- stamps [--database postgres|sqlite|URL] [--callers N] [--duration S] [--rounds N]`
//
// Tenant change stamps read the way the Graph read cache reads them, without HTTP in the way: `--callers`
// (default 50) loops in this process, each asking for the tenant's stamp, then doing 0-5 event-loop turns
// of "other work" (so callers drift apart as requests do), for `--duration` seconds. Two readers on the same
// database, alternating which goes first each round:
//   shared:   storage/change-stamp.ts as the routes use it: one read in flight, callers that arrive
//             meanwhile share the next one;
//   per-turn: the baseline, the reader it replaced: callers of one event-loop turn share a read, each
//             turn sends its own, with no bound on reads in flight.
// Prints stamps answered per second, engine reads per stamp, p50/p99 wait, and shared/per-turn ratios of
// the totals. Both give every caller a read sent after its call (test/tenant-stamp-coalescing.test.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { coalesceReads } from '../src/storage/change-stamp.js';
import type { StorageEngine } from '../src/storage/engine.js';
import { createStorageEngine, migrateToLatest, parseDatabaseUrl } from '../src/storage/open-database.js';
import { benchDatabase } from './database.js';

const tenantId = 'be0c0000-0000-4000-8000-000000000001';

/** The baseline: one read per tenant per event-loop turn, as many in flight as turns ask. */
function perTurnReader(storage: StorageEngine): (tenantId: string) => Promise<number> {
  const pending = new Map<string, Promise<number>>();
  return (id) => {
    let next = pending.get(id);
    if (next === undefined) {
      next = new Promise<number>((resolve, reject) => {
        setImmediate(() => {
          pending.delete(id);
          Promise.resolve(storage.readTenantStamps([id])).then((seqs) => resolve(seqs[0] ?? 0), reject);
        });
      });
      pending.set(id, next);
    }
    return next;
  };
}

interface Result {
  readonly perSecond: number;
  readonly readsPerStamp: number;
  readonly p50: number;
  readonly p99: number;
  readonly stamps: number;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function drive(
  read: (tenantId: string) => Promise<unknown>,
  reads: () => number,
  callers: number,
  ms: number,
): Promise<Result> {
  const readsBefore = reads();
  const waits: number[] = [];
  const started = performance.now();
  const end = started + ms;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < end) {
        const asked = performance.now();
        await read(tenantId);
        waits.push(performance.now() - asked);
        for (let k = Math.floor(Math.random() * 6); k > 0; k--) await nextTurn();
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  waits.sort((a, b) => a - b);
  return {
    perSecond: waits.length / seconds,
    readsPerStamp: (reads() - readsBefore) / Math.max(1, waits.length),
    p50: waits[Math.floor(waits.length / 2)] ?? 0,
    p99: waits[Math.floor(waits.length * 0.99)] ?? 0,
    stamps: waits.length,
  };
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      database: { type: 'string', default: 'postgres' },
      callers: { type: 'string', default: '50' },
      duration: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '4' },
    },
  });
  const database = await benchDatabase(values.database);
  const callers = Math.max(1, Math.trunc(Number(values.callers)));
  const ms = Math.max(0.5, Number(values.duration)) * 1000;
  const rounds = Math.max(1, Math.trunc(Number(values.rounds)));
  const dir = await mkdtemp(join(tmpdir(), 'vppd-bench-stamps-'));
  const storage = createStorageEngine(parseDatabaseUrl(await database.fresh(dir)));
  try {
    await migrateToLatest(storage);
    let reads = 0;
    const readMany = storage.readTenantStamps.bind(storage);
    const counted = (ids: readonly string[]) => {
      reads += 1;
      return readMany(ids);
    };
    const shared = coalesceReads<string, number>(counted);
    const perTurn = perTurnReader({ ...storage, readTenantStamps: counted });
    const load = () =>
      loadavg()
        .map((l) => l.toFixed(2))
        .join(' ');
    process.stdout.write(
      `tenant stamp reads — node ${process.version}, ${database.label}, ${callers} callers, ` +
        `${rounds} round(s) of ${ms / 1000} s per reader; load average ${load()}\n`,
    );
    const totals = { shared: [] as Result[], 'per-turn': [] as Result[] };
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (['shared', 'per-turn'] as const) : (['per-turn', 'shared'] as const);
      for (const name of order) {
        const r = await drive(name === 'shared' ? shared : perTurn, () => reads, callers, ms);
        totals[name].push(r);
        process.stdout.write(
          `  ${name.padEnd(8)} ${r.perSecond.toFixed(0).padStart(8)} stamps/s   ` +
            `${r.readsPerStamp.toFixed(3)} reads/stamp   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms   ` +
            `load ${load()}\n`,
        );
      }
    }
    const sum = (rs: readonly Result[], f: (r: Result) => number) => rs.reduce((s, r) => s + f(r), 0);
    const stampsRatio = sum(totals.shared, (r) => r.stamps) / sum(totals['per-turn'], (r) => r.stamps);
    const readsRatio =
      sum(totals.shared, (r) => r.readsPerStamp * r.stamps) /
      sum(totals.shared, (r) => r.stamps) /
      (sum(totals['per-turn'], (r) => r.readsPerStamp * r.stamps) / sum(totals['per-turn'], (r) => r.stamps));
    process.stdout.write(
      `  shared vs per-turn: ${stampsRatio.toFixed(2)}x the stamps answered, ${readsRatio.toFixed(2)}x the reads ` +
        `per stamp (totals over ${rounds} round(s)); load average at the end ${load()}\n`,
    );
  } finally {
    await storage.close();
    await rm(dir, { recursive: true, force: true });
    await database.close();
  }
}
