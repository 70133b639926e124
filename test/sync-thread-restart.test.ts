import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppleSim } from '../src/apple-sim/apple-sim.js';
import type { RunningServer } from '../src/server/start-server.js';
import { crashSyncThreadForTests, startSyncThread } from '../src/sync/sync-thread.js';
import type { SyncRunner } from '../src/sync/sync-worker.js';
import {
  type ApiCall,
  apiCaller,
  capturingLogger,
  readWriteBearer,
  type SyncThreadServing,
  sqliteSyncThreadData,
  startSyncThreadServing,
  until,
} from './helpers/serving.js';
import { storageEngines } from './helpers/storage-engines.js';
import { tokensPath } from './helpers/sync-harness.js';

// A sync thread that dies is replaced: a running vppd (VPPD_SYNC_THREADS=1, real sockets, a real Apple
// simulator, a SQLite file or a PostgreSQL database) whose sync thread is terminated mid-sync starts a
// new one after a short back-off; the dead thread's run is taken over once its lease expires, a sync
// requested afterwards completes, `/metrics` counts the restarts, and `/healthz` turns 503 while the
// thread keeps dying and 200 again once one stays up. The tests wait for what they can observe.

const leaseMs = 1_500;
const stableMs = 5_000;

describe.each(storageEngines)('a sync thread that dies (%s)', (engine) => {
  let sim: AppleSim;
  let server: RunningServer;
  let serving: SyncThreadServing;
  let auth: string;
  /** The token of location `small`, synced by the first test. */
  let smallId = '';
  const lines: string[] = [];

  const api: ApiCall = (method, path, body) => apiCaller(() => server.url, auth)(method, path, body);
  const upload = async (locationId: string) => {
    const created = await api('POST', tokensPath, { token: sim.tokenFor(locationId) });
    expect(created.status).toBe(201);
    return String(created.body.id);
  };
  const token = async (id: string) => (await api('GET', `${tokensPath}/${id}`)).body;
  const logged = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  const runner = (): SyncRunner => {
    const current = server.context.sync.worker;
    if (current?.health === undefined) throw new Error('no sync thread runner');
    return current;
  };
  const health = () => {
    const report = runner().health?.();
    if (report === undefined) throw new Error('no health report');
    return report;
  };
  const restartsInMetrics = async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('vppd_sync_thread_restarts_total '));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  const healthz = async () => {
    const response = await fetch(`${server.url}/healthz`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    serving = await startSyncThreadServing(engine, `sync-thread-restart-${engine}`, lines, {
      sync: { pollMs: 50, leaseMs, heartbeatMs: 200 },
      syncThreadRestart: { firstDelayMs: 50, maxDelayMs: 200, stableMs, failingAfter: 3 },
    });
    ({ sim, server } = serving);
    auth = await readWriteBearer();
  }, 60_000);

  afterAll(async () => {
    await serving?.close();
  });

  it('replaces a thread killed mid-sync; its run is taken over after the lease, and a later sync completes', async () => {
    expect(health()).toEqual({ up: true, restarts: 0, deathsInARow: 0, failing: false });
    expect(await restartsInMetrics()).toBe(0);

    // A sync in flight in the thread when it dies.
    sim.faults.latency('slow', 300);
    const slow = await upload('slow');
    await until('the sync to run in the thread', async () => (runner().active === 1 ? true : undefined));
    const ownerBefore = await server.context.db
      .selectFrom('sync_jobs')
      .select('lease_owner')
      .where('token_id', '=', slow)
      .executeTakeFirstOrThrow();
    expect(ownerBefore.lease_owner).not.toBeNull();

    expect(await crashSyncThreadForTests(runner())).toBe(true);
    // Gone at once: nothing runs here until the replacement is up.
    expect(runner().active).toBe(0);
    const stopped = await until('the log line of the dead thread', async () =>
      logged().find(
        (l) => typeof l.msg === 'string' && l.msg.startsWith('the sync thread stopped unexpectedly'),
      ),
    );
    expect(stopped).toMatchObject({ level: 50, exitCode: 1, deathsInARow: 1, restartInMs: 50 });
    // Not given back: the dead thread's lease stays until it expires (nothing knows how far it got).
    const ownerAfter = await server.context.db
      .selectFrom('sync_jobs')
      .select('lease_owner')
      .where('token_id', '=', slow)
      .executeTakeFirstOrThrow();
    expect(ownerAfter.lease_owner).toBe(ownerBefore.lease_owner);
    expect((await token(slow)).lastSyncStatus).toBe('inProgress');

    await until('the replacement thread', async () => (health().up ? true : undefined));
    expect(health()).toMatchObject({ up: true, restarts: 1, failing: false });
    expect(await restartsInMetrics()).toBe(1);
    expect(logged().some((l) => l.msg === 'a new sync thread replaced the one that stopped')).toBe(true);

    // The new thread takes the run over once the dead thread's lease expired, and completes it.
    sim.faults.clear('slow');
    await until('the taken-over sync to complete', async () => {
      const body = await token(slow);
      return body.lastSyncStatus === 'completed' ? body : undefined;
    });
    const history = await api('GET', `/vppd/v1/tokens/${slow}/syncs?top=5`);
    expect((history.body.value as Record<string, unknown>[])[0]).toMatchObject({ outcome: 'completed' });

    // A sync requested after the restart runs in the new thread.
    const small = await upload('small');
    smallId = small;
    const first = await until('the first sync of another token', async () => {
      const body = await token(small);
      return body.lastSyncStatus === 'completed' ? String(body.lastSyncDateTime) : undefined;
    });
    const requested = await api('POST', `${tokensPath}/${small}/syncLicenses`);
    expect(requested.status).toBeLessThan(300);
    await until('the requested sync to complete', async () => {
      const body = await token(small);
      return body.lastSyncStatus === 'completed' && String(body.lastSyncDateTime) > first ? true : undefined;
    });

    // Whatever was logged, no sToken.
    const all = lines.join('\n');
    expect(all).not.toContain(sim.tokenFor('slow'));
    expect(all).not.toContain(sim.tokenFor('small'));
  }, 90_000);

  it('a thread that keeps dying turns /healthz to 503 until a replacement stays up', async () => {
    // Whatever the previous test left: a thread up long enough for the deaths in a row to be forgotten.
    await until('a stable thread', async () =>
      health().up && health().deathsInARow === 0 ? true : undefined,
    );
    expect(await healthz()).toEqual({ status: 200, body: { status: 'ok' } });
    const before = health().restarts;

    for (let death = 1; death <= 3; death++) {
      expect(await crashSyncThreadForTests(runner())).toBe(true);
      // Each replacement dies again before it stayed up `stableMs`: the back-off doubles, to its limit.
      await until(`replacement ${death}`, async () => (health().up ? true : undefined));
      if (death < 3) expect((await healthz()).status).toBe(200);
    }
    const deaths = logged().filter(
      (l) => typeof l.msg === 'string' && l.msg.startsWith('the sync thread stopped unexpectedly'),
    );
    expect(deaths.slice(-3).map((l) => [l.deathsInARow, l.restartInMs])).toEqual([
      [1, 50],
      [2, 100],
      [3, 200],
    ]);
    expect(health()).toMatchObject({ up: true, restarts: before + 3, deathsInARow: 3, failing: true });
    expect(await healthz()).toEqual({ status: 503, body: { status: 'unavailable', reason: 'sync thread' } });
    expect(await restartsInMetrics()).toBe(before + 3);

    // The last replacement stays up: healthy again, and it syncs.
    await until('/healthz to recover', async () => ((await healthz()).status === 200 ? true : undefined));
    expect(health()).toMatchObject({ up: true, deathsInARow: 0, failing: false });
    // It syncs: a sync of a token the previous test synced, requested now.
    const id = smallId;
    const lastSync = String((await token(id)).lastSyncDateTime);
    expect((await api('POST', `${tokensPath}/${id}/syncLicenses`)).status).toBeLessThan(300);
    await until('a sync after the recovery', async () => {
      const body = await token(id);
      return body.lastSyncStatus === 'completed' && String(body.lastSyncDateTime) > lastSync
        ? true
        : undefined;
    });
  }, 90_000);
});

