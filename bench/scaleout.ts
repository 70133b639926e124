// `npm run bench -- scaleout [--tokens N] [--latency MS] [--concurrency N] [--database postgres|URL]`
//
// Scale-out of sync workers on PostgreSQL (issue 14): the same queue of `--tokens` syncs (default 300, one
// Apple location each) run by 1 and then by 3 `vppd serve --role worker` processes, each with the same
// VPPD_SYNC_CONCURRENCY (default 10) and VPPD_SYNC_MAX_ACTIVE = replicas x concurrency, against the
// Apple simulator answering every call after `--latency` ms (default 150). Tokens are uploaded through an
// `--role api` process while no worker runs, so both runs start from the same full queue; the time is
// from the first sync's start to the last one's end, as the database recorded them.
// Printed: both times, the ratio (target >= 2.5x), and the CPU the worker processes used over that time
// (from /proc) next to the wall time: a few percent of a core each means the work waits on Apple, not
// on CPU, so more replicas go faster.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { startAppleSim } from '../src/apple-sim/apple-sim.js';
import { mintToken, roles, testJwtSecret } from '../test/helpers/jwt.js';
import { cleanEnv, type ServeProcess, startServeProcess } from '../test/helpers/serve-process.js';
import { benchDatabase } from './database.js';

const tenantId = '5ca1e000-0000-4000-8000-000000000001';
const completed = 2;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which is in parentheses and may hold spaces).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / 100;
}

