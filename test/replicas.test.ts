import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { mintToken, roles, testJwtSecret } from './helpers/jwt.js';
import { cleanEnv, type ServeProcess, startServeProcess } from './helpers/serve-process.js';
import { createPostgresDatabase } from './helpers/storage-engines.js';

// Issue 14, "several replicas, one truth": three `vppd serve` processes (roles all, api, worker) on one
// PostgreSQL database and one Apple simulator (rate limit 15 requests per second per location).
// - 100 tokens of 4 tenants; syncs requested on all three replicas at once, in waves: every token
//   completes exactly once per wave (Apple's first-page calls per location, and the sync history);
// - no location ever sees more than 15 requests in any second, even when three tenants' syncs of one
//   location run on two replicas at once (Apple's rate is kept in the database);
// - a PATCH answered by one replica is what the next GET on another returns;
// - the dashboard's event stream on the api replica shows a sync run by another one complete;
// - the replica running a sync is SIGKILLed mid-sync: another takes the job over after the lease, and
//   the token's snapshot is whole at every moment.

const dir = mkdtempSync(join(tmpdir(), 'vppd-replicas-'));
const tenants = [0, 1, 2, 3].map((i) => `7e000000-0000-4000-8000-00000000000${i}`);
const smallIds = Array.from({ length: 100 }, (_, i) => `small-${String(i).padStart(3, '0')}`);
const limit = 15;
const completed = 2;
const inProgress = 1;

let sim: AppleSim;
let url: string;
let db: Kysely<unknown>;
const bearers = new Map<string, string>();
let replicas: ServeProcess[] = [];
/** Token id by small location id (each small location has one token, of tenant index % 4). */
const tokenOf = new Map<string, { tenant: string; id: string }>();

