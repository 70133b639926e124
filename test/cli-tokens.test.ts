import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import { testConfig } from './helpers/graph-test-app.js';
import { mintToken, roles, testJwtSecret } from './helpers/jwt.js';
import { type CliResult, runVppd } from './helpers/run-cli.js';

// The `vppd tokens` CLI as a real process against a running vppd (started in-process on a free port,
// syncing with the Apple simulator over real sockets): every command, --json, `sync --wait` exit 0 on
// completed and 1 with the reason on failed, one-line errors and the exit codes (1 failure, 2 usage).

const dir = mkdtempSync(join(tmpdir(), 'vppd-cli-'));
let sim: AppleSim;
let server: RunningServer;
let env: Record<string, string>;
let readOnlyBearer: string;
const files = { small: join(dir, 'small.vpptoken'), expired: join(dir, 'expired.vpptoken') };

beforeAll(async () => {
  sim = await startAppleSim({ seed: 'cli-test', rateLimit: false });
  writeFileSync(files.small, sim.tokenFor('small'));
  writeFileSync(files.expired, sim.tokenFor('expired'));
  server = await startServer(
    testConfig({ port: '0', appleUrl: sim.baseUrl, appleMetadataUrl: sim.metadataUrl }),
    { runSync: true, syncOnTokenWrite: true, sync: { pollMs: 50 } },
  );
  // The bearer tokens come from the CLI itself.
  const [write, read] = await Promise.all([
    runVppd(['auth', 'token', '--tenant', 'cli-tenant'], { VPPD_JWT_SECRET: testJwtSecret }),
    runVppd(['auth', 'token', '--tenant', 'cli-tenant', '--role', 'read'], {
      VPPD_JWT_SECRET: testJwtSecret,
    }),
  ]);
  env = { VPPD_URL: server.url, VPPD_TOKEN: write.stdout.trim() };
  readOnlyBearer = read.stdout.trim();
});

