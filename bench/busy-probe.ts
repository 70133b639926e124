// Bench-only probes for `npm run bench -- busy`: where a slow request's time goes while syncs run.
// Nothing here is loaded by vppd itself.
//
// - Server-side time of each request, from Node's `http.server.request.start` (the request's head
//   parsed, on the event loop) to `http.server.response.finish` (the last byte handed to the socket),
//   split at the store read a cache miss makes: before it (auth, query parsing, the change-stamp read
//   and its turn), the read itself (the store call, its wait for the connection included), after it
//   (presenting, JSON, sending). What autocannon sees above the server-side time was spent outside the
//   handler: in the socket, waiting for the event loop or the CPU, or in the load generator.
// - CPU time and run-queue wait (Linux schedstat) of each thread of this process and of the simulator's
//   process, and what the rest of the machine used, per phase.
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';

interface RequestTiming {
  readonly kind: 'list' | 'get' | 'other';
  readonly start: number;
  readAt?: number;
  readDone?: number;
}

/** Percentiles of a list of ms values. */
export interface Spread {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { n: 0, p50: 0, p99: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] as number };
}

/** What the server-side probe saw of one kind of request during a phase. */
export interface ServerSide {
  readonly total: Spread;
  /** Share of the requests served without a store read (the response cache hit). */
  readonly hitShare: number;
  /** Misses only: request start → store call; the store call; store answer → response finished. */
  readonly before: Spread;
  readonly read: Spread;
  readonly after: Spread;
}

export interface RequestProbe {
  /** Starts a phase's collection. */
  begin(): void;
  /** Ends it: per kind of request. */
  end(): { list: ServerSide; get: ServerSide; stampReadUs: Spread; storeWrites: Spread };
  close(): void;
}

type Store = Record<string, unknown>;

/**
 * Times the requests of `listPrefix`/`getPrefix` server-side and wraps the store reads a miss makes
 * (`readers`: methods of `tokens` timed per request), the tenant-stamp read (`stampReader` on
 * `storage`, timed alone) and `writes` (methods of `sync` the bench's driver calls, timed alone).
 */
export function probeRequests(options: {
  readonly listPrefix: string;
  readonly getPrefix: string;
  readonly tokens: Store;
  readonly readers: readonly string[];
  readonly storage: Store;
  readonly stampReader: string;
  readonly sync: Store;
  readonly writes: readonly string[];
}): RequestProbe {
  const als = new AsyncLocalStorage<RequestTiming>();
  const timings = new WeakMap<IncomingMessage, RequestTiming>();
  let collecting = false;
  let done: RequestTiming[] = [];
  let stampUs: number[] = [];
  let writeMs: number[] = [];
  const onStart = (message: unknown) => {
    const { request } = message as { request: IncomingMessage };
    const url = request.url ?? '';
    const kind = url.startsWith(options.listPrefix)
      ? 'list'
      : url.startsWith(options.getPrefix)
        ? 'get'
        : 'other';
    const timing: RequestTiming = { kind, start: performance.now() };
    timings.set(request, timing);
    // The request's own handling runs synchronously after this message (the 'request' event), so
    // everything it schedules carries this timing.
    als.enterWith(timing);
  };
  const onFinish = (message: unknown) => {
    const { request } = message as { request: IncomingMessage };
    const timing = timings.get(request);
    if (timing === undefined || !collecting) return;
    done.push({ ...timing, finish: performance.now() } as RequestTiming);
  };
  subscribe('http.server.request.start', onStart);
  subscribe('http.server.response.finish', onFinish);
  const restore: (() => void)[] = [];
  for (const name of options.readers) {
    const original = options.tokens[name] as (...args: unknown[]) => Promise<unknown>;
    options.tokens[name] = async (...args: unknown[]) => {
      const timing = als.getStore();
      if (timing !== undefined && timing.readAt === undefined) timing.readAt = performance.now();
      const value = await original.apply(options.tokens, args);
      if (timing !== undefined) timing.readDone = performance.now();
      return value;
    };
    restore.push(() => {
      options.tokens[name] = original;
    });
  }
  {
    const original = options.storage[options.stampReader] as (...args: unknown[]) => unknown;
    options.storage[options.stampReader] = (...args: unknown[]) => {
      const started = performance.now();
      const value = original.apply(options.storage, args);
      if (collecting) stampUs.push((performance.now() - started) * 1000);
      return value;
    };
    restore.push(() => {
      options.storage[options.stampReader] = original;
    });
  }
  for (const name of options.writes) {
    const original = options.sync[name] as (...args: unknown[]) => Promise<unknown>;
    options.sync[name] = async (...args: unknown[]) => {
      const started = performance.now();
      try {
        return await original.apply(options.sync, args);
      } finally {
        if (collecting) writeMs.push(performance.now() - started);
      }
    };
    restore.push(() => {
      options.sync[name] = original;
    });
  }
  const summarize = (kind: 'list' | 'get'): ServerSide => {
    const mine = done.filter((t) => t.kind === kind) as (RequestTiming & { finish: number })[];
    const misses = mine.filter((t) => t.readAt !== undefined && t.readDone !== undefined);
    return {
      total: spread(mine.map((t) => t.finish - t.start)),
      hitShare: mine.length === 0 ? 0 : 1 - misses.length / mine.length,
      before: spread(misses.map((t) => (t.readAt as number) - t.start)),
      read: spread(misses.map((t) => (t.readDone as number) - (t.readAt as number))),
      after: spread(misses.map((t) => t.finish - (t.readDone as number))),
    };
  };
  return {
    begin() {
      done = [];
      stampUs = [];
      writeMs = [];
      collecting = true;
    },
    end() {
      collecting = false;
      return {
        list: summarize('list'),
        get: summarize('get'),
        stampReadUs: spread(stampUs),
        storeWrites: spread(writeMs),
      };
    },
    close() {
      unsubscribe('http.server.request.start', onStart);
      unsubscribe('http.server.response.finish', onFinish);
      for (const undo of restore) undo();
    },
  };
}

