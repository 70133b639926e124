// `npm run bench -- dashboard [--tokens N] [--runs N] [--streams N] [--changes N] [--idle S]`
//
// What the dashboard costs the server, each figure next to a baseline measured in the same run:
// 1. the table read (tokens + sync history + jobs in flight) of a tenant with 3,000 tokens, against the
//    bare store list of the same tokens;
// 2. a commit reaching every open dashboard: the time from a PATCH to the upsert event on each of
//    `--streams` live streams, against the same with one stream;
// 3. the CPU an idle server spends with those streams open, against no streams open.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { parseConfig } from '../src/config.js';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import type { SyncRunRow } from '../src/storage/database-schema.js';
import { createSyncProgressStore } from '../src/storage/sync-progress-store.js';
import { createTokenSummaryLoader } from '../src/vppd-api/token-summaries.js';
import { seedTokens } from '../test/helpers/seed-tokens.js';

const tenantId = 'dddddddd-0000-4000-8000-000000000001';

async function meanMs(iterations: number, work: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 3; i += 1) await work();
  const started = performance.now();
  for (let i = 0; i < iterations; i += 1) await work();
  return (performance.now() - started) / iterations;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** One live dashboard stream: reads events and resolves waiters on the upsert of a token. */
class StreamClient {
  private readonly waiters = new Map<string, (at: number) => void>();
  private readonly controller = new AbortController();
  ready: Promise<void>;

