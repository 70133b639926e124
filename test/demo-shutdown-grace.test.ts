import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { mintToken, roles, testJwtSecret } from './helpers/jwt.js';
import { cleanEnv, runUntilExit, type ServeProcess, startServeProcess } from './helpers/serve-process.js';

// Shutdown at process level: SIGTERM while a sync runs stops accepting connections, lets the sync
// finish within VPPD_SHUTDOWN_GRACE (the finished run is committed: completed after a restart) and
// exits 0; a malformed grace stops start-up with one line naming the setting.

const dir = mkdtempSync(join(tmpdir(), 'vppd-grace-'));
const running: ServeProcess[] = [];
let sim: AppleSim;

beforeAll(async () => {
  // Small pages and 400 ms per Apple call: the sync of `small` takes a couple of seconds.
  sim = await startAppleSim({ seed: 'grace', rateLimit: false, pageSize: 50 });
  sim.faults.latency('small', 400);
});

afterAll(async () => {
  for (const p of running) await p.stop('SIGKILL');
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

function env(grace: string): NodeJS.ProcessEnv {
  return cleanEnv({
    VPPD_PORT: '0',
    VPPD_DATABASE_URL: `sqlite:${join(dir, 'grace.db')}`,
    VPPD_APPLE_URL: sim.baseUrl,
    VPPD_APPLE_METADATA_URL: sim.metadataUrl,
    VPPD_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
    VPPD_JWT_SECRET: testJwtSecret,
    VPPD_LOG_LEVEL: 'silent',
    VPPD_SHUTDOWN_GRACE: grace,
  });
}

async function progressOf(url: string, bearer: string, id: string) {
  const response = await fetch(`${url}/vppd/v1/tokens/${id}/sync`, { headers: { authorization: bearer } });
  expect(response.status).toBe(200);
  return (await response.json()) as {
    lastSyncStatus: string;
    job: string;
    phase: string | null;
    pages: number | null;
    records: number | null;
    lastRun: { outcome: string; records: number | null } | null;
  };
}

describe('shutdown grace (process)', () => {
  it('SIGTERM lets a running sync finish within the grace, then exits 0', async () => {
    const bearer = `Bearer ${await mintToken({ tenantId: 'tenant-grace', roles: [roles.readWrite] })}`;
    const first = await startServeProcess([], { env: env('20s'), cwd: dir });
    running.push(first);
    const created = await fetch(`${first.url}/beta/deviceAppManagement/vppTokens`, {
      method: 'POST',
      headers: { authorization: bearer, 'content-type': 'application/json' },
      body: JSON.stringify({ token: sim.tokenFor('small') }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    // Wait until the worker has written live progress (pages fetched), so SIGTERM arrives mid-run.
    const deadline = Date.now() + 10_000;
    let progress = await progressOf(first.url, bearer, id);
    while (
      !(progress.job === 'running' && (progress.pages ?? 0) > 0) &&
      progress.lastSyncStatus === 'inProgress' &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      progress = await progressOf(first.url, bearer, id);
    }
    expect(progress).toMatchObject({ lastSyncStatus: 'inProgress', job: 'running' });
    expect(progress.phase).toMatch(/^(assets|assignments|metadata)$/);
    expect(progress.records).toBeGreaterThan(0);

    expect(await first.stop('SIGTERM')).toBe(0);
    expect(first.stdout()).toContain(
      'vppd: stopping: no new requests; waiting up to 20s for 1 running sync(s)',
    );
    expect(first.stdout()).not.toContain('given back');
    expect(first.stdout()).toContain('vppd: stopped');

    // The run finished and was committed before the process exited.
    const second = await startServeProcess([], { env: env('0s'), cwd: dir });
    running.push(second);
    const after = await progressOf(second.url, bearer, id);
    expect(after).toMatchObject({
      lastSyncStatus: 'completed',
      job: 'idle',
      lastRun: { outcome: 'completed', records: 640 },
    });
    expect(await second.stop('SIGTERM')).toBe(0);
  }, 60_000);

  it('a malformed VPPD_SHUTDOWN_GRACE stops start-up with one line naming it', async () => {
    const result = await runUntilExit(['serve'], { env: env('forever'), cwd: dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^vppd: VPPD_SHUTDOWN_GRACE: must be a duration up to 1h/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});