beforeAll(async () => {
  sim = await startAppleSim({
    seed: 'replicas',
    rateLimit: limit,
    pageSize: 500,
    locations: [
      ...smallIds.map((id, i) => ({
        id,
        name: `School ${i}`,
        orgName: 'Replica Org',
        countryCode: 'US',
        assets: 4,
        assignments: 20,
        users: 20,
      })),
      {
        id: 'big',
        name: 'Big',
        orgName: 'Replica Org',
        countryCode: 'US',
        assets: 50,
        assignments: 15_000,
        users: 100,
      },
    ],
  });
  url = await createPostgresDatabase();
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => {});
  db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
  for (const tenant of tenants) {
    bearers.set(
      tenant,
      `Bearer ${await mintToken({ tenantId: tenant, roles: [roles.readWrite], expiresIn: 3600 })}`,
    );
  }
  const env = cleanEnv({
    VPPD_ENCRYPTION_KEY: Buffer.alloc(32, 3).toString('base64'),
    VPPD_JWT_SECRET: testJwtSecret,
    VPPD_LOG_LEVEL: 'warn',
    VPPD_SYNC_LEASE: '3s',
    VPPD_SYNC_CONCURRENCY: '4',
    VPPD_SYNC_MAX_ACTIVE: '8',
  });
  replicas = await Promise.all(
    ['all', 'api', 'worker'].map((role) =>
      startServeProcess(['--port', '0', '--database', url, '--apple-url', sim.baseUrl, '--role', role], {
        env,
        cwd: dir,
      }),
    ),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(replicas.map((p) => p.stop('SIGKILL')));
  await db?.destroy();
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function graph(replica: ServeProcess, tenant: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${replica.url}/beta/deviceAppManagement/vppTokens${path}`, {
    method,
    headers: {
      authorization: bearers.get(tenant) as string,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown> };
}

/** Runs `work` over `items`, `width` at a time. */
async function inBatches<T>(
  items: readonly T[],
  width: number,
  work: (item: T, index: number) => Promise<void>,
) {
  for (let i = 0; i < items.length; i += width) {
    await Promise.all(items.slice(i, i + width).map((item, j) => work(item, i + j)));
  }
}

/** Waits until no job is left and every token has finished (completed or failed). */
async function settled(ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const jobs = await sql<{ n: number }>`select count(*)::int as n from sync_jobs`.execute(db);
    const busy = await sql<{
      n: number;
    }>`select count(*)::int as n from vpp_tokens where last_sync_status = ${inProgress}`.execute(db);
    if (jobs.rows[0]?.n === 0 && busy.rows[0]?.n === 0) return;
    if (Date.now() > until) throw new Error(`syncs still running after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function statusCounts(): Promise<Record<number, number>> {
  const rows = await sql<{
    status: number;
    n: number;
  }>`select last_sync_status as status, count(*)::int as n from vpp_tokens group by last_sync_status`.execute(
    db,
  );
  return Object.fromEntries(rows.rows.map((r) => [r.status, r.n]));
}

/** Completed runs per token. */
async function completedRuns(): Promise<Map<string, number>> {
  const rows = await sql<{
    token_id: string;
    n: number;
  }>`select token_id, count(*)::int as n from sync_runs where outcome = 'completed' group by token_id`.execute(
    db,
  );
  return new Map(rows.rows.map((r) => [r.token_id, r.n]));
}

function firstAssignmentPages(location: string): number {
  return sim.rateStats()[location]?.firstPages.assignments ?? 0;
}

function expectRateKept(): void {
  for (const [location, stats] of Object.entries(sim.rateStats())) {
    expect(stats.busiestSecond, `busiest second of ${location}`).toBeLessThanOrEqual(limit);
    expect(stats.rateLimited, `429s of ${location}`).toBe(0);
  }
}

describe('three replicas on one PostgreSQL database', () => {
  it('syncs every token exactly once per wave of requests sent to all replicas', {
    timeout: 90_000,
  }, async () => {
    // Wave 1: the uploads, spread over the replicas; each upload starts a sync.
    await inBatches(smallIds, 25, async (location, i) => {
      const tenant = tenants[i % tenants.length] as string;
      const created = await graph(replicas[i % 3] as ServeProcess, tenant, 'POST', '', {
        token: sim.tokenFor(location),
        displayName: location,
      });
      expect(created.status).toBe(201);
      tokenOf.set(location, { tenant, id: created.body.id as string });
    });
    await settled();
    expect(await statusCounts()).toEqual({ [completed]: 100 });
    for (const location of smallIds) expect(firstAssignmentPages(location)).toBe(1);

    // Waves 2 and 3: every token's sync requested on the three replicas at once. Apple answers slowly
    // (100 ms a call), so a sync outlasts the three requests: they start one sync, two coalesce.
    for (const location of smallIds) sim.faults.latency(location, 100);
    for (const wave of [2, 3]) {
      await inBatches(smallIds, 10, async (location) => {
        const { tenant, id } = tokenOf.get(location) as { tenant: string; id: string };
        const answers = await Promise.all(
          replicas.map((r) => graph(r, tenant, 'POST', `/${id}/syncLicenses`)),
        );
        for (const answer of answers) expect(answer.status).toBe(200);
      });
      await settled();
      expect(await statusCounts()).toEqual({ [completed]: 100 });
      for (const location of smallIds) expect(firstAssignmentPages(location)).toBe(wave);
      const runs = await completedRuns();
      for (const { id } of tokenOf.values()) expect(runs.get(id)).toBe(wave);
    }
    for (const location of smallIds) sim.faults.latency(location, 0);
    // Both worker replicas ran syncs; the api replica none.
    const workers = await sql<{ worker_id: string }>`select distinct worker_id from sync_runs`.execute(db);
    const pids = new Set(workers.rows.map((r) => Number(r.worker_id.split(':')[1])));
    expect(pids).toEqual(new Set([replicas[0]?.child.pid, replicas[2]?.child.pid]));
    expectRateKept();
  });

  it('answers a GET on one replica with what a PATCH on another wrote', async () => {
    const entries = [...tokenOf.values()].slice(0, 12);
    for (const [i, { tenant, id }] of entries.entries()) {
      const writer = replicas[i % 3] as ServeProcess;
      const reader = replicas[(i + 1) % 3] as ServeProcess;
      // The reader has the token cached from a GET just before the write.
      expect((await graph(reader, tenant, 'GET', `/${id}`)).status).toBe(200);
      const name = `renamed ${i}`;
      expect((await graph(writer, tenant, 'PATCH', `/${id}`, { displayName: name })).status).toBe(204);
      const read = await graph(reader, tenant, 'GET', `/${id}`);
      expect(read.body.displayName).toBe(name);
    }
  });

  it('shows a sync run by another replica on the api replica’s event stream within a second', async () => {
    const api = replicas[1] as ServeProcess;
    const { tenant, id } = tokenOf.get('small-000') as { tenant: string; id: string };
    const stream = await fetch(`${api.url}/vppd/v1/events`, {
      headers: { authorization: bearers.get(tenant) as string },
    });
    expect(stream.status).toBe(200);
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    const seen: { status: string; at: number }[] = [];
    const watch = async (until: (statuses: string[]) => boolean) => {
      while (!until(seen.map((s) => s.status))) {
        const { value, done } = await reader.read();
        if (done) throw new Error('event stream ended');
        buffer += decoder.decode(value, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').find((line) => line.startsWith('data: '));
          if (!data) continue;
          const event = JSON.parse(data.slice(6)) as { tokens?: { id: string; lastSyncStatus: string }[] };
          const token = event.tokens?.find((t) => t.id === id);
          if (token) seen.push({ status: token.lastSyncStatus, at: Date.now() });
        }
      }
    };
    await watch((s) => s.includes('completed'));
    sim.faults.latency('small-000', 300);
    // The api replica records the job; a worker replica runs it.
    expect((await graph(api, tenant, 'POST', `/${id}/syncLicenses`)).body.lastSyncStatus).toBe('inProgress');
    await watch((s) => s.at(-1) === 'completed' && s.includes('inProgress'));
    sim.faults.latency('small-000', 0);
    await reader.cancel();
    const run = await sql<{
      finished_at: string;
      worker_id: string;
    }>`select finished_at, worker_id from sync_runs where token_id = ${id} order by started_at desc limit 1`.execute(
      db,
    );
    const finished = Date.parse(run.rows[0]?.finished_at as string);
    expect(Number(run.rows[0]?.worker_id.split(':')[1])).not.toBe(api.child.pid);
    const shownAfterMs = (seen.at(-1)?.at as number) - finished;
    console.log(
      `event stream on the api replica showed the completed sync ${shownAfterMs} ms after its commit`,
    );
    expect(shownAfterMs).toBeLessThan(1000);
  });

  it('keeps one location’s rate across replicas, and survives the SIGKILL of the replica running a sync', {
    timeout: 90_000,
  }, async () => {
    sim.resetRequestCounts();
    // Three tenants hold a token of the same location: their syncs run at once on both worker
    // replicas and must share its 15 requests per second.
    const big = new Map<string, string>();
    await Promise.all(
      tenants.slice(0, 3).map(async (tenant, i) => {
        const created = await graph(replicas[i] as ServeProcess, tenant, 'POST', '', {
          token: sim.tokenFor('big'),
          displayName: 'Big',
        });
        expect(created.status).toBe(201);
        big.set(tenant, created.body.id as string);
      }),
    );
    await settled();
    expect(await statusCounts()).toEqual({ [completed]: 103 });
    expect(firstAssignmentPages('big')).toBe(3);
    const bigRuns = await sql<{
      worker_id: string;
    }>`select worker_id from sync_runs where token_id in (${sql.join([...big.values()])})`.execute(db);
    expect(new Set(bigRuns.rows.map((r) => r.worker_id)).size).toBeGreaterThan(1);
    expectRateKept();

    const tenant = tenants[0] as string;
    const id = big.get(tenant) as string;
    const before = await snapshotOf(id);
    expect(before).toEqual({ assignmentCount: 15_000, rows: 15_000, runId: expect.any(String) });
    await fetch(`${sim.adminUrl}/locations/big/change-data`, { method: 'POST' });
    sim.faults.latency('big', 40);
    expect((await graph(replicas[1] as ServeProcess, tenant, 'POST', `/${id}/syncLicenses`)).status).toBe(
      200,
    );
    // Wait until the sync has staged part of the new data, the previous snapshot whole all along.
    let owner: string | undefined;
    for (;;) {
      expect(await snapshotOf(id)).toEqual(before);
      const job = await sql<{
        lease_owner: string | null;
        run_id: string | null;
      }>`select lease_owner, run_id from sync_jobs where token_id = ${id}`.execute(db);
      const runId = job.rows[0]?.run_id;
      if (runId && (await stagedRows(runId)) >= 2000) {
        owner = job.rows[0]?.lease_owner ?? undefined;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const victim = replicas.find((r) => r.child.pid === Number(owner?.split(':')[1])) as ServeProcess;
    expect(victim).toBeDefined();
    expect(victim).not.toBe(replicas[1]);
    expect(await victim.stop('SIGKILL')).toBeNull();
    // Another worker replica takes the job over once the lease has expired and runs it again.
    const until = Date.now() + 60_000;
    for (;;) {
      const snapshot = await snapshotOf(id);
      // Never partial: the old snapshot whole, or the new one whole.
      expect(snapshot.rows).toBe(snapshot.assignmentCount);
      const status = await sql<{
        s: number;
      }>`select last_sync_status as s from vpp_tokens where id = ${id}`.execute(db);
      if (status.rows[0]?.s === completed) break;
      if (Date.now() > until) throw new Error('the killed replica’s sync was not taken over');
      await new Promise((r) => setTimeout(r, 100));
    }
    const runs = await sql<{
      worker_id: string;
      outcome: string;
      attempt: number;
    }>`select worker_id, outcome, attempt from sync_runs where token_id = ${id} order by started_at`.execute(
      db,
    );
    const last = runs.rows.slice(-2);
    expect(last.map((r) => [r.outcome, r.attempt])).toEqual([
      ['interrupted', 1],
      ['completed', 2],
    ]);
    expect(last[1]?.worker_id).not.toBe(owner);
    const after = await snapshotOf(id);
    expect(after.runId).not.toBe(before.runId);
    expect(after.rows).toBe(after.assignmentCount);
    expect(after.assignmentCount).toBeGreaterThan(15_000 - 2);
    sim.faults.latency('big', 0);
    expectRateKept();
  });
});

/** A token's current snapshot: its recorded assignment count and the license rows its run holds. */
async function snapshotOf(tokenId: string) {
  const pointer = await sql<{
    run_id: string;
    assignment_count: number;
  }>`select run_id, assignment_count from license_snapshots where token_id = ${tokenId}`.execute(db);
  const row = pointer.rows[0];
  if (!row) return { runId: undefined, assignmentCount: 0, rows: 0 };
  return { runId: row.run_id, assignmentCount: row.assignment_count, rows: await stagedRows(row.run_id) };
}

async function stagedRows(runId: string): Promise<number> {
  const rows = await sql<{
    n: number;
  }>`select coalesce(sum(l.holder_count), 0)::int as n from license_assignment_chunks l join license_runs r on r.run_key = l.run_key where r.run_id = ${runId}`.execute(
    db,
  );
  return rows.rows[0]?.n ?? 0;
}
