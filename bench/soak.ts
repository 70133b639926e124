// `npm run bench -- soak [--duration S] [--connections N] [--drain KBPS] [--log-level L] [--sample S]`
//
// Memory of `vppd serve` under sustained load (issue 17, item 5): a real `vppd serve` child process
// (role api, a file SQLite database with 200 seeded tokens) whose stdout is a pipe this process
// reads at `--drain` KB/s (default 1024: a slow log shipper; 0 reads as fast as it can), loaded by
// autocannon (another child) with `--connections` clients (default 200) for `--duration` seconds
// (default 300) on GET vppTokens?$top=20 and GET /healthz. Every `--sample` seconds the server is
// asked over IPC for its RSS and its heap right after a forced GC (`--expose-gc`; the GC pauses
// the server for a few ms, visible in max latency). A probe GETs /healthz every 250 ms beside the
// load and records its slowest answers: stalls show there. Prints the samples, the growth of RSS
// and heap-after-GC after the first minute (target <= 20 MB), p99 and max latency, log bytes
// drained and the server's vppd_log_lines_dropped_total.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { pino } from 'pino';
import { parseConfig } from '../src/config.js';
import { createContext } from '../src/context.js';
import { issueAccessToken } from '../src/http/auth/issue-access-token.js';
import { seedTokens } from '../test/helpers/seed-tokens.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsxLoader = pathToFileURL(`${root}node_modules/tsx/dist/loader.mjs`).href;
const autocannonPath = createRequire(import.meta.url).resolve('autocannon');
const execFileAsync = promisify(execFile);
const tenantId = '50a40000-0000-4000-8000-000000000001';

/** Loaded into the server with --import: answers 'sample' over IPC with its memory after a GC. */
const probeModule = `data:text/javascript,${encodeURIComponent(`
process.channel?.unref();
process.on('message', (m) => {
  if (m !== 'sample') return;
  const started = performance.now();
  globalThis.gc();
  const gcMs = performance.now() - started;
  const u = process.memoryUsage();
  process.send({ rss: u.rss, heapUsed: u.heapUsed, external: u.external, arrayBuffers: u.arrayBuffers, gcMs });
});`)}`;

const loadScript = `const autocannon = require(process.argv[1]);
autocannon(JSON.parse(process.argv[2])).then(
  (r) => process.stdout.write(JSON.stringify({ latency: r.latency, requests: r.requests, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, '2xx': r['2xx'] })),
  (e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); },
);`;

interface Sample {
  readonly atS: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
  readonly gcMs: number;
}

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

/**
 * The kernel's count of connections refused because a listen queue was full (Linux; undefined
 * elsewhere). A refused SYN is retried after 1, 3, 7, 15 s...: such stalls show as max latency.
 */