/** CPU and run-queue wait of one group of threads over a phase, ms. */
export interface ThreadGroupUse {
  readonly cpuMs: number;
  readonly waitMs: number;
}

interface TaskSample {
  readonly runNs: number;
  readonly waitNs: number;
  readonly nice: number;
}

function tasksOf(pid: number | 'self'): Map<number, TaskSample> {
  const tasks = new Map<number, TaskSample>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return tasks;
  }
  for (const tid of tids) {
    try {
      const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/);
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces) in parentheses; nice is field 19.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      tasks.set(Number(tid), { runNs: Number(run), waitNs: Number(wait), nice: Number(fields[16]) });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return tasks;
}

function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  const ticks = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  return (ticks * 1000) / 100;
}

export interface CpuUse {
  readonly wallMs: number;
  /** This process's main thread (the request thread). */
  readonly request: ThreadGroupUse;
  /** This process's threads at a nice value above 0 (the sync thread). */
  readonly sync: ThreadGroupUse;
  /** The other threads of this process (autocannon's worker in thread mode, GC and libuv helpers). */
  readonly otherThreads: ThreadGroupUse;
  /** The simulator's process, all its threads. */
  readonly simulator: ThreadGroupUse;
  /** Every CPU of the machine: busy time of all processes (the rest is machine − the above). */
  readonly machineMs: number;
}

/** Takes a CPU sample; call the result at the phase's end. */
export function sampleCpu(simPid: number | undefined): () => CpuUse {
  const started = performance.now();
  const self = tasksOf('self');
  const sim = simPid === undefined ? new Map<number, TaskSample>() : tasksOf(simPid);
  const machine = machineBusyMs();
  return () => {
    const selfEnd = tasksOf('self');
    const simEnd = simPid === undefined ? new Map<number, TaskSample>() : tasksOf(simPid);
    const group = (
      start: Map<number, TaskSample>,
      end: Map<number, TaskSample>,
      pick: (tid: number, t: TaskSample) => boolean,
    ): ThreadGroupUse => {
      let cpu = 0;
      let wait = 0;
      for (const [tid, t] of end) {
        if (!pick(tid, t)) continue;
        const before = start.get(tid);
        cpu += t.runNs - (before?.runNs ?? 0);
        wait += t.waitNs - (before?.waitNs ?? 0);
      }
      return { cpuMs: cpu / 1e6, waitMs: wait / 1e6 };
    };
    return {
      wallMs: performance.now() - started,
      request: group(self, selfEnd, (tid) => tid === process.pid),
      sync: group(self, selfEnd, (tid, t) => tid !== process.pid && t.nice > 0),
      otherThreads: group(self, selfEnd, (tid, t) => tid !== process.pid && t.nice <= 0),
      simulator: group(sim, simEnd, () => true),
      machineMs: machineBusyMs() - machine,
    };
  };
}

/** One line: each group's CPU as % of one core, its run-queue wait per second of wall time. */
export function formatCpu(use: CpuUse): string {
  const s = use.wallMs / 1000;
  const g = (name: string, u: ThreadGroupUse) =>
    `${name} ${((u.cpuMs / use.wallMs) * 100).toFixed(0)} % (waits ${(u.waitMs / s).toFixed(0)} ms/s)`;
  const ours = use.request.cpuMs + use.sync.cpuMs + use.otherThreads.cpuMs + use.simulator.cpuMs;
  return (
    `CPU of one core: ${g('request thread', use.request)}, ${g('sync thread', use.sync)}, ` +
    `${g('other threads', use.otherThreads)}, ${g('simulator', use.simulator)}, ` +
    `rest of the machine ${((Math.max(0, use.machineMs - ours) / use.wallMs) * 100).toFixed(0)} % ` +
    `(machine ${((use.machineMs / use.wallMs) * 100).toFixed(0)} % of 200 %)`
  );
}
