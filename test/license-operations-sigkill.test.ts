import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { mintToken, roles, testJwtSecret } from './helpers/jwt.js';
import { cleanEnv, type ServeProcess, startServeProcess } from './helpers/serve-process.js';

// A license operation survives its worker: `vppd serve` is killed with SIGKILL while it is sending an
// operation's batches to Apple; a second `vppd serve` on the same database takes the operation over when the
// lease expires and finishes it. Batches whose eventId was recorded are polled, not sent again, and Apple ends
// up with exactly the licenses asked for.

const dir = mkdtempSync(join(tmpdir(), 'vppd-licops-kill-'));
const dbFile = join(dir, 'vppd.db');
const running: ServeProcess[] = [];
const tenant = 'tenant-licops-kill';
let sim: AppleSim;
let bearer: string;

beforeAll(async () => {
  sim = await startAppleSim({
    seed: 'licops-kill',
    rateLimit: false,
    locations: [
      {
        id: 'fleet',
        name: 'Fleet',
        orgName: 'Kill Org',
        countryCode: 'US',
        assets: 30,
        assignments: 200,
        users: 30,
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
    VPPD_SYNC_LEASE: '2s',
  });
  const p = await startServeProcess(
    ['--port', '0', '--database', `sqlite:${dbFile}`, '--apple-url', sim.baseUrl],
    {
      env,
      cwd: dir,
    },
  );
  running.push(p);
  return p;
}

async function call(p: ServeProcess, method: string, path: string, body?: unknown) {
  const response = await fetch(`${p.url}${path}`, {
    method,
    headers: { authorization: bearer, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 60_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Batches of the operation with a recorded eventId, read from the database file by this process. */
function recordedBatches(operationId: string): number {
  const db = new Database(dbFile, { readonly: true, timeout: 5000 });
  try {
    const row = db
      .prepare(
        'select count(*) as n from license_operation_batches where operation_id = ? and event_id is not null',
      )
      .get(operationId) as { n: number };
    return row.n;
  } finally {
    db.close();
  }
}

describe('license operations across a SIGKILL', () => {
  it('another process finishes the operation; no recorded batch is sent twice', async () => {
    const first = await serve();
    const created = await call(first, 'POST', '/beta/deviceAppManagement/vppTokens', {
      token: sim.tokenFor('fleet'),
    });
    expect(created.status).toBe(201);
    const tokenId = created.body.id as string;
    await until('the first sync', async () => {
      const token = await call(first, 'GET', `/beta/deviceAppManagement/vppTokens/${tokenId}`);
      return token.body.state === 'valid' && token.body.lastSyncStatus === 'completed' ? true : undefined;
    });
    const assets: {
      adamId: string;
      pricingParam: string;
      availableCount: number;
      assignedCount: number;
      deviceAssignable: boolean;
      productType: string;
    }[] = (
      (await (
        await fetch(`${sim.baseUrl}/assets`, {
          headers: { authorization: `Bearer ${sim.tokenFor('fleet')}` },
        })
      ).json()) as { assets: never[] }
    ).assets;
    const app = assets.find(
      (a) => a.deviceAssignable && a.productType === 'App' && a.availableCount > 10_000,
    )!;
    // Every Apple call of the location now takes 1.5 s: the first process will be inside a call when killed.
    sim.faults.latency('fleet', 1500);
    sim.resetRequestCounts();
    const serials = Array.from({ length: 2500 }, (_, i) => `K${String(i).padStart(5, '0')}`);
    const posted = await call(first, 'POST', `/vppd/v1/tokens/${tokenId}/associations`, {
      assets: [{ adamId: app.adamId, pricingParam: app.pricingParam }],
      serialNumbers: serials,
    });
    expect(posted.status).toBe(202);
    const operationId = posted.body.id as string;
    await until('the first batch recorded', () => (recordedBatches(operationId) >= 1 ? true : undefined));
    expect(await first.stop('SIGKILL')).toBeNull();
    expect(recordedBatches(operationId)).toBe(1);
    sim.faults.latency('fleet', 0);

    const second = await serve();
    const done = await until('the operation to end', async () => {
      const op = await call(second, 'GET', `/vppd/v1/operations/${operationId}`);
      return ['completed', 'failed', 'partiallyFailed'].includes(op.body.status as string)
        ? op.body
        : undefined;
    });
    expect(done).toMatchObject({
      status: 'completed',
      requestedCount: 2500,
      completedCount: 2500,
      failedCount: 0,
    });
    const counts = sim.requestCounts().fleet ?? {};
    // Batch 1 was recorded before the kill: never sent again. The killed call (batch 2, in flight) reached Apple
    // once and is sent again by the second process; batch 3 once: 4 calls at most, 3 at least.
    expect(counts['POST assets/associate']).toBeGreaterThanOrEqual(3);
    expect(counts['POST assets/associate']).toBeLessThanOrEqual(4);
    // Apple holds exactly the licenses asked for, and Graph's count follows.
    const after = (
      (await (
        await fetch(`${sim.baseUrl}/assets?adamId=${app.adamId}&pricingParam=${app.pricingParam}`, {
          headers: { authorization: `Bearer ${sim.tokenFor('fleet')}` },
        })
      ).json()) as { assets: { assignedCount: number }[] }
    ).assets[0]!;
    expect(after.assignedCount).toBe(app.assignedCount + 2500);
    const graph = await call(
      second,
      'GET',
      `/beta/deviceAppManagement/mobileApps?$filter=vppTokenId eq '${tokenId}'&$top=999`,
    );
    const graphApp = (graph.body.value as { appStoreUrl: string; usedLicenseCount: number }[]).find((a) =>
      a.appStoreUrl.endsWith(`id${app.adamId}`),
    );
    expect(graphApp?.usedLicenseCount).toBe(app.assignedCount + 2500);
  }, 120_000);
});
