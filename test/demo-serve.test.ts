import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { demoTenantId } from '../src/config.js';
import { demoTokens } from '../src/demo/demo-scenario.js';
import { vppTokenState, vppTokenSyncStatus } from '../src/domain/enums.js';
import { cleanEnv, type ServeProcess, startServeProcess } from './helpers/serve-process.js';

// `vppd serve --demo` as a real process in a fresh working directory (so ./data is a temp dir): it
// starts the Apple simulator in-process, uploads the demo tenant's tokens and, through real syncs,
// reaches every lastSyncStatus and every token state at once; SIGTERM stops it with exit 0 (the large
// sync still running is given back); a restart keeps the data and duplicates nothing.

const cwd = mkdtempSync(join(tmpdir(), 'vppd-demo-'));
const running: ServeProcess[] = [];

afterAll(async () => {
  for (const p of running) await p.stop('SIGKILL');
  rmSync(cwd, { recursive: true, force: true });
});

interface ListedToken {
  readonly id: string;
  readonly displayName: string;
  readonly lastSyncStatus: string;
  readonly state: string;
}

async function serveDemo(): Promise<{ process: ServeProcess; bearer: string }> {
  // Env only (no --port flag): VPPD_PORT=0 picks a free port; a short grace keeps the test fast.
  const p = await startServeProcess(['--demo'], {
    env: cleanEnv({ VPPD_PORT: '0', VPPD_LOG_LEVEL: 'silent', VPPD_SHUTDOWN_GRACE: '1s' }),
    cwd,
  });
  running.push(p);
  const bearer = /^(eyJ[\w-]+\.[\w-]+\.[\w-]+)$/m.exec(p.stdout())?.[1];
  expect(bearer).toBeDefined();
  return { process: p, bearer: bearer as string };
}

async function listTokens(url: string, bearer: string): Promise<ListedToken[]> {
  const response = await fetch(
    `${url}/beta/deviceAppManagement/vppTokens?$select=id,displayName,lastSyncStatus,state`,
    { headers: { authorization: `Bearer ${bearer}` } },
  );
  expect(response.status).toBe(200);
  return ((await response.json()) as { value: ListedToken[] }).value;
}

/** Polls until every status and every state is present at the same moment (bounded). */
function untilEveryStatusAndState(url: string, bearer: string, limitMs: number): Promise<ListedToken[]> {
  return vi.waitFor(
    async () => {
      const tokens = await listTokens(url, bearer);
      const statuses = new Set(tokens.map((t) => t.lastSyncStatus));
      const states = new Set(tokens.map((t) => t.state));
      // Settled: only the large (slow) token is still syncing.
      const complete =
        vppTokenSyncStatus.names.every((s) => statuses.has(s)) &&
        vppTokenState.names.every((s) => states.has(s)) &&
        tokens.filter((t) => t.lastSyncStatus === 'inProgress').length === 1;
      if (!complete) {
        throw new Error(
          `demo state not reached: ${JSON.stringify(tokens.map((t) => [t.lastSyncStatus, t.state]))}`,
        );
      }
      return tokens;
    },
    { timeout: limitMs, interval: 200 },
  );
}

