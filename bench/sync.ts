// `npm run bench -- sync [--assets N] [--assignments N] [--big N] [--page-size N] [--skip-limited]
//                         [--sim both|process|in-process] [--rounds N] [--database sqlite|postgres|URL]
//                         [--breakdown] [--trace] [--setup-sql SQL]`
//
// A full license sync (vppd's worker: client/config, mdmInfo claim, assets, assignments streamed into
// a SQLite database file, metadata lookup, one commit transaction) against the Apple simulator over
// real HTTP on loopback. Where the simulator runs: `in-process` on this process's event loop (like
// bench/apple.ts: it cannot build a page while vppd writes to SQLite, so nothing overlaps), `process`
// in a child process, as Apple is a remote service (it builds the next pages while vppd writes).
// `--sim both` (default) measures (1) in each arrangement, each against its own baseline with the same
// simulator; (2) and (3) use the in-process simulator (its memory counts in RSS: the cautious figure).
// (1) Rate limit off: wall time and records/s of the sync vs a baseline measured in the same run —
//     plain undici + JSON.parse of the same assets and assignments pages, 5 in flight (target <= 1.5x, issue 14);
//     peak RSS growth during the sync (target <= 150 MB). Baseline and sync alternate for --rounds
//     rounds (default 3) after a warm-up; the ratio is best-of vs best-of (the least disturbed run of
//     each on a shared machine), the median ratio is printed too, and CPU time shows what was ours.
// (2) Rate limit on (simulator 15 req/s, client limit from service/config): wall time vs the floor
//     `requests / 15` s, where `requests` is what the simulator counted (target <= 1.1x).
// (3) --big assignments (default 1,000,000), rate limit off: peak RSS growth (target <= 200 MB).
// --breakdown prints a line per sync: this process's CPU time during it, how long the fetch loop waited
// for staging (`write`/`close` of the assignment writer) and for the commit, the chunk rows stored and, on
// PostgreSQL, the server's CPU (the postmaster and all its processes, from /proc) and WAL written
// (pg_current_wal_lsn) during the sync.
// --trace prints a line per sync: when (ms after the request) each phase of the sync started and ended —
// the claim, client/config, the assets, the first and last assignments page, the staging's close, the
// metadata lookup, the commit — from wrappers around the Apple client and the stores.
// --setup-sql runs SQL on each fresh database before the sync: an experiment, never vppd's configuration.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { pino } from 'pino';
import { Agent } from 'undici';
import { createAppleClient } from '../src/apple/index.js';
import { type AppleSimOptions, startAppleSim } from '../src/apple-sim/apple-sim.js';
import type { LocationSeed } from '../src/apple-sim/sim-location.js';
import { parseConfig } from '../src/config.js';
import { type AppContext, createContext } from '../src/context.js';
import { decodeSToken } from '../src/domain/stoken.js';
import { createVppToken } from '../src/domain/vpp-token.js';
import { type BenchDatabase, benchDatabase } from './database.js';

const tenantId = 'bench-tenant';

export function location(id: string, assets: number, assignments: number): LocationSeed {
  return {
    id,
    name: `Bench ${id}`,
    orgName: 'Bench Org',
    countryCode: 'US',
    assets,
    assignments,
    users: Math.max(100, Math.ceil(assignments / 5)),
  };
}

/** What the benchmark needs of the simulator, wherever it runs. */
export interface BenchSim {
  readonly baseUrl: string;
  /** `in-process` or `process` (a child process). */
  readonly where: string;
  /** The simulator's process id when it runs in a process of its own. */
  readonly pid?: number;
  tokenFor(locationId: string): Promise<string>;
  clearMdmInfo(locationId: string): Promise<void>;
  setRateLimit(limit: number | false): Promise<void>;
  resetRequestCounts(): Promise<void>;
  requestCounts(locationId: string): Promise<Record<string, number>>;
  /** Adds `ms` of latency to every call of the location (0 removes it). */
  setLatency(locationId: string, ms: number): Promise<void>;
  close(): Promise<void>;
}

