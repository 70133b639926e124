// A fixed-rate, open-loop HTTP load generator for bench/busy.ts (not a benchmark of its own).
//
// Request i is due at start + i / rate seconds, evenly spaced, whatever happened to earlier requests:
// a slow answer never holds back the next request (it goes out on another keep-alive connection of the
// pool), and every latency is measured from when the request was due, not from when it was sent, so a
// stall of the server (or of this generator) is counted in full by every request it delayed — the
// coordinated-omission rule. Why not autocannon's `overallRate`: autocannon 8 sends each connection's
// share of a second back to back at the start of the second and then waits for the next second (bursts,
// not a rate), and corrects for coordinated omission with an expected interval of `ceil(1 / rate)` ms,
// which is 1 ms for any rate of 1/s or more: one 26 ms answer adds 25 made-up samples of 1-25 ms.
// At 20 req/s that turned an idle p99 of under 10 ms into 20-30 ms.
//
// It runs in a worker thread of its own (the server under test runs on this process's main thread and
// must not delay the generator's clock), or in a child process (`fixedRateLoad(…, { process: true })`).
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Pool } from 'undici';

export interface FixedRateOptions {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Requests per second, evenly spaced. */
  readonly rate: number;
  readonly durationS: number;
  /** Keep-alive connections the pool may open (a slow answer takes one; the next request uses another). */
  readonly connections?: number;
  readonly timeoutMs?: number;
}

export interface FixedRateResult {
  /** Milliseconds from when each request was due to the end of its answer's body. */
  readonly latency: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly requests: { readonly total: number };
  /** Answers that were not 2xx, and requests that failed or timed out: any of them fails the run. */
  readonly non2xx: number;
  readonly errors: number;
  /** How late the generator itself sent, at worst (its own clock: a figure over a few ms means this
   * generator was kept off the CPU, and that delay is inside the latencies too). */
  readonly sendLagMaxMs: number;
}

/** Runs the load in this thread: what the worker thread or the child process calls. */
export async function runFixedRate(options: FixedRateOptions): Promise<FixedRateResult> {
  const url = new URL(options.url);
  const path = `${url.pathname}${url.search}`;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const pool = new Pool(url.origin, {
    connections: options.connections ?? 8,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const headers = { ...options.headers };
  const send = async () => {
    const response = await pool.request({ path, method: 'GET', headers });
    await response.body.arrayBuffer();
    return response.statusCode;
  };
  try {
    // Warm-up, not counted: the pool's connections are opened (and the server's first answers made).
    await Promise.all(Array.from({ length: Math.min(4, options.connections ?? 8) }, send));
    const interval = 1000 / options.rate;
    const total = Math.max(1, Math.round(options.rate * options.durationS));
    const latencies: number[] = [];
    let non2xx = 0;
    let errors = 0;
    let sendLagMaxMs = 0;
    const inFlight: Promise<void>[] = [];
    const start = performance.now() + interval;
    for (let i = 0; i < total; i++) {
      const due = start + i * interval;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      sendLagMaxMs = Math.max(sendLagMaxMs, performance.now() - due);
      inFlight.push(
        send().then(
          (status) => {
            latencies.push(performance.now() - due);
            if (status < 200 || status > 299) non2xx++;
          },
          () => {
            errors++;
          },
        ),
      );
    }
    await Promise.all(inFlight);
    latencies.sort((a, b) => a - b);
    const at = (q: number) =>
      latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)] ?? 0;
    return {
      latency: { p50: at(0.5), p99: at(0.99), max: latencies[latencies.length - 1] ?? 0 },
      requests: { total: latencies.length + errors },
      non2xx,
      errors,
      sendLagMaxMs,
    };
  } finally {
    await pool.close();
  }
}

const thisFile = fileURLToPath(import.meta.url);

/** The load in a worker thread of this process (default) or in a child process of its own. */
export function fixedRateLoad(
  options: FixedRateOptions,
  where: { process?: boolean } = {},
): Promise<FixedRateResult> {
  if (where.process === true) {
    return new Promise((resolve, reject) => {
      const child = fork(thisFile, [JSON.stringify(options)], { execArgv: ['--import', 'tsx'] });
      child.once('message', (result) => resolve(result as FixedRateResult));
      child.once('error', reject);
      child.once('exit', (code) => {
        if (code !== 0) reject(new Error(`the load process exited with code ${code}`));
      });
    });
  }
  // Node 20 does not carry `--import` loaders into worker threads: the thread registers tsx first.
  const tsxApi = new URL(
    'dist/esm/api/index.mjs',
    pathToFileURL(createRequire(import.meta.url).resolve('tsx/package.json')),
  ).href;
  const boot = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(
    import.meta.url,
  )}); });`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(boot, { eval: true, workerData: options });
    worker.once('message', (result) => resolve(result as FixedRateResult));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the load thread exited with code ${code}`));
    });
  });
}

// As a worker thread's module, or as a child process's main module: run, answer, finish.
if (!isMainThread && parentPort !== null && (workerData as FixedRateOptions | undefined)?.url !== undefined) {
  const port = parentPort;
  void runFixedRate(workerData as FixedRateOptions).then((result) => port.postMessage(result));
} else if (isMainThread && process.argv[1] === thisFile && process.send !== undefined) {
  const options = JSON.parse(process.argv[2] ?? '{}') as FixedRateOptions;
  void runFixedRate(options).then((result) => {
    process.send?.(result, () => process.exit(0));
  });
}
