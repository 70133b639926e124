import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { decodeChunk } from '../src/storage/assignment-chunks.js';
import type { StorageEngine, StorageEngineKind } from '../src/storage/engine.js';
import { createStorageEngine, parseDatabaseUrl } from '../src/storage/open-database.js';
import { mintToken, roles, testJwtSecret } from './helpers/jwt.js';
import { cleanEnv, type ServeProcess, startServeProcess } from './helpers/serve-process.js';
import { storageEngines, testDatabaseUrl } from './helpers/storage-engines.js';

// docs/architecture.md invariants 2 and 4 with a real crash: `vppd serve` is killed with SIGKILL in
// the middle of a large sync. The previous snapshot must stay intact throughout (checked in the database file
// by this process while the child writes, on each engine), and after a restart the token must end completed or
// failed — never stuck inProgress — with nothing else lost.

const dir = mkdtempSync(join(tmpdir(), 'vppd-sigkill-'));
const running: ServeProcess[] = [];
const readers: StorageEngine[] = [];
let sim: AppleSim;
let bearer: string;
const tenant = 'tenant-sigkill';

beforeAll(async () => {
  sim = await startAppleSim({
    seed: 'sigkill',
    rateLimit: false,
    // Apple's page size order (several hundred); vppd's client keeps to 15 requests/s, so ~4 s a sync.
    pageSize: 500,
    locations: [
      {
        id: 'big',
        name: 'Big Campus',
        orgName: 'Kill Test Org',
        countryCode: 'US',
        assets: 200,
        assignments: 30_000,
        users: 500,
      },
      {
        id: 'other',
        name: 'Other Campus',
        orgName: 'Kill Test Org',
        countryCode: 'FR',
        assets: 20,
        assignments: 300,
        users: 50,
      },
    ],
  });
  bearer = `Bearer ${await mintToken({ tenantId: tenant, roles: [roles.readWrite], expiresIn: 3600 })}`;
});

