// `npm run bench -- delta [--assets N] [--assignments N] [--changes N] [--removals N] [--page-size N]
//                          [--rounds N] [--sim process|in-process] [--database sqlite|postgres|URL] [--trace]
//                          [--profile DIR] [--timeline] [--latency MS]`
//
// A delta sync against a full sync of the same location, in the same run (issue 16, item 2: a delta
// sync of a 200,000-assignment location with 100 changes costs <= 5 % of a full sync). One token of a
// location with --assignments licenses (default 200,000 over 1,000 assets) is synced in full once; then
// each round makes --changes changes at Apple through Apple's own API (associations to new serial
// numbers, of which --removals, default 10, are disassociations of existing holders instead: a removal
// only shows in the counts, so its app is re-read), times a delta sync of them, then times a full sync
// of the same data. Both run through vppd's worker into the same database, the simulator by default in
// a process of its own (Apple is a remote service), rate limit off. Prints each run, the best and median
// of each, and the ratio delta / full (target <= 0.05). --trace also prints where each delta's time went
// (the delta engine's debug log 'delta sync read' and the commit's time from 'delta sync completed').
// Each run also shows its steps as the bench sees them (requestSync, the claim, the run) and its Apple
// requests; the summary gives, beside the wall-time ratio, the CPU and Apple-request ratios of the same
// runs. --profile DIR writes a CPU profile of each timed delta sync (only those) into DIR. --timeline prints
// every SQL statement and Apple request of each timed delta with its start and duration (statement-timeline.ts).
// --latency MS adds that much latency to every simulator answer (Apple is remote: round trips then count),
// after the location is set up, for the syncs and deltas alike.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { type AppleClient, createAppleClient, createUndiciHttp } from '../src/apple/index.js';
import type { AppleSimOptions } from '../src/apple-sim/apple-sim.js';
import { parseConfig } from '../src/config.js';
import { type AppContext, createContext } from '../src/context.js';
import { decodeSToken } from '../src/domain/stoken.js';
import { createVppToken } from '../src/domain/vpp-token.js';
import { benchDatabase } from './database.js';
import { formatTimeline, type StatementTimeline, statementTimeline } from './statement-timeline.js';
import { type BenchSim, childProcessSim, location } from './sync.js';

const tenantId = 'bench-tenant';

interface Timed {
  readonly ms: number;
  readonly cpuMs: number;
  /** Requests to Apple (the simulator's count for the location). */
  readonly requests: number;
  /** requestSync, the claim (worker.poll), the run until the worker is idle. */
  readonly steps: { readonly requestMs: number; readonly claimMs: number; readonly runMs: number };
  readonly kind: string;
  readonly outcome: string;
  readonly pages: number;
  readonly assignments: number;
  /** --timeline: the run's statements and Apple requests. */
  readonly timeline?: string[];
}

/** --profile DIR: a CPU profile of each timed delta sync (and of nothing else), one file each. */
interface Profiler {
  start(): Promise<void>;
  stop(): Promise<void>;
}