async function listenOverflows(): Promise<number | undefined> {
  try {
    const text = await readFile('/proc/net/netstat', 'utf8');
    const [names, values] = text.split('\n').filter((l) => l.startsWith('TcpExt:'));
    const index = names?.split(/\s+/).indexOf('ListenOverflows') ?? -1;
    return index > 0 ? Number(values?.split(/\s+/)[index]) : undefined;
  } catch {
    return undefined;
  }
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      duration: { type: 'string', default: '300' },
      connections: { type: 'string', default: '200' },
      drain: { type: 'string', default: '1024' },
      'log-level': { type: 'string' },
      sample: { type: 'string' },
    },
  });
  const duration = Number(values.duration);
  const connections = Number(values.connections);
  const drainKBps = Number(values.drain);
  const sampleS = Number(values.sample ?? (duration >= 120 ? 10 : 5));
  const dir = await mkdtemp(join(tmpdir(), 'vppd-soak-'));
  const secret = randomBytes(48).toString('base64url');
  const env: Record<string, string> = {
    ...Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('VPPD_')) as [string, string][],
    ),
    VPPD_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    VPPD_JWT_SECRET: secret,
    VPPD_DATABASE_URL: `sqlite:${join(dir, 'vppd.db')}`,
    VPPD_PORT: '0',
    VPPD_ROLE: 'api',
    ...(values['log-level'] ? { VPPD_LOG_LEVEL: values['log-level'] } : {}),
  };
  // Seed through the store, then hand the database to the server.
  const seedContext = await createContext(parseConfig({ ...readEnvLike(env), logLevel: 'silent' }), {
    logger: pino({ level: 'silent' }),
  });
  await seedTokens(seedContext.tokens, { tenantId, count: 200 });
  await seedContext.dispose();

  const child = spawn(
    process.execPath,
    ['--expose-gc', '--import', tsxLoader, '--import', probeModule, join(root, 'src/cli/main.ts'), 'serve'],
    { cwd: dir, env, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] },
  );
  try {
    const url = await listeningUrl(child);
    let drained = 0;
    const stdout = child.stdout as NonNullable<ChildProcess['stdout']>;
    // The slow reader: at most drainKBps per second, in ticks of 100 ms (0: as fast as it comes).
    const drainer =
      drainKBps > 0
        ? setInterval(() => {
            let budget = Math.round((drainKBps * 1024) / 10);
            while (budget > 0 && stdout.readableLength > 0) {
              const chunk = stdout.read(Math.min(budget, stdout.readableLength)) as Buffer | null;
              if (chunk === null) break;
              budget -= chunk.length;
              drained += chunk.length;
            }
          }, 100)
        : undefined;
    if (drainKBps <= 0) {
      stdout.on('data', (c: Buffer) => {
        drained += c.length;
      });
      stdout.resume();
    }

    const authorization = `Bearer ${await issueAccessToken({ secret: new TextEncoder().encode(secret), tenantId, roles: ['DeviceManagementServiceConfig.Read.All'] })}`;
    const samples: Sample[] = [];
    const started = performance.now();
    const sample = () =>
      new Promise<void>((resolve) => {
        child.once('message', (m: Omit<Sample, 'atS'>) => {
          samples.push({ atS: (performance.now() - started) / 1000, ...m });
          resolve();
        });
        child.send('sample');
      });
    await sample();
    const sampler = setInterval(() => void sample(), sampleS * 1000);
    // The probe: one /healthz every 250 ms beside the load; its slowest answers show stalls.
    const probes: { atS: number; ms: number }[] = [];
    let probing = true;
    const probeLoop = (async () => {
      while (probing) {
        const t0 = performance.now();
        try {
          const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(60_000) });
          await r.arrayBuffer();
        } catch {
          // counted as its duration
        }
        probes.push({ atS: (t0 - started) / 1000, ms: performance.now() - t0 });
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    process.stdout.write(
      `soak: ${connections} clients for ${duration} s, stdout drained at ${drainKBps > 0 ? `${drainKBps} KB/s` : 'full speed'}, log level ${values['log-level'] ?? 'default (info)'}\n`,
    );
    const options = {
      url,
      connections,
      duration,
      timeout: 60,
      headers: { authorization },
      requests: [
        { method: 'GET', path: '/beta/deviceAppManagement/vppTokens?$top=20' },
        { method: 'GET', path: '/healthz' },
      ],
    };
    const overflowsBefore = await listenOverflows();
    const { stdout: loadOut } = await execFileAsync(
      process.execPath,
      ['-e', loadScript, autocannonPath, JSON.stringify(options)],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    const load = JSON.parse(loadOut) as {
      latency: { p50: number; p99: number; max: number };
      requests: { average: number; total: number };
      errors: number;
      timeouts: number;
      non2xx: number;
    };
    const overflowsAfter = await listenOverflows();
    clearInterval(sampler);
    probing = false;
    await probeLoop;
    await sample();
    if (drainer) clearInterval(drainer);
    const metrics = await (await fetch(`${url}/metrics`)).text().catch(() => '');
    const dropped = /^vppd_log_lines_dropped_total (\d+)/m.exec(metrics)?.[1] ?? 'n/a';

    process.stdout.write('\n     t      rss   heap(after GC)   external   gc ms\n');
    for (const s of samples) {
      process.stdout.write(
        `  ${s.atS.toFixed(0).padStart(4)} s ${mb(s.rss).padStart(7)} MB ${mb(s.heapUsed).padStart(9)} MB ${mb(s.external).padStart(9)} MB ${s.gcMs.toFixed(0).padStart(6)}\n`,
      );
    }
    const base = samples.find((s) => s.atS >= Math.min(60, duration / 3)) ?? samples[0];
    const last = samples[samples.length - 1];
    if (base && last) {
      const rssGrowth = last.rss - base.rss;
      const heapGrowth = last.heapUsed - base.heapUsed;
      process.stdout.write(
        `\ngrowth from ${base.atS.toFixed(0)} s to ${last.atS.toFixed(0)} s: RSS ${mb(rssGrowth)} MB, heap after GC ${mb(heapGrowth)} MB (target <= 20 MB: ${Math.max(rssGrowth, heapGrowth) <= 20 * 1024 * 1024 ? 'met' : 'NOT met'})\n`,
      );
    }
    const slowest = [...probes].sort((a, b) => b.ms - a.ms).slice(0, 3);
    process.stdout.write(
      `load: ${load.requests.average.toFixed(0)} req/s, ${load.requests.total} requests, p50 ${load.latency.p50} ms, p99 ${load.latency.p99} ms, max ${load.latency.max} ms; ${load.errors} errors, ${load.timeouts} timeouts, ${load.non2xx} non-2xx\n` +
        `probe /healthz every 250 ms: slowest ${slowest.map((p) => `${p.ms.toFixed(0)} ms at ${p.atS.toFixed(0)} s`).join(', ')}\n` +
        `log: ${mb(drained)} MB drained from stdout; vppd_log_lines_dropped_total ${dropped}\n` +
        `listen queue overflows during the load (whole machine): ${overflowsBefore === undefined || overflowsAfter === undefined ? 'n/a' : overflowsAfter - overflowsBefore}\n`,
    );
  } finally {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

/** The settings of `env` as RawSettings (only those the seeding context needs). */
function readEnvLike(env: Record<string, string>) {
  return {
    database: env.VPPD_DATABASE_URL,
    encryptionKey: env.VPPD_ENCRYPTION_KEY,
    jwtSecret: env.VPPD_JWT_SECRET,
  };
}

/** Waits for the server's listening line on stdout and answers its URL (stdout is left paused). */
function listeningUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdout = child.stdout as NonNullable<ChildProcess['stdout']>;
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const match = /vppd listening on (\S+)/.exec(text);
      if (match?.[1]) {
        stdout.off('data', onData);
        stdout.pause();
        resolve(match[1]);
      }
    };
    stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`vppd serve exited with ${code}: ${text}`)));
  });
}
