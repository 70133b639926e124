// `npm run bench -- busy [--part api|pool|both] [--rounds N] [--duration S] [--locations N]
//                         [--assignments N] [--concurrency N] [--rate N]
//                         [--pool-tokens N] [--pool-latency MS] [--threads 0|1|0,1]
//                         [--database sqlite|postgres|URL] [--load-process] [--probe]
//                         [--sim-latency MS] [--sim-nice N] [--load fixed|autocannon]`
//
// A busy node (issue 18). The Apple simulator runs in its own process (bench/sync.ts's child), as
// Apple is a remote service; vppd runs in this process with logging off, on a SQLite file or, for the api
// part, `--database postgres` (bench/database.ts).
// (api)  The Graph API while syncs run: 300 tokens in one tenant, `--locations` of them (default 48)
//        real simulator locations of `--assignments` licenses (default 3,000). A fixed-rate load
//        generator (bench/fixed-rate-load.ts) in a worker thread sends `GET vppTokens?$top=100` and
//        `GET vppTokens/{id}` at `--rate` req/s each (default 20, evenly spaced; each latency from when
//        the request was due, so a stall counts for every request it delayed) for `--duration` s,
//        first with no sync running (idle), then while the worker keeps `--concurrency` (default 16)
//        syncs running (a driver re-requests every finished token). Idle and busy alternate for
//        `--rounds` rounds; the figures are p99s per round. Targets: busy list p99 <= 25 ms, busy get
//        p99 <= 15 ms. `--threads` (default 1) is VPPD_SYNC_THREADS: 1 runs the syncs in a worker
//        thread of their own, 0 in the request thread; `0,1` measures both, one after the other.
//        `--load-process` runs the load generator in a child process instead (real clients are not
//        inside the server); `--load autocannon` uses autocannon's `overallRate` as before (bursts at
//        each second and a 1 ms coordinated-omission interval, which inflate its p99: compare). `--probe` times each request server-side (bench/busy-probe.ts) and prints, per phase,
//        where a cache miss's time went; CPU and run-queue wait per thread are printed always.
//        `--sim-latency` adds that many ms to every simulator call (fewer syncs/s). `--sim-nice N`
//        runs the simulator's process at nice N: Apple's CPU is not on vppd's machine, the simulator's
//        is (20-24 % of a core while busy), and at nice 0 it takes turns with the request thread.
// (pool) Apple connections sized to the work: `--pool-tokens` (default 96) locations of 500
//        licenses at `--pool-latency` (default 200) ms per Apple call, synced once with sync
//        concurrency 16, then 32 (each a fresh database and context). Target: 32 >= 1.8x faster.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { loadavg, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver, performance } from 'node:perf_hooks';
import { parseArgs, promisify } from 'node:util';
import { SignJWT } from 'jose';
import { sql } from 'kysely';
import { pino } from 'pino';
import { request } from 'undici';
import { type Config, parseConfig } from '../src/config.js';
import { createContext } from '../src/context.js';
import { decodeSToken } from '../src/domain/stoken.js';
import { createVppToken } from '../src/domain/vpp-token.js';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import { seedTokens } from '../test/helpers/seed-tokens.js';
import {
  formatCpu,
  probeRequests,
  type RequestProbe,
  type ServerSide,
  type Spread,
  sampleCpu,
} from './busy-probe.js';
import { type BenchDatabase, benchDatabase } from './database.js';
import { fixedRateLoad } from './fixed-rate-load.js';
import { type BenchSim, childProcessSim, location } from './sync.js';