function deltaProfiler(dir: string): Profiler & { close(): void } {
  mkdirSync(dir, { recursive: true });
  const session = new Session();
  session.connect();
  let n = 0;
  return {
    async start() {
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 100 });
      await session.post('Profiler.start');
    },
    async stop() {
      const { profile } = await session.post('Profiler.stop');
      n++;
      writeFileSync(join(dir, `delta-${n}.cpuprofile`), JSON.stringify(profile));
    },
    close: () => session.disconnect(),
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Makes `changes` changes at Apple: associations of new serial numbers, `removals` of them disassociations. */
async function changeAtApple(
  apple: AppleClient,
  token: string,
  changes: number,
  removals: number,
  round: number,
): Promise<void> {
  const assets: { adamId: string; pricingParam: string; availableCount: number }[] = [];
  for await (const page of apple.assets(token)) {
    for (const a of page.records) {
      if (a.deviceAssignable === true) assets.push(a);
    }
  }
  // Additions: spread over 4 apps with licenses to spare.
  const additions = changes - removals;
  const roomy = assets.filter((a) => a.availableCount >= additions).slice(round % 4, (round % 4) + 4);
  const calls: Promise<{ eventId: string }>[] = [];
  const perApp = Math.ceil(additions / Math.max(1, roomy.length));
  for (let i = 0; i < roomy.length && i * perApp < additions; i++) {
    const asset = roomy[i] as (typeof roomy)[number];
    const serialNumbers = Array.from(
      { length: Math.min(perApp, additions - i * perApp) },
      (_, k) => `BENCHD${round.toString().padStart(3, '0')}${i}${k.toString().padStart(4, '0')}`,
    );
    calls.push(
      apple.associateAssets(token, {
        assets: [{ adamId: asset.adamId, pricingParam: asset.pricingParam }],
        serialNumbers,
      }),
    );
  }
  // Removals: one existing device holder of each of `removals` apps.
  let removed = 0;
  for (const asset of assets.slice(20 + round * removals)) {
    if (removed >= removals) break;
    for await (const page of apple.assignments(token, { adamId: asset.adamId })) {
      const holder = page.records.find((a) => a.pricingParam === asset.pricingParam && a.serialNumber);
      if (holder?.serialNumber !== undefined) {
        calls.push(
          apple.disassociateAssets(token, {
            assets: [{ adamId: asset.adamId, pricingParam: asset.pricingParam }],
            serialNumbers: [holder.serialNumber],
          }),
        );
        removed++;
      }
      break;
    }
  }
  for (const { eventId } of await Promise.all(calls)) {
    for (;;) {
      const status = await apple.getAssetEventStatus(token, eventId);
      if (status.eventStatus !== 'PENDING') break;
    }
  }
}