  constructor(url: string, authorization: string) {
    let opened: () => void = () => undefined;
    this.ready = new Promise((resolve) => {
      opened = resolve;
    });
    void (async () => {
      const response = await fetch(`${url}/vppd/v1/events`, {
        headers: { authorization, accept: 'text/event-stream' },
        signal: this.controller.signal,
      });
      if (!response.ok || response.body === null) throw new Error(`events: ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buffer += value;
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (data === undefined) continue;
            const event = JSON.parse(data) as {
              type: string;
              tokens?: { id: string; displayName: string }[];
            };
            if (event.type === 'snapshot') opened();
            for (const token of event.tokens ?? []) {
              const waiter = this.waiters.get(`${token.id}:${token.displayName}`);
              if (waiter !== undefined && event.type === 'upsert') waiter(performance.now());
            }
          }
        }
      } catch {
        // Aborted at the end of the run.
      }
    })();
  }

  /** Resolves with the time the upsert giving `id` the name `name` arrived. */
  waitFor(id: string, name: string): Promise<number> {
    return new Promise((resolve) => this.waiters.set(`${id}:${name}`, resolve));
  }

  close(): void {
    this.controller.abort();
  }
}

/** Commits `changes` renames one after another; returns each stream's delay from commit to upsert (ms). */
async function deliveryDelays(
  url: string,
  authorization: string,
  clients: readonly StreamClient[],
  tokenIds: readonly string[],
  changes: number,
): Promise<number[]> {
  const delays: number[] = [];
  for (let i = 0; i < changes; i += 1) {
    const id = tokenIds[(i * 37) % tokenIds.length] as string;
    const name = `renamed ${randomUUID().slice(0, 8)}`;
    const arrivals = clients.map((client) => client.waitFor(id, name));
    const committed = performance.now();
    const response = await fetch(`${url}/beta/deviceAppManagement/vppTokens/${id}`, {
      method: 'PATCH',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ displayName: name }),
    });
    if (response.status !== 204) throw new Error(`PATCH answered ${response.status}`);
    for (const at of await Promise.all(arrivals)) delays.push(at - committed);
    // Changes land in different check periods, as real ones do.
    await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 150));
  }
  return delays;
}

async function cpuMsPerSecond(seconds: number): Promise<number> {
  const before = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / seconds;
}

async function openStreams(url: string, authorization: string, count: number): Promise<StreamClient[]> {
  const clients = Array.from({ length: count }, () => new StreamClient(url, authorization));
  await Promise.all(clients.map((c) => c.ready));
  return clients;
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      tokens: { type: 'string', default: '3000' },
      runs: { type: 'string', default: '5' },
      streams: { type: 'string', default: '100' },
      changes: { type: 'string', default: '20' },
      idle: { type: 'string', default: '5' },
    },
  });
  const tokenCount = Number(values.tokens);
  const runsPerToken = Number(values.runs);
  const streamCount = Number(values.streams);
  const changes = Number(values.changes);
  const idleSeconds = Number(values.idle);

  const dir = await mkdtemp(join(tmpdir(), 'vppd-bench-dashboard-'));
  const jwtSecret = randomBytes(48).toString('base64url');
  const config = parseConfig({
    port: '0',
    host: '127.0.0.1',
    database: `sqlite:${join(dir, 'vppd.db')}`,
    encryptionKey: randomBytes(32).toString('base64'),
    jwtSecret,
    logLevel: 'silent',
  });
  let server: RunningServer | undefined;
  try {
    server = await startServer(config);
    const { context } = server;
    // Every token synced before; every tenth one's newest sync failed.
    const seeded = await seedTokens(context.tokens, {
      tenantId,
      count: tokenCount,
      changes: (i) => ({
        lastSyncDateTime: new Date(Date.UTC(2026, 9, 1) + i * 1000),
        lastSyncStatus: i % 10 === 0 ? 'failed' : 'completed',
      }),
    });
    // A history per token: `runs` attempts a day apart, the newest failed for every tenth token.
    const rows: SyncRunRow[] = [];
    const day = 86_400_000;
    for (const [i, token] of seeded.entries()) {
      for (let r = 0; r < runsPerToken; r += 1) {
        const started = new Date(Date.UTC(2026, 9, 1) + r * day + i * 1000);
        const failed = r === runsPerToken - 1 && i % 10 === 0;
        rows.push({
          id: randomUUID(),
          tenant_id: tenantId,
          token_id: token.id,
          job_id: randomUUID(),
          trigger: 'scheduled',
          attempt: 1,
          worker_id: 'bench',
          started_at: started.toISOString(),
          finished_at: new Date(started.getTime() + 4000).toISOString(),
          outcome: failed ? 'failed' : 'completed',
          failure_kind: failed ? 'revoked' : null,
          failure_reason: failed ? 1 : null,
          error_message: failed ? 'The server has revoked the sToken' : null,
          apple_error_number: failed ? 9625 : null,
          http_status: failed ? 401 : null,
          location_uid: null,
          version_id: null,
          asset_count: failed ? null : 40,
          assignment_count: failed ? null : 900,
          page_count: failed ? null : 2,
          staging_cleared: 1,
        } as SyncRunRow);
      }
    }
    for (let i = 0; i < rows.length; i += 500) {
      await context.db
        .insertInto('sync_runs')
        .values(rows.slice(i, i + 500))
        .execute();
    }

    const now = Math.floor(Date.now() / 1000);
    const jwt = await new SignJWT({ tid: tenantId, roles: ['DeviceManagementServiceConfig.ReadWrite.All'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(new TextEncoder().encode(jwtSecret));
    const authorization = `Bearer ${jwt}`;

    process.stdout.write(
      `dashboard benchmark — node ${process.version}, ${tokenCount} tokens with ${rows.length} sync runs in one ` +
        `tenant, file SQLite; load average ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}\n`,
    );

    // 1. The table read.
    const load = createTokenSummaryLoader({
      tokens: context.tokens,
      jobs: context.sync.jobs,
      progress: createSyncProgressStore({ storage: context.storage }),
      clock: () => new Date(),
    });
    const table = await load(tenantId);
    if (
      table.length !== tokenCount ||
      table.filter((r) => r.lastSuccessDateTime !== null).length !== tokenCount
    ) {
      throw new Error('the table read lost rows or history');
    }
    const bare = await meanMs(10, () => context.tokens.list(tenantId));
    const full = await meanMs(10, () => load(tenantId));
    process.stdout.write(
      `table read:   ${full.toFixed(1)} ms for ${tokenCount} rows (tokens + history + jobs); ` +
        `bare token list ${bare.toFixed(1)} ms; ratio ${(full / bare).toFixed(2)}×\n`,
    );

    // 2. A commit reaching open dashboards.
    const ids = seeded.map((t) => t.id);
    const one = await openStreams(server.url, authorization, 1);
    const single = await deliveryDelays(server.url, authorization, one, ids, changes);
    for (const c of one) c.close();
    const many = await openStreams(server.url, authorization, streamCount);
    const fanned = await deliveryDelays(server.url, authorization, many, ids, changes);
    const p50One = percentile(single, 50);
    const p50Many = percentile(fanned, 50);
    process.stdout.write(
      `commit → screen: 1 stream p50 ${p50One.toFixed(0)} ms, p99 ${percentile(single, 99).toFixed(0)} ms; ` +
        `${streamCount} streams p50 ${p50Many.toFixed(0)} ms, p99 ${percentile(fanned, 99).toFixed(0)} ms, ` +
        `max ${Math.max(...fanned).toFixed(0)} ms; ratio (p50) ${(p50Many / p50One).toFixed(2)}× ` +
        `(${changes} changes, check period 250 ms)\n`,
    );

    // 3. Idle cost of open streams.
    const withStreams = await cpuMsPerSecond(idleSeconds);
    for (const c of many) c.close();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const withoutStreams = await cpuMsPerSecond(idleSeconds);
    process.stdout.write(
      `idle CPU:     ${withStreams.toFixed(1)} ms/s with ${streamCount} streams open, ` +
        `${withoutStreams.toFixed(1)} ms/s with none (${idleSeconds} s each); ` +
        `difference ${(withStreams - withoutStreams).toFixed(1)} ms/s\n`,
    );
  } finally {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  }
}