describe('vppd serve --demo (process)', () => {
  let firstIds: string[] = [];

  it('reaches every lastSyncStatus and every state through real syncs, prints what to use, stops with 0', async () => {
    const { process: demo, bearer } = await serveDemo();
    const out = demo.stdout();
    expect(out).toContain(`demo: API base URL ${demo.url}/beta`);
    expect(out).toContain(`demo: $metadata ${demo.url}/beta/$metadata`);
    expect(out).toMatch(
      /^demo: curl -s -H "Authorization: Bearer eyJ[^"]+" http:\/\/127\.0\.0\.1:\d+\/beta\/deviceAppManagement\/vppTokens$/m,
    );
    expect(out).toMatch(/^demo: Apple simulator http:\/\/127\.0\.0\.1:\d+\/mdm\/v2$/m);
    expect(out).toContain(`demo: uploaded ${demoTokens.length} demo tokens into tenant ${demoTenantId}`);
    expect(out).toContain(`demo: dashboard ${demo.url}/ (opens signed in to the demo tenant)`);
    const page = await fetch(`${demo.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('/dashboard/app.js');

    const tokens = await untilEveryStatusAndState(demo.url, bearer, 60_000);
    expect(tokens).toHaveLength(demoTokens.length);
    const byName = new Map(tokens.map((t) => [t.displayName, t]));
    const show = (locationId: string, index = 0) => {
      const demoToken = demoTokens.find((d) => d.locationId === locationId && d.index === index);
      const token = byName.get(demoToken?.displayName ?? '');
      return [token?.lastSyncStatus, token?.state];
    };
    expect(show('small')).toEqual(['completed', 'valid']);
    expect(show('large')[0]).toBe('inProgress');
    expect(show('expired')).toEqual(['failed', 'expired']);
    expect(show('revoked')).toEqual(['failed', 'invalid']);
    expect(show('external-mdm')).toEqual(['failed', 'assignedToExternalMDM']);
    expect([show('duplicate', 0)[1], show('duplicate', 1)[1]].sort()).toEqual([
      'duplicateLocationId',
      'valid',
    ]);
    expect(show('first-sync-later')).toEqual(['none', 'unknown']);

    // The large sync's live progress comes from the database, through vppd's own endpoint.
    const large = tokens.find((t) => t.lastSyncStatus === 'inProgress');
    const progress = await fetch(`${demo.url}/vppd/v1/tokens/${large?.id}/sync`, {
      headers: { authorization: `Bearer ${bearer}` },
    });
    expect(progress.status).toBe(200);
    expect(await progress.json()).toMatchObject({
      lastSyncStatus: 'inProgress',
      job: expect.stringMatching(/^(queued|running)$/),
    });

    firstIds = tokens.map((t) => t.id).sort();
    expect(await demo.stop('SIGTERM')).toBe(0);
    // The large sync was still running: the 1 s grace ran out and it was given back to the queue.
    expect(demo.stdout()).toMatch(/vppd: stopping: no new requests; waiting up to 1s for \d+ running sync/);
    expect(demo.stdout()).toContain('given back to the queue');
    expect(demo.stdout()).toContain('vppd: stopped');
    expect(existsSync(join(cwd, 'data/vppd.db'))).toBe(true);
    expect(JSON.parse(readFileSync(join(cwd, 'data/demo-apple-sim.json'), 'utf8'))).toMatchObject({
      seed: 'vppd-demo',
    });
  }, 90_000);

  it('keeps the data on restart: the same tokens, nothing duplicated, stored sTokens still accepted', async () => {
    expect(firstIds).toHaveLength(demoTokens.length);
    const { process: demo, bearer } = await serveDemo();
    expect(demo.stdout()).toContain(`kept its ${demoTokens.length} demo tokens`);
    const tokens = await listTokens(demo.url, bearer);
    expect(tokens.map((t) => t.id).sort()).toEqual(firstIds);
    // The large token syncs again on every start, so inProgress is visible after a restart too.
    expect(tokens.filter((t) => t.lastSyncStatus === 'inProgress')).toHaveLength(1);

    // The restarted simulator (same seed, same expiry anchor) still accepts the stored healthy token.
    const healthy = tokens.find((t) => t.displayName === demoTokens[0]?.displayName);
    const sync = await fetch(`${demo.url}/beta/deviceAppManagement/vppTokens/${healthy?.id}/syncLicenses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}` },
    });
    expect(sync.status).toBe(200);
    // Waits while the sync runs; any other status ends the wait (and must be completed).
    const status = await vi.waitFor(
      async () => {
        const response = await fetch(`${demo.url}/vppd/v1/tokens/${healthy?.id}/sync`, {
          headers: { authorization: `Bearer ${bearer}` },
        });
        const { lastSyncStatus } = (await response.json()) as { lastSyncStatus: string };
        if (lastSyncStatus === 'inProgress') throw new Error('the sync is still inProgress');
        return lastSyncStatus;
      },
      { timeout: 20_000, interval: 100 },
    );
    expect(status).toBe('completed');
    expect(await demo.stop('SIGINT')).toBe(0);
  }, 60_000);
});