async function timedSync(
  context: AppContext,
  sim: BenchSim,
  tokenId: string,
  kind: 'licenses' | 'delta',
  profiler?: Profiler,
  timeline?: StatementTimeline,
): Promise<Timed> {
  const worker = await context.sync.createWorker();
  await sim.resetRequestCounts();
  global.gc?.();
  await profiler?.start();
  const cpu = process.cpuUsage();
  timeline?.start();
  const started = performance.now();
  await context.sync.requestSync(tenantId, tokenId, 'api', kind);
  const requested = performance.now();
  await worker.poll();
  const claimed = performance.now();
  await worker.idle();
  const ended = performance.now();
  const recorded = timeline?.stop();
  const ms = ended - started;
  const used = process.cpuUsage(cpu);
  await profiler?.stop();
  const requests = Object.values(await sim.requestCounts('bench')).reduce((n, c) => n + c, 0);
  const [run] = await context.sync.jobs.listRuns(tenantId, tokenId, 1);
  return {
    ms,
    cpuMs: (used.user + used.system) / 1000,
    requests,
    steps: { requestMs: requested - started, claimMs: claimed - requested, runMs: ended - claimed },
    kind: run?.kind ?? 'missing',
    outcome: `${run?.outcome ?? 'missing'}${run?.failure ? ` (${run.failure.message})` : ''}`,
    pages: run?.pageCount ?? 0,
    assignments: run?.assignmentCount ?? 0,
    ...(recorded === undefined ? {} : { timeline: formatTimeline(recorded, ms) }),
  };
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      assets: { type: 'string', default: '1000' },
      assignments: { type: 'string', default: '200000' },
      changes: { type: 'string', default: '100' },
      removals: { type: 'string', default: '10' },
      'page-size': { type: 'string', default: '549' },
      rounds: { type: 'string', default: '3' },
      sim: { type: 'string', default: 'process' },
      database: { type: 'string' },
      trace: { type: 'boolean', default: false },
      profile: { type: 'string' },
      timeline: { type: 'boolean', default: false },
      latency: { type: 'string', default: '0' },
    },
  });
  const changes = Number(values.changes);
  const removals = Math.min(changes, Number(values.removals));
  const rounds = Math.max(1, Number(values.rounds));
  const simOptions: AppleSimOptions = {
    locations: [location('bench', Number(values.assets), Number(values.assignments))],
    pageSize: Number(values['page-size']),
    rateLimit: false,
    seed: 'bench-delta',
    eventPolls: 0,
  };
  let sim: BenchSim;
  if (values.sim === 'process') {
    sim = await childProcessSim(simOptions);
  } else if (values.sim === 'in-process') {
    const { startAppleSim } = await import('../src/apple-sim/apple-sim.js');
    const inProcess = await startAppleSim(simOptions);
    sim = {
      baseUrl: inProcess.baseUrl,
      where: 'in-process',
      tokenFor: async (id) => inProcess.tokenFor(id),
      clearMdmInfo: async (id) => inProcess.faults.setMdmInfo(id, null),
      setRateLimit: async (limit) => inProcess.setRateLimit(limit),
      resetRequestCounts: async () => inProcess.resetRequestCounts(),
      requestCounts: async (id) => inProcess.requestCounts()[id] ?? {},
      setLatency: async (id, ms) => inProcess.faults.latency(id, ms),
      close: () => inProcess.close(),
    };
  } else {
    throw new Error('--sim is process or in-process');
  }
  const db = await benchDatabase(values.database);
  const dir = mkdtempSync(join(tmpdir(), 'vppd-bench-delta-'));
  const timeline = values.timeline ? statementTimeline() : undefined;
  const appleHttp = createUndiciHttp();
  const apple = createAppleClient({
    baseUrl: sim.baseUrl,
    rateLimiter: null,
    http: timeline === undefined ? appleHttp : timeline.appleHttp(appleHttp),
  });
  const changer = createAppleClient({ baseUrl: sim.baseUrl, rateLimiter: null });
  const out = (line: string) => process.stdout.write(`${line}\n`);
  let context: AppContext | undefined;
  const profiler = values.profile === undefined ? undefined : deltaProfiler(values.profile);
  try {
    const config = parseConfig({
      database: await db.fresh(dir),
      encryptionKey: Buffer.alloc(32, 1).toString('base64'),
      jwtSecret: 'bench-secret-that-is-at-least-32-bytes!!',
      appleUrl: sim.baseUrl,
      logLevel: 'silent',
    });
    // --trace: the delta's phases as the engine and the worker log them.
    const traced: Record<string, unknown>[] = [];
    const logger = values.trace
      ? pino(
          { level: 'debug' },
          {
            write(line: string) {
              const entry = JSON.parse(line) as Record<string, unknown>;
              if (entry.msg === 'delta sync read' || entry.msg === 'delta sync completed') traced.push(entry);
            },
          },
        )
      : pino({ level: 'silent' });
    const trace = () => {
      if (!values.trace) return;
      const read = traced.find((e) => e.msg === 'delta sync read');
      const done = traced.find((e) => e.msg === 'delta sync completed');
      out(
        `    trace: read phases ${JSON.stringify(read?.ms ?? {})}, re-read apps ${String(read?.reread ?? '?')}, ` +
          `commit ${String(done?.commitMs ?? '?')} ms, total ${String(done?.ms ?? '?')} ms`,
      );
      traced.length = 0;
    };
    context = await createContext(config, { apple, logger });
    const content = await sim.tokenFor('bench');
    const decoded = decodeSToken(content);
    const token = createVppToken({
      id: context.newId(),
      tenantId,
      decoded,
      write: { token: content },
      now: new Date(),
    });
    await context.tokens.create(token, decoded);
    await sim.clearMdmInfo('bench');
    const latency = Number(values.latency);
    if (latency > 0) await sim.setLatency('bench', latency);
    out(
      `delta benchmark — node ${process.version}, ${values.assets} assets, ${values.assignments} assignments, ` +
        `${changes} changes per round (${removals} of them removals), page size ${values['page-size']}, ` +
        `${db.label}, simulator ${sim.where === 'process' ? 'in its own process' : 'in this process'}, rate limit off` +
        (latency > 0 ? `, ${latency} ms latency per Apple request` : ''),
    );
    const first = await timedSync(context, sim, token.id, 'licenses');
    out(
      `  first full sync (warm-up): ${first.ms.toFixed(0)} ms, ${first.outcome}, ${first.assignments} assignments`,
    );
    // A warm-up delta with no change: what every delta costs at least.
    traced.length = 0;
    const idle = await timedSync(context, sim, token.id, 'delta');
    out(
      `  delta sync with no change (warm-up): ${idle.ms.toFixed(0)} ms, ${idle.kind}, ${idle.pages} pages, ` +
        `${idle.requests} requests, CPU ${idle.cpuMs.toFixed(0)} ms (request ${idle.steps.requestMs.toFixed(1)}, ` +
        `claim ${idle.steps.claimMs.toFixed(1)}, run ${idle.steps.runMs.toFixed(1)} ms)`,
    );
    trace();
    const deltas: Timed[] = [];
    const fulls: Timed[] = [];
    for (let round = 0; round < rounds; round++) {
      await changeAtApple(changer, content, changes, removals, round);
      traced.length = 0;
      const d = await timedSync(context, sim, token.id, 'delta', profiler, timeline);
      const dTrace = [...traced];
      const f = await timedSync(context, sim, token.id, 'licenses');
      deltas.push(d);
      fulls.push(f);
      const steps = ({ steps: t }: Timed) =>
        `request ${t.requestMs.toFixed(1)}, claim ${t.claimMs.toFixed(1)}, run ${t.runMs.toFixed(1)}`;
      out(
        `  round ${round + 1} (load average ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}): delta ${d.ms.toFixed(0)} ms (${d.kind}, ${d.outcome}, ${d.pages} pages, ` +
          `${d.requests} requests, CPU ${d.cpuMs.toFixed(0)} ms; ${steps(d)}), ` +
          `full ${f.ms.toFixed(0)} ms (${f.kind}, ${f.outcome}, ${f.pages} pages, ${f.requests} requests, ` +
          `CPU ${f.cpuMs.toFixed(0)} ms), ratio ${(d.ms / f.ms).toFixed(3)}`,
      );
      traced.splice(0, traced.length, ...dTrace);
      trace();
      for (const line of d.timeline ?? []) out(line);
    }
    const bestDelta = Math.min(...deltas.map((d) => d.ms));
    const bestFull = Math.min(...fulls.map((f) => f.ms));
    const ratio = (of: (t: Timed) => number) => median(deltas.map(of)) / median(fulls.map(of));
    out(
      `  delta sync: best ${bestDelta.toFixed(0)} ms, median ${median(deltas.map((d) => d.ms)).toFixed(0)} ms; ` +
        `full sync: best ${bestFull.toFixed(0)} ms, median ${median(fulls.map((f) => f.ms)).toFixed(0)} ms`,
    );
    out(
      `  ratio delta/full (wall time, the headline): median ${ratio((t) => t.ms).toFixed(3)}, best-of ${(
        bestDelta / bestFull
      ).toFixed(3)}, per round ${deltas
        .map((d, i) => (d.ms / (fulls[i] as Timed).ms).toFixed(3))
        .join('/')} (target <= 0.05)`,
    );
    out(
      `  same runs: CPU ratio ${ratio((t) => t.cpuMs).toFixed(3)} (median ${median(deltas.map((d) => d.cpuMs)).toFixed(0)} / ` +
        `${median(fulls.map((f) => f.cpuMs)).toFixed(0)} ms), Apple request ratio ${ratio((t) => t.requests).toFixed(3)} ` +
        `(median ${median(deltas.map((d) => d.requests))} / ${median(fulls.map((f) => f.requests))})`,
    );
    if (deltas.some((d) => d.kind !== 'delta' || !d.outcome.startsWith('completed'))) {
      out('  NOTE: a delta run did not complete as a delta (see kind/outcome above)');
    }
  } finally {
    profiler?.close();
    await context?.dispose();
    await apple.close();
    await appleHttp.close();
    await changer.close();
    await sim.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