interface RunResult {
  readonly replicas: number;
  readonly seconds: number;
  /** CPU seconds of each worker process during the run. */
  readonly cpu: readonly number[];
  readonly byWorker: readonly number[];
  /** Mean duration of one sync, and how many ran at once on average (sum of durations / span). */
  readonly meanSyncSeconds: number;
  readonly meanRunning: number;
  /** Apple calls per sync, as the simulator counted them. */
  readonly callsPerSync: number;
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      tokens: { type: 'string', default: '300' },
      latency: { type: 'string', default: '150' },
      concurrency: { type: 'string', default: '10' },
      database: { type: 'string', default: 'postgres' },
    },
  });
  const tokens = Number(values.tokens);
  const latency = Number(values.latency);
  const concurrency = Number(values.concurrency);
  if (values.database === 'sqlite')
    throw new Error('scaleout runs replicas on PostgreSQL: --database postgres|URL');
  const database = await benchDatabase(values.database);
  const dir = mkdtempSync(join(tmpdir(), 'vppd-bench-scaleout-'));
  const locations = Array.from({ length: tokens }, (_, i) => `loc-${i}`);
  const sim = await startAppleSim({
    seed: 'scaleout',
    rateLimit: false,
    locations: locations.map((id, i) => ({
      id,
      name: `School ${i}`,
      orgName: 'Scale-out Org',
      countryCode: 'US',
      assets: 4,
      assignments: 20,
      users: 20,
    })),
  });
  const bearer = `Bearer ${await mintToken({ tenantId, roles: [roles.readWrite], expiresIn: 3600 })}`;
  const env = (extra: Record<string, string>) =>
    cleanEnv({
      VPPD_ENCRYPTION_KEY: Buffer.alloc(32, 11).toString('base64'),
      VPPD_JWT_SECRET: testJwtSecret,
      VPPD_LOG_LEVEL: 'warn',
      VPPD_SYNC_CONCURRENCY: String(concurrency),
      ...extra,
    });
  const processes: ServeProcess[] = [];

  async function once(replicas: number): Promise<RunResult> {
    const url = await database.fresh(dir);
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    pool.on('error', () => {});
    const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
    sim.reset();
    for (const id of locations) sim.faults.latency(id, latency);
    const args = ['--port', '0', '--database', url, '--apple-url', sim.baseUrl];
    const api = await startServeProcess([...args, '--role', 'api'], { env: env({}), cwd: dir });
    processes.push(api);
    // Upload every token while no worker runs: the queue is full before the first claim.
    for (let i = 0; i < locations.length; i += 20) {
      await Promise.all(
        locations.slice(i, i + 20).map(async (id) => {
          const response = await fetch(`${api.url}/beta/deviceAppManagement/vppTokens`, {
            method: 'POST',
            headers: { authorization: bearer, 'content-type': 'application/json' },
            body: JSON.stringify({ token: sim.tokenFor(id), displayName: id }),
          });
          if (response.status !== 201) throw new Error(`upload answered ${response.status}`);
          await response.arrayBuffer();
        }),
      );
    }
    const workerEnv = env({ VPPD_SYNC_MAX_ACTIVE: String(replicas * concurrency) });
    const workers = await Promise.all(
      Array.from({ length: replicas }, () =>
        startServeProcess([...args, '--role', 'worker'], { env: workerEnv, cwd: dir }),
      ),
    );
    processes.push(...workers);
    const cpuBefore = workers.map((w) => cpuSeconds(w.child.pid as number));
    for (;;) {
      const done = await sql<{
        n: number;
      }>`select count(*)::int as n from vpp_tokens where last_sync_status = ${completed}`.execute(db);
      if (done.rows[0]?.n === tokens) break;
      const failed = await sql<{
        n: number;
      }>`select count(*)::int as n from vpp_tokens where last_sync_status = 3`.execute(db);
      if ((failed.rows[0]?.n ?? 0) > 0)
        throw new Error('a sync failed: the benchmark measures successful syncs');
      await new Promise((r) => setTimeout(r, 200));
    }
    const cpu = workers.map((w, i) => cpuSeconds(w.child.pid as number) - (cpuBefore[i] as number));
    const span = await sql<{
      first: string;
      last: string;
    }>`select min(started_at) as first, max(finished_at) as last from sync_runs where outcome = 'completed'`.execute(
      db,
    );
    const seconds =
      (Date.parse(span.rows[0]?.last as string) - Date.parse(span.rows[0]?.first as string)) / 1000;
    const durations = await sql<{
      started_at: string;
      finished_at: string;
    }>`select started_at, finished_at from sync_runs where outcome = 'completed'`.execute(db);
    const total = durations.rows.reduce(
      (sum, r) => sum + (Date.parse(r.finished_at) - Date.parse(r.started_at)) / 1000,
      0,
    );
    const calls = Object.entries(sim.requestCounts())
      .filter(([key]) => key !== '*')
      .reduce((sum, [, counts]) => sum + Object.values(counts).reduce((a, b) => a + b, 0), 0);
    const per = await sql<{
      worker_id: string;
      n: number;
    }>`select worker_id, count(*)::int as n from sync_runs group by worker_id order by worker_id`.execute(db);
    for (const p of [api, ...workers]) await p.stop('SIGTERM');
    await db.destroy();
    return {
      replicas,
      seconds,
      cpu,
      byWorker: per.rows.map((r) => r.n),
      meanSyncSeconds: total / durations.rows.length,
      meanRunning: total / seconds,
      callsPerSync: calls / tokens,
    };
  }

  try {
    process.stdout.write(
      `scale-out: ${tokens} tokens, one location each, ${latency} ms Apple latency per call, VPPD_SYNC_CONCURRENCY=${concurrency} per worker; ${database.label}; load ${loadavg()[0]?.toFixed(1)}\n`,
    );
    const one = await once(1);
    const three = await once(3);
    for (const r of [one, three]) {
      const cpuTotal = r.cpu.reduce((a, b) => a + b, 0);
      process.stdout.write(
        `  ${r.replicas} worker${r.replicas === 1 ? ' ' : 's'}: ${r.seconds.toFixed(1)} s (${(tokens / r.seconds).toFixed(1)} syncs/s; syncs per worker ${r.byWorker.join('/')}; a sync ${r.meanSyncSeconds.toFixed(2)} s for ${r.callsPerSync.toFixed(1)} Apple calls, ${r.meanRunning.toFixed(1)} running at once); worker CPU ${cpuTotal.toFixed(1)} s = ${((cpuTotal / r.seconds / r.replicas) * 100).toFixed(0)}% of a core per worker\n`,
      );
    }
    process.stdout.write(
      `  speed-up with 3 workers: ${(one.seconds / three.seconds).toFixed(2)}x (target >= 2.5x); load ${loadavg()[0]?.toFixed(1)}\n`,
    );
  } finally {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await sim.close();
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