interface Histogram {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}
interface AutocannonResult {
  readonly requests: { readonly total: number; readonly average: number };
  readonly latency: Histogram;
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (
  options: Record<string, unknown>,
) => Promise<AutocannonResult>;

const tenantId = 'b05e0000-0000-4000-8000-000000000001';
const listPath = '/beta/deviceAppManagement/vppTokens?$top=100';
const out = (line: string) => process.stdout.write(`${line}\n`);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

function benchConfig(
  dir: string,
  sim: BenchSim,
  concurrency: number,
  jwtSecret: string,
  threads = '1',
  database = `sqlite:${join(dir, 'vppd.db')}`,
): Config {
  return parseConfig({
    port: '0',
    host: '127.0.0.1',
    database,
    encryptionKey: randomBytes(32).toString('base64'),
    jwtSecret,
    appleUrl: sim.baseUrl,
    syncConcurrency: String(concurrency),
    syncThreads: threads,
    logLevel: 'silent',
  });
}

/** autocannon in a child process (`--load autocannon --load-process`). */
const loadScript = `const autocannon = require(process.argv[1]);
autocannon(JSON.parse(process.argv[2])).then(
  (r) => process.stdout.write(JSON.stringify(r)),
  (e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); },
);`;
const autocannonPath = createRequire(import.meta.url).resolve('autocannon');
const execFileAsync = promisify(execFile);
let loadInProcess = false;
let loadGenerator: 'fixed' | 'autocannon' = 'fixed';

/** The latency figures a phase reports, from either load generator. */
interface LoadResult {
  readonly requests: { readonly total: number };
  readonly latency: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly errors: number;
  readonly timeouts?: number;
  readonly non2xx: number;
}

/**
 * Fixed-rate load on one path, in a worker thread (or a child process with `--load-process`): by
 * default bench/fixed-rate-load.ts (evenly spaced requests, latency from when each was due);
 * `--load autocannon` keeps the earlier generator for comparison (its bursts and its 1 ms
 * coordinated-omission interval inflate the p99: see fixed-rate-load.ts).
 */
async function fire(url: string, authorization: string, rate: number, duration: number): Promise<LoadResult> {
  let result: LoadResult;
  if (loadGenerator === 'fixed') {
    result = await fixedRateLoad(
      { url, headers: { authorization }, rate, durationS: duration, connections: 8, timeoutMs: 10_000 },
      { process: loadInProcess },
    );
  } else {
    const options = {
      url,
      connections: 4,
      duration,
      overallRate: rate,
      headers: { authorization },
      timeout: 10,
    };
    result = loadInProcess
      ? (JSON.parse(
          (
            await execFileAsync(
              process.execPath,
              ['-e', loadScript, autocannonPath, JSON.stringify(options)],
              {
                maxBuffer: 64 * 1024 * 1024,
              },
            )
          ).stdout,
        ) as AutocannonResult)
      : await autocannon({ ...options, workers: 1 });
  }
  if (result.errors > 0 || (result.timeouts ?? 0) > 0 || result.non2xx > 0) {
    throw new Error(
      `load on ${url}: ${result.errors} errors, ${result.timeouts ?? 0} timeouts, ${result.non2xx} non-2xx`,
    );
  }
  return result;
}

interface Phase {
  readonly list: LoadResult;
  readonly get: LoadResult;
  readonly syncsCompleted: number;
  readonly meanRunning: number;
  /** Event-loop delay of the vppd thread during the phase (p99 and max, ms). */
  readonly loopP99: number;
  readonly loopMax: number;
  /** Share of the event-loop delay samples over 10 ms (the long tasks a request may queue behind). */
  readonly loopOver10: number;
  /** Share of the phase the vppd thread was busy. */
  readonly utilization: number;
  /** Garbage-collection pauses during the phase: total and longest, ms. */
  readonly gcMs: number;
  readonly gcMaxMs: number;
  /** Events appended during the phase, by type (each moves the tenant's change stamp). */
  readonly events: string;
  /** CPU per thread group (bench/busy-probe.ts). */
  readonly cpu: string;
  /** Server-side timing lines, with `--probe`. */
  readonly probe: string | undefined;
}

async function apiPart(
  values: Record<string, string | boolean | undefined>,
  threads: string,
  db: BenchDatabase,
): Promise<string[]> {
  const locations = Number(values.locations);
  const assignments = Number(values.assignments);
  const concurrency = Number(values.concurrency);
  const rate = Number(values.rate);
  const duration = Number(values.duration);
  const rounds = Math.max(1, Number(values.rounds));
  const ids = Array.from({ length: locations }, (_, i) => `busy-${i}`);
  const sim = await childProcessSim({
    locations: ids.map((id) => location(id, 20, assignments)),
    pageSize: 549,
    rateLimit: false,
    seed: 'bench-busy',
  });
  const simLatency = Number(values['sim-latency'] ?? 0);
  if (simLatency > 0) for (const id of ids) await sim.setLatency(id, simLatency);
  // Apple's CPU is not on vppd's machine; the simulator's is. --sim-nice lowers its claim on the cores.
  const simNice = Number(values['sim-nice'] ?? 0);
  if (simNice !== 0 && sim.pid !== undefined) setPriority(sim.pid, simNice);
  let probe: RequestProbe | undefined;
  const dir = await mkdtemp(join(tmpdir(), 'vppd-bench-busy-'));
  const jwtSecret = randomBytes(48).toString('base64url');
  let server: RunningServer | undefined;
  const missed: string[] = [];
  try {
    server = await startServer(benchConfig(dir, sim, concurrency, jwtSecret, threads, await db.fresh(dir)), {
      logger: pino({ level: 'silent' }),
    });
    const { context } = server;
    const syncing: string[] = [];
    for (const id of ids) {
      const content = await sim.tokenFor(id);
      const decoded = decodeSToken(content);
      const token = createVppToken({
        id: context.newId(),
        tenantId,
        decoded,
        write: { token: content, displayName: `Busy ${id}` },
        now: new Date(),
      });
      await context.tokens.create(token, decoded);
      syncing.push(token.id);
    }
    await seedTokens(context.tokens, { tenantId, count: Math.max(0, 300 - locations) });
    const now = Math.floor(Date.now() / 1000);
    const jwt = await new SignJWT({ tid: tenantId, roles: ['DeviceManagementServiceConfig.Read.All'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(new TextEncoder().encode(jwtSecret));
    const authorization = `Bearer ${jwt}`;
    const getPath = `/beta/deviceAppManagement/vppTokens/${syncing[0]}`;
    for (const path of [listPath, getPath]) {
      const response = await request(`${server.url}${encodeURI(path)}`, { headers: { authorization } });
      await response.body.text();
      if (response.statusCode !== 200) throw new Error(`GET ${path} answered ${response.statusCode}`);
    }
    const worker = await context.sync.createRunner();
    if (values.probe === true) {
      probe = probeRequests({
        listPrefix: encodeURI(listPath),
        getPrefix: getPath,
        tokens: context.tokens as unknown as Record<string, unknown>,
        readers: ['get', 'listPage', 'listPageVersions'],
        storage: context.storage as unknown as Record<string, unknown>,
        stampReader: 'readTenantStampsWithoutProgress',
        sync: context.sync as unknown as Record<string, unknown>,
        writes: ['requestSync'],
      });
    }
    const completedRuns = async () => {
      const row = await sql<{
        n: number;
      }>`select count(*) as n from sync_runs where outcome = 'completed'`.execute(context.db);
      return Number(row.rows[0]?.n ?? 0);
    };

    const newestSeq = async () => {
      const row = await sql<{ s: number }>`select coalesce(max(seq), 0) as s from events`.execute(context.db);
      return Number(row.rows[0]?.s ?? 0);
    };

    const phase = async (busy: boolean): Promise<Phase> => {
      let driving = busy;
      let samples = 0;
      let runningSum = 0;
      // The driver keeps every location syncing: each 100 ms it re-requests the ones with no job left
      // (their sync finished), read on the read connection. Re-requesting all 48 every time cost ~480
      // write transactions a second on the request thread's connection, which no real node makes.
      const driver = (async () => {
        while (driving) {
          const queued = new Set(
            (await context.storage.reads.selectFrom('sync_jobs').select('token_id').execute()).map(
              (row) => row.token_id,
            ),
          );
          for (const id of syncing) {
            if (!queued.has(id)) await context.sync.requestSync(tenantId, id, 'api');
          }
          samples++;
          runningSum += worker.active;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      })();
      if (busy) {
        worker.start();
        // Let the syncs ramp up to the concurrency before measuring.
        const until = Date.now() + 10_000;
        while (worker.active < concurrency && Date.now() < until) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        samples = 0;
        runningSum = 0;
      }
      const before = await completedRuns();
      const seqBefore = await newestSeq();
      const delay = monitorEventLoopDelay({ resolution: 5 });
      delay.enable();
      let gcMs = 0;
      let gcMaxMs = 0;
      const gc = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) {
          gcMs += entry.duration;
          gcMaxMs = Math.max(gcMaxMs, entry.duration);
        }
      });
      gc.observe({ entryTypes: ['gc'] });
      const elu = performance.eventLoopUtilization();
      const cpu = sampleCpu(sim.pid);
      probe?.begin();
      const [list, get] = await Promise.all([
        fire(`${server?.url}${encodeURI(listPath)}`, authorization, rate, duration),
        fire(`${server?.url}${encodeURI(getPath)}`, authorization, rate, duration),
      ]);
      const cpuUse = cpu();
      const probed = probe?.end();
      delay.disable();
      gc.disconnect();
      const utilization = performance.eventLoopUtilization(elu).utilization;
      const syncsCompleted = (await completedRuns()) - before;
      const appended = await sql<{ type: string; n: number }>`
        select type, count(*) as n from events where seq > ${seqBefore} group by type order by count(*) desc`.execute(
        context.db,
      );
      driving = false;
      await driver;
      if (busy) {
        await worker.drain(60_000);
        await worker.stop();
      }
      return {
        list,
        get,
        syncsCompleted,
        meanRunning: samples === 0 ? 0 : runningSum / samples,
        loopP99: delay.percentile(99) / 1e6,
        loopMax: delay.max / 1e6,
        loopOver10: shareAbove(delay, 10),
        utilization,
        gcMs,
        gcMaxMs,
        cpu: formatCpu(cpuUse),
        events: appended.rows.map((r) => `${r.type} ${r.n}`).join(', '),
        probe:
          probed === undefined
            ? undefined
            : `server-side list ${fmtServer(probed.list)}\n      server-side get  ${fmtServer(probed.get)}\n` +
              `      tenant-stamp read ${fmtSpread(probed.stampReadUs, 'µs')}; the driver's requestSync ${fmtSpread(probed.storeWrites, 'ms')}`,
      };
    };

    out(
      `busy benchmark (api) — node ${process.version}, 300 tokens in one tenant, ${locations} of them simulator ` +
        `locations of ${assignments} licenses (simulator in its own process${simNice === 0 ? '' : ` at nice ${simNice}`}), ${db.label}, logging off; ` +
        `syncs ${threads === '1' ? 'in a worker thread (VPPD_SYNC_THREADS=1)' : 'in the request thread (VPPD_SYNC_THREADS=0)'}; ` +
        `${rate} req/s of list and of get for ${duration} s per phase; sync concurrency ${concurrency}; ` +
        `load average ${load()}`,
    );
    // Warm-up: a short idle phase and a short busy one.
    await fire(`${server.url}${encodeURI(listPath)}`, authorization, rate, 2);
    const idle: Phase[] = [];
    const busy: Phase[] = [];
    const fmt = (r: LoadResult) =>
      `p50 ${r.latency.p50.toFixed(1).padStart(5)} ms  p99 ${r.latency.p99.toFixed(1).padStart(5)} ms  ` +
      `max ${r.latency.max.toFixed(0).padStart(4)} ms  (${r.requests.total} req)`;
    const loop = (p: Phase) =>
      `vppd thread busy ${(p.utilization * 100).toFixed(0)} %, event-loop delay p99 ${p.loopP99.toFixed(1)} ms, ` +
      `max ${p.loopMax.toFixed(0)} ms, > 10 ms ${(p.loopOver10 * 100).toFixed(1)} %, GC ${p.gcMs.toFixed(0)} ms (longest ${p.gcMaxMs.toFixed(0)} ms)`;
    for (let round = 0; round < rounds; round++) {
      const i = await phase(false);
      idle.push(i);
      out(`  round ${round + 1} idle: list ${fmt(i.list)}; get ${fmt(i.get)}; ${loop(i)}`);
      out(`      ${i.cpu}`);
      if (i.probe) out(`      ${i.probe}`);
      const b = await phase(true);
      busy.push(b);
      out(
        `  round ${round + 1} busy: list ${fmt(b.list)}; get ${fmt(b.get)}; ` +
          `${b.syncsCompleted} syncs completed (${(b.syncsCompleted / duration).toFixed(1)}/s, ` +
          `${(b.syncsCompleted * assignments).toLocaleString('en-US')} licenses), ` +
          `${b.meanRunning.toFixed(1)} running on average; ${loop(b)}; load average ${load()}`,
      );
      out(`      ${b.cpu}`);
      out(`      events appended: ${b.events}`);
      if (b.probe) out(`      ${b.probe}`);
    }
    const range = (xs: readonly number[]) =>
      xs.length === 1
        ? `${(xs[0] ?? 0).toFixed(1)}`
        : `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;
    const listBusy = busy.map((p) => p.list.latency.p99);
    const getBusy = busy.map((p) => p.get.latency.p99);
    const listOk = Math.min(...listBusy) <= 25 && median(listBusy) <= 25;
    const getOk = median(getBusy) <= 15;
    out(
      `  list p99: idle ${range(idle.map((p) => p.list.latency.p99))} ms, busy ${range(listBusy)} ms ` +
        `(target busy <= 25 ms, median of rounds ${median(listBusy).toFixed(1)}: ${listOk ? 'met' : 'MISSED'})`,
    );
    out(
      `  get p99:  idle ${range(idle.map((p) => p.get.latency.p99))} ms, busy ${range(getBusy)} ms ` +
        `(target busy <= 15 ms, median of rounds ${median(getBusy).toFixed(1)}: ${getOk ? 'met' : 'MISSED'})`,
    );
    out(`  sync throughput while busy: ${range(busy.map((p) => p.syncsCompleted / duration))} syncs/s`);
    if (!listOk) missed.push(`busy list p99 (threads ${threads})`);
    if (!getOk) missed.push(`busy get p99 (threads ${threads})`);
  } finally {
    probe?.close();
    await server?.close();
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  }
  return missed;
}

function fmtSpread(s: Spread, unit: string): string {
  const d = unit === 'µs' ? 0 : 1;
  return `p50 ${s.p50.toFixed(d)} p99 ${s.p99.toFixed(d)} max ${s.max.toFixed(d)} ${unit} (${s.n})`;
}

function fmtServer(s: ServerSide): string {
  return (
    `${fmtSpread(s.total, 'ms')}, cache hits ${(s.hitShare * 100).toFixed(0)} %; misses: before the read ` +
    `${fmtSpread(s.before, 'ms')}, read ${fmtSpread(s.read, 'ms')}, after ${fmtSpread(s.after, 'ms')}`
  );
}

/** Share of an event-loop delay histogram's samples above `ms`, from its percentile table. */
function shareAbove(histogram: ReturnType<typeof monitorEventLoopDelay>, ms: number): number {
  let below = 0;
  for (const [percentile, value] of histogram.percentiles) {
    if (value / 1e6 <= ms) below = Math.max(below, percentile);
  }
  return Math.max(0, 100 - below) / 100;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Every token synced once with `concurrency`; resolves with the wall time in ms. */
async function syncAllOnce(sim: BenchSim, ids: readonly string[], concurrency: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'vppd-bench-pool-'));
  const context = await createContext(
    benchConfig(dir, sim, concurrency, randomBytes(48).toString('base64url')),
    {
      logger: pino({ level: 'silent' }),
    },
  );
  try {
    const tokens: string[] = [];
    for (const id of ids) {
      await sim.clearMdmInfo(id);
      const content = await sim.tokenFor(id);
      const decoded = decodeSToken(content);
      const token = createVppToken({
        id: context.newId(),
        tenantId,
        decoded,
        write: { token: content },
        now: new Date(),
      });
      await context.tokens.create(token, decoded);
      tokens.push(token.id);
    }
    const worker = await context.sync.createWorker();
    const started = performance.now();
    for (const id of tokens) await context.sync.requestSync(tenantId, id, 'api');
    worker.start();
    for (;;) {
      const row = await sql<{ n: number }>`select count(*) as n from sync_jobs`.execute(context.db);
      if (Number(row.rows[0]?.n ?? 0) === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const ms = performance.now() - started;
    const failed = await sql<{
      n: number;
    }>`select count(*) as n from sync_runs where outcome != 'completed'`.execute(context.db);
    if (Number(failed.rows[0]?.n ?? 0) > 0) throw new Error(`${failed.rows[0]?.n} syncs did not complete`);
    await worker.stop();
    return ms;
  } finally {
    await context.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

async function poolPart(values: Record<string, string | boolean | undefined>): Promise<string[]> {
  const count = Number(values['pool-tokens']);
  const latency = Number(values['pool-latency']);
  const rounds = Math.max(1, Number(values.rounds));
  const ids = Array.from({ length: count }, (_, i) => `pool-${i}`);
  const sim = await childProcessSim({
    locations: ids.map((id) => location(id, 10, 500)),
    pageSize: 250,
    rateLimit: false,
    seed: 'bench-pool',
  });
  try {
    for (const id of ids) await sim.setLatency(id, latency);
    out(
      `\nbusy benchmark (pool) — ${count} locations of 500 licenses (2 assignment pages), ${latency} ms per ` +
        `Apple call (simulator in its own process); every token synced once per run; load average ${load()}`,
    );
    const ratios: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const ms16 = await syncAllOnce(sim, ids, 16);
      const ms32 = await syncAllOnce(sim, ids, 32);
      ratios.push(ms16 / ms32);
      out(
        `  round ${round + 1}: concurrency 16 ${(ms16 / 1000).toFixed(2)} s, 32 ${(ms32 / 1000).toFixed(2)} s: ` +
          `${(ms16 / ms32).toFixed(2)}x faster; load average ${load()}`,
      );
    }
    const ok = median(ratios) >= 1.8;
    out(
      `  32 vs 16: ${ratios.map((r) => r.toFixed(2)).join(', ')}x (target >= 1.8x, median ${median(ratios).toFixed(2)}x: ${ok ? 'met' : 'MISSED'})`,
    );
    return ok ? [] : ['pool 32 vs 16'];
  } finally {
    await sim.close();
  }
}

/** Runs the busy-node benchmark. */
export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      part: { type: 'string', default: 'both' },
      rounds: { type: 'string', default: '2' },
      duration: { type: 'string', default: '15' },
      locations: { type: 'string', default: '48' },
      assignments: { type: 'string', default: '3000' },
      concurrency: { type: 'string', default: '16' },
      rate: { type: 'string', default: '20' },
      'pool-tokens': { type: 'string', default: '96' },
      'pool-latency': { type: 'string', default: '200' },
      threads: { type: 'string', default: '1' },
      database: { type: 'string' },
      'load-process': { type: 'boolean', default: false },
      load: { type: 'string', default: 'fixed' },
      probe: { type: 'boolean', default: false },
      'sim-latency': { type: 'string', default: '0' },
      'sim-nice': { type: 'string', default: '0' },
    },
  });
  loadInProcess = values['load-process'] === true;
  if (values.load !== 'fixed' && values.load !== 'autocannon')
    throw new Error('--load is fixed or autocannon');
  loadGenerator = values.load;
  const missed: string[] = [];
  if (values.part === 'api' || values.part === 'both') {
    const db = await benchDatabase(values.database);
    try {
      for (const threads of String(values.threads).split(',')) {
        if (threads !== '0' && threads !== '1') throw new Error('--threads takes 0, 1 or 0,1');
        missed.push(...(await apiPart(values, threads, db)));
      }
    } finally {
      await db.close();
    }
  }
  if (values.part === 'pool' || values.part === 'both') missed.push(...(await poolPart(values)));
  out(missed.length === 0 ? '\nall targets met' : `\ntargets missed: ${missed.join(', ')}`);
}