async function inProcessSim(options: AppleSimOptions): Promise<BenchSim> {
  const sim = await startAppleSim(options);
  return {
    baseUrl: sim.baseUrl,
    where: 'in-process',
    tokenFor: async (id) => sim.tokenFor(id),
    clearMdmInfo: async (id) => sim.faults.setMdmInfo(id, null),
    setRateLimit: async (limit) => sim.setRateLimit(limit),
    resetRequestCounts: async () => sim.resetRequestCounts(),
    requestCounts: async (id) => sim.requestCounts()[id] ?? {},
    setLatency: async (id, ms) => sim.faults.latency(id, ms),
    close: () => sim.close(),
  };
}

const simChildFlag = '--bench-apple-sim-child';

/** The simulator in a child process (this file, started with {@link simChildFlag}), driven by its admin API. */
export async function childProcessSim(options: AppleSimOptions): Promise<BenchSim> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [simChildFlag, JSON.stringify(options)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const started = await new Promise<{ baseUrl: string; adminUrl: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { baseUrl: string; adminUrl: string }));
    child.once('exit', (code) => reject(new Error(`the simulator process exited (${code})`)));
  });
  const admin = async (method: string, path: string, body?: unknown): Promise<string> => {
    const response = await fetch(`${started.adminUrl}/${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`simulator admin ${method} ${path}: ${response.status} ${text}`);
    return text;
  };
  return {
    baseUrl: started.baseUrl,
    where: 'process',
    ...(child.pid === undefined ? {} : { pid: child.pid }),
    tokenFor: (id) => admin('GET', `locations/${encodeURIComponent(id)}/token`),
    clearMdmInfo: async (id) => {
      await admin('PUT', `locations/${encodeURIComponent(id)}/mdm-info`, { mdmInfo: null });
    },
    setRateLimit: async (limit) => {
      await admin('PUT', 'rate-limit', { maxRequestPerSecond: limit });
    },
    resetRequestCounts: async () => {
      await admin('DELETE', 'requests');
    },
    requestCounts: async (id) =>
      (JSON.parse(await admin('GET', 'requests')) as Record<string, Record<string, number>>)[id] ?? {},
    setLatency: async (id, ms) => {
      await admin('POST', `locations/${encodeURIComponent(id)}/faults`, { type: 'latency', ms });
    },
    close: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.disconnect();
      await exited;
    },
  };
}

/** Child-process side of {@link childProcessSim}: serves until the parent disconnects. */
async function serveSimChild(optionsJson: string): Promise<void> {
  const sim = await startAppleSim(JSON.parse(optionsJson) as AppleSimOptions);
  process.send?.({ baseUrl: sim.baseUrl, adminUrl: sim.adminUrl });
  process.once('disconnect', () => {
    void sim.close().then(() => process.exit(0));
  });
}

if (process.argv[2] === simChildFlag) await serveSimChild(process.argv[3] as string);

/** `--cpu-profile DIR`: each timed run's event-loop CPU profile is written there (open it in DevTools). */
let profileDir: string | undefined;
/** Where each run's fresh database lives (`--database`). */
let benchDb: BenchDatabase = {
  label: 'SQLite file',
  fresh: async (dir) => `sqlite:${join(dir, 'vppd.db')}`,
  close: async () => {},
};
let profiles = 0;
/** `--breakdown`: where a sync's time went (see the header). */
let breakdown = false;
/** `--trace`: when each phase of a sync ran (see the header). */
let tracing = false;
/** `--setup-sql`: an experiment run on each fresh database. */
let setupSql: string | undefined;

async function startProfile(): Promise<{ stopInto(dir: string, label: string): Promise<void> }> {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))),
    );
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 200 });
  await post('Profiler.start');
  return {
    async stopInto(dir, label) {
      const { profile } = (await post('Profiler.stop')) as { profile: unknown };
      session.disconnect();
      writeFileSync(join(dir, `${label}-${++profiles}.cpuprofile`), JSON.stringify(profile));
    },
  };
}

/** Plain undici: page 0, then the other pages with 5 workers; JSON.parse each body. */
async function baseline(
  sim: BenchSim,
  token: string,
  agent: Agent,
): Promise<{ ms: number; cpuMs: number; loopBusyMs: number; records: number; pages: number }> {
  const origin = new URL(sim.baseUrl).origin;
  const base = new URL(sim.baseUrl).pathname;
  const profiling = profileDir === undefined ? undefined : await startProfile();
  const cpu = process.cpuUsage();
  const loop = performance.eventLoopUtilization();
  const started = performance.now();
  let records = 0;
  let pages = 0;
  for (const endpoint of ['assets', 'assignments'] as const) {
    const fetchPage = async (pageIndex: number) => {
      const response = await agent.request({
        origin,
        path: `${base}/${endpoint}?pageIndex=${pageIndex}`,
        method: 'GET',
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      });
      const page = JSON.parse(await response.body.text()) as Record<string, unknown> & { totalPages: number };
      records += (page[endpoint] as unknown[]).length;
      pages++;
      return page;
    };
    const first = await fetchPage(0);
    let next = 1;
    await Promise.all(
      Array.from({ length: 5 }, async () => {
        while (next < first.totalPages) await fetchPage(next++);
      }),
    );
  }
  const measured = {
    ms: performance.now() - started,
    cpuMs: cpuMsSince(cpu),
    loopBusyMs: performance.eventLoopUtilization(loop).active,
    records,
    pages,
  };
  if (profiling !== undefined) await profiling.stopInto(profileDir as string, 'baseline');
  return measured;
}

/** User + system CPU time of this process (the simulator's too when it runs in-process) since `start`, in ms. */
function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

interface SyncMeasure {
  readonly ms: number;
  /** User + system CPU of the process (simulator included). */
  readonly cpuMs: number;
  /** Time the event loop (simulator, Apple client, engine) was busy. */
  readonly loopBusyMs: number;
  readonly records: number;
  readonly pages: number;
  readonly peakRssGrowthMb: number;
  readonly status: string;
}

/** One full sync of `locationId` by vppd's worker into a fresh database file. */
async function syncOnce(
  sim: BenchSim,
  locationId: string,
  rateLimited: boolean,
  options: { readonly sampleRss: boolean; readonly walAutocheckpoint?: number },
): Promise<SyncMeasure> {
  const database = benchDb;
  const dir = mkdtempSync(join(tmpdir(), 'vppd-bench-sync-'));
  // Rate limited: the context's own client, paced as in production (in memory on SQLite, in the database on
  // PostgreSQL: StorageEngine.sharedAcrossHosts). Unlimited: a client without a limiter.
  const apple = rateLimited ? undefined : createAppleClient({ baseUrl: sim.baseUrl, rateLimiter: null });
  const config = parseConfig({
    database: await database.fresh(dir),
    encryptionKey: Buffer.alloc(32, 1).toString('base64'),
    jwtSecret: 'bench-secret-that-is-at-least-32-bytes!!',
    appleUrl: sim.baseUrl,
    logLevel: 'silent',
  });
  let context: AppContext | undefined;
  try {
    context = await createContext(config, { ...(apple ? { apple } : {}), logger: pino({ level: 'silent' }) });
    if (options.walAutocheckpoint !== undefined) {
      // An experiment, not vppd's configuration: see --wal-autocheckpoint.
      await sql
        .raw(`PRAGMA wal_autocheckpoint = ${Math.trunc(options.walAutocheckpoint)}`)
        .execute(context.db);
    }
    if (setupSql !== undefined) await sql.raw(setupSql).execute(context.db);
    const timing = breakdown ? timeStagingAndCommit(context) : undefined;
    const trace = tracing ? tracePhases(context, apple) : undefined;
    const content = await sim.tokenFor(locationId);
    const decoded = decodeSToken(content);
    const now = new Date();
    const token = createVppToken({ id: context.newId(), tenantId, decoded, write: { token: content }, now });
    await context.tokens.create(token, decoded);
    // Every run uses a fresh database (a new installation id): forget the previous run's mdmInfo claim.
    await sim.clearMdmInfo(locationId);
    const worker = await context.sync.createWorker();
    global.gc?.();
    // Timed runs sample no RSS: on a loaded VM each read of it cost up to ~5 ms of the event loop,
    // ~100 ms per sync at a 50 ms period, which the baseline does not pay. RSS has its own runs.
    const rssBefore = process.memoryUsage.rss();
    let peak = rssBefore;
    const sampler = options.sampleRss
      ? setInterval(() => {
          peak = Math.max(peak, process.memoryUsage.rss());
        }, 20)
      : undefined;
    const profiling = profileDir === undefined ? undefined : await startProfile();
    const server = breakdown ? await serverSample(context) : undefined;
    const cpu = process.cpuUsage();
    const loop = performance.eventLoopUtilization();
    const started = performance.now();
    trace?.start(started);
    await context.sync.requestSync(tenantId, token.id, 'api');
    await worker.poll();
    await worker.idle();
    const ms = performance.now() - started;
    if (profiling !== undefined) await profiling.stopInto(profileDir as string, 'sync');
    const cpuMs = cpuMsSince(cpu);
    const loopBusyMs = performance.eventLoopUtilization(loop).active;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage.rss());
    // After this sync's CPU, event-loop and RSS figures were taken: its own queries count in none of them.
    if (timing !== undefined) await printBreakdown(context, ms, cpuMs, timing, server);
    if (trace !== undefined) process.stdout.write(`    trace: ${trace.line()}, end ${ms.toFixed(0)}\n`);
    const stored = await context.tokens.get(tenantId, token.id);
    const [run] = await context.sync.jobs.listRuns(tenantId, token.id, 1);
    return {
      ms,
      cpuMs,
      loopBusyMs,
      records: (run?.assetCount ?? 0) + (run?.assignmentCount ?? 0),
      pages: run?.pageCount ?? 0,
      peakRssGrowthMb: (peak - rssBefore) / 1e6,
      status: `${stored?.lastSyncStatus ?? 'missing'}${run?.failure ? ` (${run.failure.message})` : ''}`,
    };
  } finally {
    await context?.dispose();
    await apple?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface StagingTiming {
  /** Time the sync's fetch loop spent in the assignment writer's `write` and `close` calls. */
  stagingMs: number;
  commitMs: number;
}

/** Wraps the context's license writer and commit (before the worker is built) to time them. */
function timeStagingAndCommit(context: AppContext): StagingTiming {
  const timing: StagingTiming = { stagingMs: 0, commitMs: 0 };
  const { licenses, jobs } = context.sync;
  const timed = async <T>(add: (ms: number) => void, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await run();
    } finally {
      add(performance.now() - started);
    }
  };
  const addStaging = (ms: number) => {
    timing.stagingMs += ms;
  };
  const writerOf = licenses.assignmentWriter.bind(licenses);
  (licenses as { assignmentWriter: typeof licenses.assignmentWriter }).assignmentWriter = (
    runId,
    options,
  ) => {
    const writer = writerOf(runId, options);
    return {
      write: (records) => timed(addStaging, () => writer.write(records)),
      close: () => timed(addStaging, () => writer.close()),
      discard: () => writer.discard(),
    };
  };
  const commitOf = jobs.commit.bind(jobs);
  (jobs as { commit: typeof jobs.commit }).commit = (...args) =>
    timed(
      (ms) => {
        timing.commitMs += ms;
      },
      () => commitOf(...args),
    );
  return timing;
}

/**
 * Wraps the Apple client's and the stores' methods a sync calls (before the worker runs) and records,
 * in ms after `start`, when each phase began and ended; `line()` lists them in order of their start.
 */
function tracePhases(
  context: AppContext,
  apple: ReturnType<typeof createAppleClient> | undefined,
): { start(at: number): void; line(): string } {
  let origin = 0;
  /** Each staging batch: start-landed ms, licenses/chunk rows. */
  const batches: string[] = [];
  const spans = new Map<string, { from: number; to: number; count: number }>();
  const at = () => performance.now() - origin;
  const enter = (name: string) => {
    const now = at();
    const span = spans.get(name);
    if (span === undefined) spans.set(name, { from: now, to: now, count: 1 });
    else span.count++;
  };
  const leave = (name: string) => {
    const span = spans.get(name);
    if (span !== undefined) span.to = at();
  };
  // biome-ignore lint/suspicious/noExplicitAny: wraps methods of several objects alike
  const wrap = (target: any, method: string, name: string) => {
    const original = target[method].bind(target);
    target[method] = (...args: unknown[]) => {
      enter(name);
      const result = original(...args);
      if (result !== null && typeof result === 'object' && Symbol.asyncIterator in result) {
        // A page stream: the span runs from the call to its last page; `first page` marks the first.
        return (async function* () {
          let first = true;
          for await (const page of result as AsyncIterable<unknown>) {
            if (first) enter(`${name} first page`);
            first = false;
            yield page;
            leave(name);
          }
          leave(name);
        })();
      }
      if (result instanceof Promise) return result.finally(() => leave(name));
      leave(name);
      return result;
    };
  };
  const { jobs, licenses } = context.sync;
  const client = apple ?? context.apple;
  wrap(jobs, 'claimMany', 'claim');
  wrap(client, 'getClientConfig', 'GET client/config');
  wrap(client, 'setClientConfig', 'POST client/config');
  wrap(jobs, 'claimLocation', 'claimLocation');
  wrap(jobs, 'listRuns', 'listRuns');
  wrap(client, 'assets', 'assets');
  wrap(licenses, 'insertAssets', 'insertAssets');
  wrap(client, 'assignments', 'assignments');
  wrap(licenses, 'knownMetadata', 'knownMetadata');
  wrap(client, 'lookupMetadata', 'lookupMetadata');
  wrap(licenses, 'upsertMetadata', 'upsertMetadata');
  wrap(jobs, 'recordProgress', 'recordProgress');
  const writerOf = licenses.assignmentWriter.bind(licenses);
  (licenses as { assignmentWriter: typeof licenses.assignmentWriter }).assignmentWriter = (
    runId,
    options,
  ) => {
    const writer = writerOf(runId, {
      ...options,
      onBatch: (batch) => {
        const from = at();
        void batch.written.then(() =>
          batches.push(`${from.toFixed(0)}-${at().toFixed(0)}:${batch.licenses}/${batch.rows}`),
        );
      },
    });
    wrap(writer, 'close', 'staging close');
    return writer;
  };
  wrap(jobs, 'commit', 'commit');
  wrap(licenses, 'clearRun', 'clearRun');
  return {
    start(startedAt) {
      origin = startedAt;
    },
    line() {
      return `${[...spans.entries()]
        .sort((a, b) => a[1].from - b[1].from)
        .map(
          ([name, s]) =>
            `${name} ${s.from.toFixed(0)}${s.to - s.from >= 0.5 ? `-${s.to.toFixed(0)}` : ''}${s.count > 1 ? ` (x${s.count})` : ''}`,
        )
        .join(', ')}; batches (start-landed: licenses/rows) ${batches.join(' ')}`;
    },
  };
}

interface ServerSample {
  readonly cpuMs: number;
  readonly walBytes: number;
}

/**
 * PostgreSQL only: CPU time of the server (the postmaster and every process it started, from
 * /proc/<pid>/stat, in clock ticks of 10 ms) and its WAL position. Undefined on SQLite.
 */
async function serverSample(context: AppContext): Promise<ServerSample | undefined> {
  if (context.storage.kind !== 'postgres') return undefined;
  const { rows } = await sql<{ pid: number; wal: string }>`
    select (select pid from pg_stat_activity where backend_type = 'checkpointer') as pid,
           (pg_current_wal_lsn() - '0/0')::text as wal`.execute(context.db);
  const row = rows[0];
  if (row === undefined) return undefined;
  const statOf = (pid: string): string[] => {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "pid (comm) ": state, ppid, …, utime (14th field), stime (15th).
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  };
  const postmaster = statOf(String(row.pid))[1] as string;
  let ticks = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const fields = statOf(pid);
      if (pid === postmaster || fields[1] === postmaster) ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process ended meanwhile
    }
  }
  return { cpuMs: ticks * 10, walBytes: Number(row.wal) };
}

async function printBreakdown(
  context: AppContext,
  ms: number,
  cpuMs: number,
  timing: StagingTiming,
  before: ServerSample | undefined,
): Promise<void> {
  const after = before === undefined ? undefined : await serverSample(context);
  const chunks = await context.db
    .selectFrom('license_assignment_chunks')
    .select((eb) => [eb.fn.countAll<number>().as('rows'), eb.fn.sum<number>('holder_count').as('licenses')])
    .executeTakeFirstOrThrow();
  const server =
    before === undefined || after === undefined
      ? ''
      : `; server CPU ${after.cpuMs - before.cpuMs} ms, WAL ${((after.walBytes - before.walBytes) / 1e6).toFixed(1)} MB`;
  process.stdout.write(
    `    breakdown: sync ${ms.toFixed(0)} ms (CPU of this process ${cpuMs.toFixed(0)} ms), fetch loop waiting on staging ${timing.stagingMs.toFixed(0)} ms, ` +
      `commit ${timing.commitMs.toFixed(0)} ms, ${Number(chunks.rows)} chunk rows for ${Number(chunks.licenses)} licenses${server}\n`,
  );
}

/** Part (1): the rate-limit-off ratio against a baseline on the same simulator, and RSS growth. */
async function measureRatio(
  sim: BenchSim,
  label: string,
  agent: Agent,
  options: {
    readonly rounds: number;
    readonly tuning: { readonly walAutocheckpoint?: number };
  },
  out: (line: string) => void,
): Promise<void> {
  const { rounds, tuning } = options;
  // Warm up both, then alternate baseline and sync.
  const token = await sim.tokenFor('bench');
  await baseline(sim, token, agent);
  await syncOnce(sim, 'bench', false, { sampleRss: false, ...tuning });
  const baselines: Awaited<ReturnType<typeof baseline>>[] = [];
  const syncs: SyncMeasure[] = [];
  for (let round = 0; round < rounds; round++) {
    baselines.push(await baseline(sim, token, agent));
    syncs.push(await syncOnce(sim, 'bench', false, { sampleRss: false, ...tuning }));
  }
  const b = baselines.reduce((best, m) => (m.ms < best.ms ? m : best));
  const s = syncs.reduce((best, m) => (m.ms < best.ms ? m : best));
  const list = (ms: readonly number[]) => ms.map((v) => v.toFixed(0)).join('/');
  out(
    `\n${label} rate limit off, simulator ${sim.where === 'process' ? 'in its own process (CPU figures: this process only)' : 'in this process'}, best of ${rounds} alternating rounds (load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')})`,
  );
  out(
    `  baseline (undici + JSON.parse of the same ${b.pages} pages, 5 in flight): ${b.ms.toFixed(0)} ms, ` +
      `${((b.records / b.ms) * 1000).toFixed(0)} records/s, CPU ${b.cpuMs.toFixed(0)} ms, event loop busy ` +
      `${b.loopBusyMs.toFixed(0)} ms (runs ${list(baselines.map((m) => m.ms))} ms)`,
  );
  out(
    `  full sync (${s.status}): ${s.ms.toFixed(0)} ms, ${s.pages} pages, ${s.records} records, ` +
      `${((s.records / s.ms) * 1000).toFixed(0)} records/s, CPU ${s.cpuMs.toFixed(0)} ms, event loop busy ` +
      `${s.loopBusyMs.toFixed(0)} ms (runs ${list(syncs.map((m) => m.ms))} ms)`,
  );
  const medianRatio = median(syncs.map((m) => m.ms)) / median(baselines.map((m) => m.ms));
  out(
    `  ratio sync/baseline ${(s.ms / b.ms).toFixed(2)}x (target <= 1.5x); median ${medianRatio.toFixed(2)}x; ` +
      `CPU ratio ${(s.cpuMs / b.cpuMs).toFixed(2)}x`,
  );
  const sampled = await syncOnce(sim, 'bench', false, { sampleRss: true, ...tuning });
  out(
    `  peak RSS growth during the sync ${sampled.peakRssGrowthMb.toFixed(0)} MB (a separate run sampling RSS ` +
      `every 20 ms: ${sampled.ms.toFixed(0)} ms; target <= 150 MB)`,
  );
}

/** Runs the sync benchmark and prints its figures. */
export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      assets: { type: 'string', default: '1000' },
      assignments: { type: 'string', default: '200000' },
      big: { type: 'string', default: '1000000' },
      'page-size': { type: 'string', default: '549' },
      rounds: { type: 'string', default: '3' },
      'skip-limited': { type: 'boolean', default: false },
      sim: { type: 'string', default: 'both' },
      // Experiment only: WAL pages before SQLite checkpoints on commit (vppd's setting is 8000).
      'wal-autocheckpoint': { type: 'string' },
      'cpu-profile': { type: 'string' },
      breakdown: { type: 'boolean', default: false },
      trace: { type: 'boolean', default: false },
      'setup-sql': { type: 'string' },
      // sqlite (default), postgres (a throw-away local server) or a postgres:// URL (bench/database.ts).
      database: { type: 'string' },
    },
  });
  benchDb = await benchDatabase(values.database);
  breakdown = values.breakdown;
  tracing = values.trace;
  setupSql = values['setup-sql'];
  const assets = Number(values.assets);
  const assignments = Number(values.assignments);
  const big = Number(values.big);
  const pageSize = Number(values['page-size']);
  const rounds = Math.max(1, Number(values.rounds));
  if (values['cpu-profile'] !== undefined) {
    profileDir = values['cpu-profile'];
    mkdirSync(profileDir, { recursive: true });
  }
  const tuning =
    values['wal-autocheckpoint'] === undefined
      ? {}
      : { walAutocheckpoint: Number(values['wal-autocheckpoint']) };
  if (values.sim !== 'in-process' && values.sim !== 'process' && values.sim !== 'both') {
    throw new Error('--sim is both, in-process or process');
  }
  const simOptions: AppleSimOptions = {
    locations: [location('bench', assets, assignments), location('big', assets, big)],
    pageSize,
    rateLimit: false,
    seed: 'bench-sync',
  };
  const sim = values.sim === 'process' ? await childProcessSim(simOptions) : await inProcessSim(simOptions);
  // The child only needs the location of (1).
  const child =
    values.sim === 'both'
      ? await childProcessSim({ ...simOptions, locations: [location('bench', assets, assignments)] })
      : undefined;
  const ratioSims: [string, BenchSim][] =
    child === undefined
      ? [['(1)', sim]]
      : [
          ['(1a)', sim],
          ['(1b)', child],
        ];
  const agent = new Agent({ connections: 16, keepAliveTimeout: 10_000, pipelining: 1 });
  const out = (line: string) => process.stdout.write(`${line}\n`);
  try {
    out(
      `sync benchmark — node ${process.version}, ${assets} assets, ${assignments} assignments, page size ${pageSize}, ` +
        `${benchDb.label}, simulator ${child !== undefined ? 'in this process for (1a), (2), (3) and in its own process for (1b)' : sim.where === 'process' ? 'in its own process (CPU figures are this process only)' : 'in this process'}${
          tuning.walAutocheckpoint === undefined
            ? ''
            : `, EXPERIMENT: wal_autocheckpoint ${tuning.walAutocheckpoint} (not vppd's setting)`
        }${global.gc ? '' : ' (run node with --expose-gc for steadier RSS figures)'}`,
    );

    for (const [label, arranged] of ratioSims) {
      await measureRatio(arranged, label, agent, { rounds, tuning }, out);
    }

    // (2) Rate limit on, both sides.
    if (!values['skip-limited']) {
      await sim.setRateLimit(15);
      await sim.resetRequestCounts();
      const limited = await syncOnce(sim, 'bench', true, { sampleRss: false, ...tuning });
      const counts = await sim.requestCounts('bench');
      const requests = Object.values(counts).reduce((n, c) => n + c, 0);
      const floor = requests / 15;
      out('\n(2) rate limit on: simulator 15 req/s per location, client limit 15 (service/config)');
      out(
        `  full sync (${limited.status}): ${(limited.ms / 1000).toFixed(2)} s, ${requests} requests counted by the simulator ` +
          `(${Object.entries(counts)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')})`,
      );
      out(
        `  floor requests/15 = ${floor.toFixed(2)} s; ratio ${(limited.ms / 1000 / floor).toFixed(3)}x (target <= 1.1x)`,
      );
      await sim.setRateLimit(false);
    }

    // (3) Memory with a much larger location.
    const large = await syncOnce(sim, 'big', false, { sampleRss: true, ...tuning });
    out(`\n(3) ${big} assignments, rate limit off`);
    out(
      `  full sync (${large.status}): ${(large.ms / 1000).toFixed(1)} s, ${((large.records / large.ms) * 1000).toFixed(0)} records/s; ` +
        `peak RSS growth ${large.peakRssGrowthMb.toFixed(0)} MB (target <= 200 MB)`,
    );
  } finally {
    await agent.close();
    await sim.close();
    await child?.close();
    await benchDb.close();
  }
}
