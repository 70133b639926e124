import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppleClient } from '../src/apple/apple-client.js';
import type { AppleAsset } from '../src/apple/apple-types.js';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import { testConfig } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import type { CliResult } from './helpers/run-cli.js';

// `vppd licenses …` and `vppd operations show` as real processes against a running vppd whose worker runs
// license operations with the simulator over real sockets (poll spacing shortened for the test).

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vppd-cli-licenses-'));
let sim: AppleSim;
let server: RunningServer;
let env: Record<string, string>;
let tokenId: string;
let apps: AppleAsset[];

/** Runs the CLI from source as a child process, with `input` on its stdin. */
function vppd(args: readonly string[], input?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', ...args],
      { cwd: root, env: { ...process.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
    child.stdin?.end(input ?? '');
  });
}

beforeAll(async () => {
  sim = await startAppleSim({
    seed: 'cli-licenses',
    rateLimit: false,
    locations: [
      {
        id: 'fleet',
        name: 'Fleet',
        orgName: 'Fleet Org',
        countryCode: 'US',
        assets: 40,
        assignments: 300,
        users: 40,
      },
    ],
  });
  server = await startServer(
    testConfig({ port: '0', appleUrl: sim.baseUrl, appleMetadataUrl: sim.metadataUrl }),
    {
      runSync: true,
      syncOnTokenWrite: true,
      sync: { pollMs: 50 },
      licenseOperations: { firstPollMs: 20, pollIntervalMs: 50, idleMs: 20 },
    },
  );
  const bearer = await mintToken({ tenantId: 'cli-tenant', roles: [roles.readWrite] });
  env = { VPPD_URL: server.url, VPPD_TOKEN: bearer };
  const created = await fetch(`${server.url}/beta/deviceAppManagement/vppTokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify({ token: sim.tokenFor('fleet') }),
  });
  tokenId = ((await created.json()) as { id: string }).id;
  // Wait (on the condition) until the first sync made the token valid.
  for (let i = 0; i < 400; i++) {
    const token = await server.context.tokens.get('cli-tenant', tokenId);
    if (token?.state === 'valid' && token.lastSyncStatus === 'completed') break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const truth = createAppleClient({ baseUrl: sim.baseUrl, rateLimiter: null });
  apps = [];
  for await (const page of truth.assets(sim.tokenFor('fleet'), { deviceAssignable: true })) {
    apps.push(...page.records.filter((a) => a.productType === 'App' && a.availableCount > 1000));
  }
  await truth.close();
});

afterAll(async () => {
  await server?.close();
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('vppd licenses / operations (processes against a running server)', () => {
  it('associates from a serials file and waits for completion; operations show tells the outcome', async () => {
    const app = apps[0]!;
    const file = join(dir, 'serials.txt');
    writeFileSync(file, '# exported from the MDM\nCLI-1\nCLI-2\n\nCLI-3\n');
    const result = await vppd([
      'licenses',
      'associate',
      tokenId,
      '--app',
      app.adamId,
      '--serials-file',
      file,
      '--wait',
      '--interval',
      '50',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const id = /^operation ([0-9a-f-]{36}): associate completed$/m.exec(result.stdout)?.[1];
    expect(id).toBeDefined();
    expect(result.stdout).toContain('requested 3, completed 3, failed 0');
    const show = await vppd(['operations', 'show', id!, '--json']);
    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ id, status: 'completed', completedCount: 3 });
    const list = await vppd(['licenses', 'list', tokenId, '--app', app.adamId, '--json']);
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({ adamId: app.adamId, used: app.assignedCount + 3 }),
    ]);
  });

  it('exits 1 with Apple’s failures when a disassociation partly fails', async () => {
    const app = apps[0]!;
    const result = await vppd([
      'licenses',
      'disassociate',
      tokenId,
      '--app',
      app.adamId,
      '--serial',
      'CLI-1,NOT-HELD',
      '--wait',
      '--interval',
      '50',
    ]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/disassociate partiallyFailed/);
    expect(result.stdout).toMatch(/failed: app \d+ NOT-HELD: 9610 License not found/);
  });

  it('reclaims with the keep-list on stdin: the dry run, then the real run', async () => {
    const app = apps[0]!;
    const dry = await vppd(
      ['licenses', 'reclaim', tokenId, '--keep', '-', '--app', app.adamId, '--dry-run'],
      'CLI-2\n',
    );
    expect(dry.code).toBe(0);
    const planned = /would release (\d+) of (\d+) licenses/.exec(dry.stdout);
    expect(Number(planned?.[2]) - Number(planned?.[1])).toBe(1);
    const real = await vppd(
      ['licenses', 'reclaim', tokenId, '--keep', '-', '--app', app.adamId, '--wait', '--interval', '50'],
      'CLI-2\n',
    );
    expect(real.stderr).toBe('');
    expect(real.code).toBe(0);
    expect(real.stdout).toContain(`releasing ${planned?.[1]} of ${planned?.[2]} licenses`);
    const list = await vppd(['licenses', 'list', tokenId, '--app', app.adamId, '--json']);
    expect(JSON.parse(list.stdout)[0].used).toBe(1);
    expect(JSON.parse(list.stdout)[0].holders).toEqual(['CLI-2']);
  });

  it('answers usage errors with exit 2 and server errors with one line and exit 1', async () => {
    // Independent processes: run them at once.
    const [both, noKeep, missing, bad, unknown] = await Promise.all([
      vppd(['licenses', 'associate', tokenId, '--app', '1', '--serial', 'A', '--user', 'B']),
      vppd(['licenses', 'reclaim', tokenId]),
      vppd(['licenses', 'associate', tokenId, '--app', '1', '--serials-file', join(dir, 'none.txt')]),
      vppd(['licenses', 'associate', tokenId, '--app', 'abc', '--serial', 'A']),
      vppd(['operations', 'show', 'nope']),
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr.trim()).toMatch(/exactly one of --serial/);
    expect(noKeep.code).toBe(2);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toMatch(/cannot read .*none\.txt: ENOENT/);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/400 .*numeric id/);
    expect(bad.stderr).not.toContain(env.VPPD_TOKEN);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/404/);
  });
});
