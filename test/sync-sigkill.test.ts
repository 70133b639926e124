import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { decodeChunk } from '../src/storage/assignment-chunks.js';
import { mintToken, roles, testJwtSecret } from './helpers/jwt.js';
import { cleanEnv, type ServeProcess, startServeProcess } from './helpers/serve-process.js';

// docs/architecture.md invariants 2 and 4 with a real crash: `vppd serve` is killed with SIGKILL in
// the middle of a large sync. The previous snapshot must stay intact throughout (checked in the database file
// by this process while the child writes), and after a restart the token must end completed or
// failed — never stuck inProgress — with nothing else lost.

const dir = mkdtempSync(join(tmpdir(), 'vppd-sigkill-'));
const dbFile = join(dir, 'vppd.db');
const running: ServeProcess[] = [];
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
  await sim.close();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(): Promise<ServeProcess> {
  const env = cleanEnv({
    VPPD_ENCRYPTION_KEY: Buffer.alloc(32, 9).toString('base64'),
    VPPD_JWT_SECRET: testJwtSecret,
    VPPD_LOG_LEVEL: 'warn',
    // Short leases so the restarted process takes the dead one's sync over within seconds.
    VPPD_SYNC_LEASE: '2s',
  });
  const p = await startServeProcess(
    ['--port', '0', '--database', `sqlite:${dbFile}`, '--apple-url', sim.baseUrl],
    { env, cwd: dir },
  );
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

/** What the database file says about a token's current snapshot, read by this (separate) process. */
function snapshotOf(tokenId: string) {
  const db = new Database(dbFile, { readonly: true, timeout: 5000 });
  try {
    const pointer = db
      .prepare('select run_id, version_id, assignment_count from license_snapshots where token_id = ?')
      .get(tokenId) as { run_id: string; version_id: string; assignment_count: number } | undefined;
    if (!pointer) return undefined;
    const hash = createHash('sha256');
    const licenses: { seq: number; line: string }[] = [];
    for (const chunk of db
      .prepare(
        'select l.adam_id, l.pricing_param, l.seqs, l.holders from license_assignment_chunks l join license_runs r on r.run_key = l.run_key where r.run_id = ?',
      )
      .iterate(pointer.run_id) as Iterable<{
      adam_id: string;
      pricing_param: string;
      seqs: string;
      holders: string;
    }>) {
      for (const license of decodeChunk(chunk)) {
        licenses.push({
          seq: license.seq,
          line: `${license.seq}|${chunk.adam_id}|${chunk.pricing_param}|${license.serialNumber}|${license.clientUserId}\n`,
        });
      }
    }
    licenses.sort((a, b) => a.seq - b.seq);
    for (const license of licenses) hash.update(license.line);
    const rows = licenses.length;
    const token = db
      .prepare('select last_sync_status, last_sync_date_time from vpp_tokens where id = ?')
      .get(tokenId) as { last_sync_status: number; last_sync_date_time: string };
    return { ...pointer, rows, digest: hash.digest('hex'), lastSyncDateTime: token.last_sync_date_time };
  } finally {
    db.close();
  }
}

function stagedRowsOfRunningJob(tokenId: string): number {
  const db = new Database(dbFile, { readonly: true, timeout: 5000 });
  try {
    const job = db.prepare('select run_id from sync_jobs where token_id = ?').get(tokenId) as
      | { run_id: string | null }
      | undefined;
    if (!job?.run_id) return 0;
    const row = db
      .prepare(
        'select coalesce(sum(l.holder_count), 0) as n from license_assignment_chunks l join license_runs r on r.run_key = l.run_key where r.run_id = ?',
      )
      .get(job.run_id) as {
      n: number;
    };
    return row.n;
  } finally {
    db.close();
  }
}

describe('SIGKILL in the middle of a large sync', () => {
  it('keeps the previous snapshot intact and recovers the sync after a restart', {
    timeout: 120_000,
  }, async () => {
    const first = await serve();
    const big = await api(first, 'POST', '', { token: sim.tokenFor('big'), displayName: 'Big' });
    const other = await api(first, 'POST', '', { token: sim.tokenFor('other'), displayName: 'Other' });
    expect(big.status).toBe(201);
    expect(big.body.lastSyncStatus).toBe('inProgress');
    const bigId = big.body.id as string;
    const otherId = other.body.id as string;
    await waitForStatus(first, bigId, (s) => s === 'completed');
    await waitForStatus(first, otherId, (s) => s === 'completed');
    const before = snapshotOf(bigId);
    const otherBefore = snapshotOf(otherId);
    expect(before?.rows).toBe(30_000);
    expect(before?.assignment_count).toBe(30_000);

    // New data at Apple, and a slow Apple so the next sync takes seconds.
    await fetch(`${sim.adminUrl}/locations/big/change-data`, { method: 'POST' });
    sim.faults.latency('big', 40);
    expect((await api(first, 'POST', `/${bigId}/syncLicenses`)).body.lastSyncStatus).toBe('inProgress');

    // While the sync stages rows, readers keep seeing the previous snapshot, whole.
    let samples = 0;
    while (stagedRowsOfRunningJob(bigId) < 3000) {
      expect(snapshotOf(bigId)).toEqual(before);
      samples++;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(samples).toBeGreaterThan(0);
    expect(await first.stop('SIGKILL')).toBeNull();
    expect(first.child.signalCode).toBe('SIGKILL');

    // Dead mid-sync: the file still holds the previous snapshot; the other token is untouched.
    expect(snapshotOf(bigId)).toEqual(before);
    expect(snapshotOf(otherId)).toEqual(otherBefore);

    sim.faults.latency('big', 0);
    const second = await serve();
    const after = await waitForStatus(second, bigId, (s) => s !== 'inProgress');
    expect(after.lastSyncStatus).toBe('completed');
    expect(after.state).toBe('valid');

    const now = snapshotOf(bigId);
    const location = sim.locations.find((l) => l.id === 'big');
    expect(now?.version_id).toBe(location?.versionId);
    expect(now?.version_id).not.toBe(before?.version_id);
    expect(now?.rows).toBe(location?.assignments);
    expect(now?.digest).not.toBe(before?.digest);
    expect(Date.parse(String(after.lastSyncDateTime))).toBeGreaterThan(
      Date.parse(String(before?.lastSyncDateTime)),
    );
    expect(snapshotOf(otherId)).toEqual(otherBefore);

    // History: the killed attempt is recorded as interrupted, the takeover as completed; the rows
    // the dead process staged are deleted.
    const db = new Database(dbFile, { readonly: true });
    try {
      const runs = db
        .prepare('select outcome, attempt, id from sync_runs where token_id = ? order by started_at, attempt')
        .all(bigId) as { outcome: string; attempt: number; id: string }[];
      expect(runs.map((r) => [r.outcome, r.attempt])).toEqual([
        ['completed', 1],
        ['interrupted', 1],
        ['completed', 2],
      ]);
      const orphan = db
        .prepare(
          'select count(*) as n from license_assignment_chunks l join license_runs r on r.run_key = l.run_key where r.run_id not in (select run_id from license_snapshots)',
        )
        .get() as { n: number };
      expect(orphan.n).toBe(0);
    } finally {
      db.close();
    }
    expect(await second.stop('SIGTERM')).toBe(0);
  });
});