afterAll(async () => {
  for (const p of running) await p.stop('SIGKILL');
  for (const reader of readers) await reader.close();
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(databaseUrl: string): Promise<ServeProcess> {
  const env = cleanEnv({
    VPPD_ENCRYPTION_KEY: Buffer.alloc(32, 9).toString('base64'),
    VPPD_JWT_SECRET: testJwtSecret,
    VPPD_LOG_LEVEL: 'warn',
    // Short leases so the restarted process takes the dead one's sync over within seconds.
    VPPD_SYNC_LEASE: '2s',
  });
  const p = await startServeProcess(['--port', '0', '--database', databaseUrl, '--apple-url', sim.baseUrl], {
    env,
    cwd: dir,
  });
  running.push(p);
  return p;
}

async function api(p: ServeProcess, method: string, path: string, body?: unknown) {
  const response = await fetch(`${p.url}/beta/deviceAppManagement/vppTokens${path}`, {
    method,
    headers: { authorization: bearer, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function waitForStatus(p: ServeProcess, id: string, done: (status: string) => boolean, ms = 30_000) {
  const until = Date.now() + ms;
  for (;;) {
    const { body } = await api(p, 'GET', `/${id}`);
    if (done(String(body.lastSyncStatus))) return body;
    if (Date.now() > until)
      throw new Error(`token ${id} still ${String(body.lastSyncStatus)} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What the database says about a token's current snapshot, read by this (separate) process. */
async function snapshotOf(db: StorageEngine['db'], tokenId: string) {
  const pointer = (
    await sql<{ run_id: string; version_id: string; assignment_count: number }>`
      select run_id, version_id, assignment_count from license_snapshots where token_id = ${tokenId}`.execute(
      db,
    )
  ).rows[0];
  if (!pointer) return undefined;
  const hash = createHash('sha256');
  const licenses: { seq: number; line: string }[] = [];
  const { rows: chunks } = await sql<{
    adam_id: string;
    pricing_param: string;
    seqs: string;
    holders: string;
  }>`
    select l.adam_id, l.pricing_param, l.seqs, l.holders from license_assignment_chunks l
    join license_runs r on r.run_key = l.run_key where r.run_id = ${pointer.run_id}`.execute(db);
  for (const chunk of chunks) {
    for (const license of decodeChunk(chunk)) {
      licenses.push({
        seq: license.seq,
        line: `${license.seq}|${chunk.adam_id}|${chunk.pricing_param}|${license.serialNumber}|${license.clientUserId}\n`,
      });
    }
  }
  licenses.sort((a, b) => a.seq - b.seq);
  for (const license of licenses) hash.update(license.line);
  const token = (
    await sql<{ last_sync_date_time: string }>`
      select last_sync_date_time from vpp_tokens where id = ${tokenId}`.execute(db)
  ).rows[0];
  return {
    ...pointer,
    assignment_count: Number(pointer.assignment_count),
    rows: licenses.length,
    digest: hash.digest('hex'),
    lastSyncDateTime: token?.last_sync_date_time,
  };
}

async function stagedRowsOfRunningJob(db: StorageEngine['db'], tokenId: string): Promise<number> {
  const job = (
    await sql<{ run_id: string | null }>`select run_id from sync_jobs where token_id = ${tokenId}`.execute(db)
  ).rows[0];
  if (!job?.run_id) return 0;
  const row = (
    await sql<{ n: number | string }>`
      select coalesce(sum(l.holder_count), 0) as n from license_assignment_chunks l
      join license_runs r on r.run_key = l.run_key where r.run_id = ${job.run_id}`.execute(db)
  ).rows[0];
  return Number(row?.n ?? 0);
}

describe.each(storageEngines)('SIGKILL in the middle of a large sync on %s', (engine: StorageEngineKind) => {
  it('keeps the previous snapshot intact and recovers the sync after a restart', {
    timeout: 120_000,
  }, async () => {
    // Each engine's run is a new installation: forget the previous run's mdmInfo claims.
    sim.faults.setMdmInfo('big', null);
    sim.faults.setMdmInfo('other', null);
    const databaseUrl = await testDatabaseUrl(engine, `sqlite:${join(dir, `vppd-${engine}.db`)}`);
    const first = await serve(databaseUrl);
    // This process reads what the child writes (after the child migrated the database).
    const reader = createStorageEngine(parseDatabaseUrl(databaseUrl));
    readers.push(reader);
    const db = reader.db;
    const big = await api(first, 'POST', '', { token: sim.tokenFor('big'), displayName: 'Big' });
    const other = await api(first, 'POST', '', { token: sim.tokenFor('other'), displayName: 'Other' });
    expect(big.status).toBe(201);
    expect(big.body.lastSyncStatus).toBe('inProgress');
    const bigId = big.body.id as string;
    const otherId = other.body.id as string;
    await waitForStatus(first, bigId, (s) => s === 'completed');
    await waitForStatus(first, otherId, (s) => s === 'completed');
    const before = await snapshotOf(db, bigId);
    const otherBefore = await snapshotOf(db, otherId);
    // 30,000 seeded; the engine that ran first changed the data once more.
    const seeded = sim.locations.find((l) => l.id === 'big')?.assignments;
    expect(seeded).toBeGreaterThanOrEqual(30_000);
    expect(before?.rows).toBe(seeded);
    expect(before?.assignment_count).toBe(seeded);

    // New data at Apple, and a slow Apple so the next sync takes seconds.
    await fetch(`${sim.adminUrl}/locations/big/change-data`, { method: 'POST' });
    sim.faults.latency('big', 40);
    expect((await api(first, 'POST', `/${bigId}/syncLicenses`)).body.lastSyncStatus).toBe('inProgress');

    // While the sync stages rows, readers keep seeing the previous snapshot, whole.
    let samples = 0;
    while ((await stagedRowsOfRunningJob(db, bigId)) < 3000) {
      expect(await snapshotOf(db, bigId)).toEqual(before);
      samples++;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(samples).toBeGreaterThan(0);
    expect(await first.stop('SIGKILL')).toBeNull();
    expect(first.child.signalCode).toBe('SIGKILL');

    // Dead mid-sync: the file still holds the previous snapshot; the other token is untouched.
    expect(await snapshotOf(db, bigId)).toEqual(before);
    expect(await snapshotOf(db, otherId)).toEqual(otherBefore);

    sim.faults.latency('big', 0);
    const second = await serve(databaseUrl);
    const after = await waitForStatus(second, bigId, (s) => s !== 'inProgress');
    expect(after.lastSyncStatus).toBe('completed');
    expect(after.state).toBe('valid');

    const now = await snapshotOf(db, bigId);
    const location = sim.locations.find((l) => l.id === 'big');
    expect(now?.version_id).toBe(location?.versionId);
    expect(now?.version_id).not.toBe(before?.version_id);
    expect(now?.rows).toBe(location?.assignments);
    expect(now?.digest).not.toBe(before?.digest);
    expect(Date.parse(String(after.lastSyncDateTime))).toBeGreaterThan(
      Date.parse(String(before?.lastSyncDateTime)),
    );
    expect(await snapshotOf(db, otherId)).toEqual(otherBefore);

    // History: the killed attempt is recorded as interrupted, the takeover as completed; the rows
    // the dead process staged are deleted.
    const { rows: runs } = await sql<{ outcome: string; attempt: number }>`
      select outcome, attempt from sync_runs where token_id = ${bigId} order by started_at, attempt`.execute(
      db,
    );
    expect(runs.map((r) => [r.outcome, Number(r.attempt)])).toEqual([
      ['completed', 1],
      ['interrupted', 1],
      ['completed', 2],
    ]);
    const orphan = await sql<{ n: number | string }>`
      select count(*) as n from license_assignment_chunks l join license_runs r on r.run_key = l.run_key
      where r.run_id not in (select run_id from license_snapshots)`.execute(db);
    expect(Number(orphan.rows[0]?.n)).toBe(0);
    expect(await second.stop('SIGTERM')).toBe(0);
  });
});