afterAll(async () => {
  await server?.close();
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

const vppd = (args: string[], extra: Record<string, string> = {}) => runVppd(args, { ...env, ...extra });

/** One line on stderr, no secrets. */
function expectOneLineError(result: CliResult, code: number, pattern: RegExp): void {
  expect(result.code).toBe(code);
  expect(result.stderr.trim()).toMatch(pattern);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).not.toContain(env.VPPD_TOKEN);
  expect(result.stderr).not.toContain(sim.tokenFor('small'));
}

describe('vppd tokens (process against a running server)', () => {
  let smallId = '';
  let expiredId = '';

  it('add uploads token files (table line and --json), and their first syncs run', async () => {
    const [small, expired] = await Promise.all([
      vppd(['tokens', 'add', files.small, '--name', 'Small school']),
      vppd(['tokens', 'add', files.expired, '--json']),
    ]);
    expect(small.code).toBe(0);
    const added = /^added ([0-9a-f-]{36}) \(Springfield Public Schools\): inProgress$/m.exec(small.stdout);
    expect(added).not.toBeNull();
    smallId = added?.[1] ?? '';
    expect(expired.code).toBe(0);
    const created = JSON.parse(expired.stdout) as Record<string, unknown>;
    expect(created).toMatchObject({ organizationName: 'Ogdenville County', state: 'expired' });
    expect(created).not.toHaveProperty('@odata.context');
    expiredId = String(created.id);
    expect(small.stdout + expired.stdout).not.toContain(sim.tokenFor('small'));
  });

  it('sync --wait exits 0 on completed, 1 with the recorded reason on failed', async () => {
    const [completed, failed, failedJson] = await Promise.all([
      vppd(['tokens', 'sync', smallId, '--wait']),
      vppd(['tokens', 'sync', expiredId, '--wait']),
      vppd(['tokens', 'sync', expiredId, '--wait', '--json']),
    ]);
    expect(completed.code, completed.stderr).toBe(0);
    expect(completed.stdout).toMatch(
      new RegExp(`^sync ${smallId}: completed \\(\\d+ pages, 640 records, [\\d.]+s\\)$`, 'm'),
    );
    expectOneLineError(
      failed,
      1,
      new RegExp(`^vppd: sync of ${expiredId} failed: expiredVppToken \\(expired\\): .*9621`),
    );
    expect(failedJson.code).toBe(1);
    expect(JSON.parse(failedJson.stdout)).toMatchObject({
      lastSyncStatus: 'failed',
      state: 'expired',
      error: { kind: 'expired', reason: 'expiredVppToken' },
    });
  });

  it('list and show: tables for humans, --json for scripts', async () => {
    const [table, json, show, showJson] = await Promise.all([
      vppd(['tokens', 'list']),
      vppd(['tokens', 'list', '--json']),
      vppd(['tokens', 'show', smallId]),
      vppd(['tokens', 'show', expiredId, '--json']),
    ]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+NAME\s+STATUS\s+STATE\s+LAST SYNC\s+EXPIRES$/);
    expect(lines).toHaveLength(3);
    expect(table.stdout).toMatch(
      new RegExp(`^${smallId}\\s+Small school\\s+completed\\s+valid\\s+\\d{4}-`, 'm'),
    );
    expect(table.stdout).toMatch(
      new RegExp(`^${expiredId}\\s+Ogdenville County\\s+failed\\s+expired\\s+never`, 'm'),
    );
    const listed = JSON.parse(json.stdout) as { id: string }[];
    expect(listed.map((t) => t.id).sort()).toEqual([smallId, expiredId].sort());
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^status\s+completed$/m);
    expect(show.stdout).toMatch(/^location\s+Springfield Elementary$/m);
    expect(JSON.parse(showJson.stdout)).toMatchObject({ id: expiredId, lastSyncStatus: 'failed' });
  });

  it('renew, sync without --wait, delete; then the token is gone (404 in one line, exit 1)', async () => {
    const renew = await vppd(['tokens', 'renew', smallId, files.small]);
    expect(renew.code, renew.stderr).toBe(0);
    expect(renew.stdout).toMatch(
      new RegExp(`^renewed ${smallId}: expires \\d{4}-\\d{2}-\\d{2}, inProgress$`, 'm'),
    );
    const sync = await vppd(['tokens', 'sync', smallId, '--json']);
    expect(sync.code).toBe(0);
    expect(JSON.parse(sync.stdout)).toMatchObject({ id: smallId, lastSyncStatus: 'inProgress' });
    const deleted = await vppd(['tokens', 'delete', expiredId]);
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toBe(`deleted ${expiredId}\n`);
    const gone = await vppd(['tokens', 'show', expiredId]);
    expect(gone.stdout).toBe('');
    expectOneLineError(
      gone,
      1,
      new RegExp(`^vppd: 404 ResourceNotFound: The vppToken with id '${expiredId}' was not found\\.$`),
    );
  });

  it('failures: API errors exit 1, usage errors exit 2, each one line', async () => {
    // A port nothing listens on (taken and released again).
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const results = await Promise.all([
      vppd(['tokens', 'delete', smallId], { VPPD_TOKEN: readOnlyBearer }),
      vppd(['tokens', 'list'], { VPPD_TOKEN: 'not-a-jwt' }),
      vppd(['tokens', 'list', '--url', `http://127.0.0.1:${closedPort}`]),
      vppd(['tokens', 'list'], { VPPD_TOKEN: '' }),
      vppd(['tokens', 'show']),
      vppd(['tokens', 'add', join(dir, 'missing.vpptoken')]),
      vppd(['tokens', 'sync', smallId, '--wait', '--timeout', 'soon']),
    ]);
    const [forbidden, unauthenticated, unreachable, noToken, noId, noFile, badTimeout] = results;
    expectOneLineError(forbidden as CliResult, 1, /^vppd: 403 Forbidden: Missing permission/);
    expectOneLineError(unauthenticated as CliResult, 1, /^vppd: 401 \w+: /);
    expectOneLineError(
      unreachable as CliResult,
      1,
      new RegExp(`^vppd: cannot reach http://127\\.0\\.0\\.1:${closedPort}: ECONNREFUSED$`),
    );
    expectOneLineError(noToken as CliResult, 2, /^vppd: no bearer token: pass --token or set VPPD_TOKEN/);
    expectOneLineError(noId as CliResult, 2, /missing required argument 'id'/);
    expectOneLineError(noFile as CliResult, 2, /^vppd: cannot read token file .*missing\.vpptoken: ENOENT$/);
    expectOneLineError(badTimeout as CliResult, 2, /^vppd: --timeout: must be a duration/);
    // vppd's progress endpoint has the Graph routes' auth and tenant scoping.
    const progressUrl = `${server.url}/vppd/v1/tokens/${smallId}/sync`;
    const otherTenant = await mintToken({ tenantId: 'another-tenant', roles: [roles.read] });
    expect((await fetch(progressUrl)).status).toBe(401);
    expect((await fetch(progressUrl, { headers: { authorization: `Bearer ${otherTenant}` } })).status).toBe(
      404,
    );
    const own = await fetch(progressUrl, { headers: { authorization: `Bearer ${readOnlyBearer}` } });
    expect(own.status).toBe(200);
    expect(await own.json()).toMatchObject({ tokenId: smallId, lastRun: { outcome: expect.any(String) } });
    // The token still exists: the read-only delete changed nothing.
    const still = await vppd(['tokens', 'show', smallId, '--json']);
    expect(JSON.parse(still.stdout)).toMatchObject({ id: smallId });
  });
});
