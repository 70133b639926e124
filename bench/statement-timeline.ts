// Not a benchmark of its own: the statement timeline `npm run bench -- delta --timeline` prints. It times,
// from outside vppd's code, every SQL statement (better-sqlite3's statements, pg's queries, `begin` and
// `commit` included), the time Kysely spends compiling queries, and every request to Apple
// (through the transport the bench gives the Apple client), each with its start relative to the start of
// the recording, so the gaps between them show the worker's hand-offs.
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { DefaultQueryExecutor } from 'kysely';
import pg from 'pg';
import type { AppleHttp } from '../src/apple/index.js';

export interface TimelineEvent {
  readonly kind: 'sqlite' | 'postgres' | 'apple';
  readonly what: string;
  readonly startMs: number;
  readonly ms: number;
}

export interface StatementTimeline {
  /** Starts a recording (drops the previous one). */
  start(): void;
  /** Stops recording; answers the events by start, and Kysely's query building and compiling time. */
  stop(): { readonly events: TimelineEvent[]; readonly compileMs: number; readonly compiles: number };
  /** Wraps the Apple client's transport so its requests are recorded. */
  appleHttp(http: AppleHttp): AppleHttp;
}

let installed: StatementTimeline | undefined;

/** Installs the hooks once per process (they record only between start and stop). */
export function statementTimeline(): StatementTimeline {
  if (installed !== undefined) return installed;
  let recording = false;
  let origin = 0;
  let events: TimelineEvent[] = [];
  let compileMs = 0;
  let compiles = 0;
  const record = (kind: TimelineEvent['kind'], what: string, started: number) => {
    if (recording) events.push({ kind, what, startMs: started - origin, ms: performance.now() - started });
  };

  // better-sqlite3: every statement vppd runs is a Statement (prepared once, cached by SQL text).
  const probe = new Database(':memory:');
  const statementProto = Object.getPrototypeOf(probe.prepare('select 1')) as Record<
    string,
    (...args: unknown[]) => unknown
  >;
  probe.close();
  for (const method of ['run', 'all', 'get', 'iterate'] as const) {
    const original = statementProto[method] as (...args: unknown[]) => unknown;
    statementProto[method] = function (this: { source: string }, ...args: unknown[]) {
      const started = performance.now();
      try {
        return original.apply(this, args);
      } finally {
        record('sqlite', this.source, started);
      }
    };
  }

  // pg: every query (Kysely's, begin/commit, the COPY submittables) goes through Client#query.
  const clientProto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const query = clientProto.query;
  clientProto.query = function (this: unknown, ...args: unknown[]) {
    const started = performance.now();
    const first = args[0];
    const text =
      typeof first === 'string'
        ? first
        : String((first as { text?: string } | undefined)?.text ?? 'submittable');
    const result = query.apply(this, args);
    if (result instanceof Promise) {
      return result.finally(() => record('postgres', text, started));
    }
    record('postgres', `${text} (submitted)`, started);
    return result;
  };

  // Kysely: compiling each query's operation node tree to SQL.
  const executorProto = DefaultQueryExecutor.prototype as unknown as {
    compileQuery: (...args: unknown[]) => unknown;
  };
  const compile = executorProto.compileQuery;
  executorProto.compileQuery = function (this: unknown, ...args: unknown[]) {
    const started = performance.now();
    try {
      return compile.apply(this, args);
    } finally {
      if (recording) {
        compileMs += performance.now() - started;
        compiles++;
      }
    }
  };

  installed = {
    start() {
      events = [];
      compileMs = 0;
      compiles = 0;
      origin = performance.now();
      recording = true;
    },
    stop() {
      recording = false;
      return { events: [...events].sort((a, b) => a.startMs - b.startMs), compileMs, compiles };
    },
    appleHttp(http) {
      return {
        async request(request) {
          const started = performance.now();
          try {
            return await http.request(request);
          } finally {
            record('apple', `${request.method} ${request.url.pathname}${request.url.search}`, started);
          }
        },
        close: () => http.close(),
      };
    },
  };
  return installed;
}

/** The timeline as lines: start, duration, kind, the statement's first 110 characters. */
export function formatTimeline(recorded: ReturnType<StatementTimeline['stop']>, totalMs: number): string[] {
  const lines: string[] = [];
  const sums = { sqlite: 0, postgres: 0, apple: 0 };
  const counts = { sqlite: 0, postgres: 0, apple: 0 };
  for (const e of recorded.events) {
    sums[e.kind] += e.ms;
    counts[e.kind]++;
    const what = e.what.replace(/\s+/g, ' ').slice(0, 110);
    lines.push(
      `      +${e.startMs.toFixed(2).padStart(7)} ${e.ms.toFixed(2).padStart(6)} ms  ${e.kind.padEnd(8)} ${what}`,
    );
  }
  lines.push(
    `      total ${totalMs.toFixed(1)} ms: ${counts.sqlite + counts.postgres} statements ` +
      `${(sums.sqlite + sums.postgres).toFixed(1)} ms, ${counts.apple} Apple requests (summed ${sums.apple.toFixed(1)} ms), ` +
      `Kysely compiling ${recorded.compiles} queries ${recorded.compileMs.toFixed(1)} ms`,
  );
  return lines;
}