describe('a replacement sync thread that cannot start', () => {
  it('counts as a death: retried after a growing back-off, failing, until one starts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vppd-sync-thread-restart-'));
    const lines: string[] = [];
    const good = join(dir, 'vppd.db');
    // A database whose directory is a file: a thread cannot open it.
    await writeFile(join(dir, 'a-file'), '');
    const bad = join(dir, 'a-file', 'vppd.db');
    const data = sqliteSyncThreadData(good);
    let restarts = 0;
    const runner = await startSyncThread({
      data,
      logger: capturingLogger(lines),
      restart: { firstDelayMs: 20, maxDelayMs: 80, stableMs: 60_000, failingAfter: 3 },
      onRestart: () => restarts++,
    });
    try {
      runner.start();
      // From now on a new thread finds the database unreachable.
      data.database = sqliteSyncThreadData(bad).database;
      expect(await crashSyncThreadForTests(runner)).toBe(true);
      const failedStarts = await until('three failed replacements', async () => {
        const found = lines
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .filter((l) => l.msg === 'a new sync thread did not start: trying again after the back-off');
        return found.length >= 3 ? found : undefined;
      });
      // The exit was death 1 (20 ms); each failed start one more, the wait doubling up to 80 ms.
      expect(failedStarts.slice(0, 3).map((l) => [l.deathsInARow, l.restartInMs])).toEqual([
        [2, 40],
        [3, 80],
        [4, 80],
      ]);
      expect(failedStarts[0]?.err).toMatchObject({
        message: expect.stringMatching(/did not start: .*a-file/),
      });
      expect(runner.health?.()).toMatchObject({ up: false, restarts: 0, failing: true });
      expect(runner.active).toBe(0);
      // Nothing to wait for while no thread runs.
      await expect(runner.drain(0)).resolves.toBe(0);
      runner.start();

      data.database = sqliteSyncThreadData(good).database;
      await until('a replacement that starts', async () => (runner.health?.().up ? true : undefined));
      expect(runner.health?.()).toMatchObject({ up: true, restarts: 1 });
      expect(restarts).toBe(1);
      expect(
        lines.some(
          (l) =>
            (JSON.parse(l) as { msg?: string }).msg === 'a new sync thread replaced the one that stopped',
        ),
      ).toBe(true);
    } finally {
      await runner.close?.();
      await rm(dir, { recursive: true, force: true });
    }
    // Closed on purpose: no thread runs, and closing it was no death (no new thread comes).
    expect(runner.health?.()).toMatchObject({ up: false, restarts: 1 });
  }, 60_000);
});
