import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppleSim } from '../src/apple-sim/apple-sim.js';
import { createContext } from '../src/context.js';
import type { RunningServer } from '../src/server/start-server.js';
import { startSyncThread } from '../src/sync/sync-thread.js';
import { SyncWorker } from '../src/sync/sync-worker.js';
import { testConfig } from './helpers/graph-test-app.js';
import {
  type ApiCall,
  apiCaller,
  readWriteBearer,
  type SyncThreadServing,
  sqliteSyncThreadData,
  startSyncThreadServing,
  until,
} from './helpers/serving.js';
import { storageEngines } from './helpers/storage-engines.js';
import { tokensPath } from './helpers/sync-harness.js';

// VPPD_SYNC_THREADS=1: the sync worker runs in a worker thread of its own with its own database
// connection, as `vppd serve` runs it. Real sockets, a real Apple simulator, a SQLite file or a
// PostgreSQL database; the tests wait for what they can observe (the API, the database, the logs).

describe.each(storageEngines)('syncs in a sync thread (%s)', (engine) => {
  let sim: AppleSim;
  let server: RunningServer;
  let serving: SyncThreadServing;
  let auth: string;
  const lines: string[] = [];

  const api: ApiCall = (method, path, body) => apiCaller(() => server.url, auth)(method, path, body);
  const upload = async (locationId: string) => {
    const created = await api('POST', tokensPath, { token: sim.tokenFor(locationId) });
    expect(created.status).toBe(201);
    return String(created.body.id);
  };
  const syncStatus = async (id: string) =>
    String((await api('GET', `${tokensPath}/${id}`)).body.lastSyncStatus);
  const logged = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);

  beforeAll(async () => {
    serving = await startSyncThreadServing(engine, `sync-thread-${engine}`, lines, {
      sync: { pollMs: 50, heartbeatMs: 200 },
    });
    ({ sim, server } = serving);
    auth = await readWriteBearer();
  });

  afterAll(async () => {
    await serving?.close();
  });

  it('runs an uploaded token’s sync to completed off the request thread; history, logs and Apple metrics come back', async () => {
    expect(server.context.sync.worker).toBeDefined();
    expect(server.context.sync.worker).not.toBeInstanceOf(SyncWorker);
    const id = await upload('small');
    await until('the sync to complete', async () =>
      (await syncStatus(id)) === 'completed' ? true : undefined,
    );

    const token = await api('GET', `${tokensPath}/${id}`);
    expect(token.body).toMatchObject({ state: 'valid', lastSyncStatus: 'completed' });
    const history = await api('GET', `/vppd/v1/tokens/${id}/syncs?top=5`);
    expect(history.status).toBe(200);
    const runs = history.body.value as Record<string, unknown>[];
    expect(runs[0]).toMatchObject({ outcome: 'completed', assets: 40, assignments: 600 });

    // The thread's log records reach the process's logger, with their component, never the sToken.
    const completed = await until('the completion log line', async () =>
      logged().find((l) => l.msg === 'sync completed' && l.tokenId === id),
    );
    expect(completed).toMatchObject({ component: 'sync', assignments: 600, level: 30 });
    expect(lines.join('\n')).not.toContain(sim.tokenFor('small'));

    // Apple requests the thread made are counted in this process's /metrics.
    const metrics = await until('Apple requests in /metrics', async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const line = text
        .split('\n')
        .find((l) => l.startsWith('vppd_apple_requests_total{') && l.includes('endpoint="GET /assignments"'));
      return line !== undefined && Number(line.slice(line.lastIndexOf(' ') + 1)) >= 6 ? line : undefined;
    });
    expect(metrics).toContain('status="200"');
  });

  it('a graceful stop gives a running sync back to the queue; the next start runs it to completed', async () => {
    const runner = server.context.sync.worker;
    if (runner === undefined) throw new Error('no sync runner');
    sim.faults.latency('slow', 300);
    const id = await upload('slow');
    await until('the sync to run in the thread', async () => (runner.active === 1 ? true : undefined));

    const left = await runner.drain(0);
    expect(left).toBe(1);
    await runner.stop();
    expect(runner.active).toBe(0);
    const job = await server.context.db
      .selectFrom('sync_jobs')
      .select(['lease_owner', 'attempts'])
      .where('token_id', '=', id)
      .executeTakeFirstOrThrow();
    // Given back: no lease, the attempt not counted; the token still shows the sync in progress.
    expect(job).toEqual({ lease_owner: null, attempts: 0 });
    expect(await syncStatus(id)).toBe('inProgress');
    expect(logged().some((l) => l.msg === 'sync stopped with vppd; it runs again when a worker starts')).toBe(
      true,
    );

    sim.faults.clear('slow');
    runner.start();
    await until('the sync to complete after the restart', async () =>
      (await syncStatus(id)) === 'completed' ? true : undefined,
    );
  });
});

describe('VPPD_SYNC_THREADS', () => {
  it('an in-memory database syncs in the request thread (a thread cannot open it)', async () => {
    const context = await createContext(testConfig({ syncThreads: '1' }), {
      logger: pino({ level: 'silent' }),
    });
    try {
      expect(context.config.sync.threads).toBe(1);
      expect(await context.sync.createRunner()).toBeInstanceOf(SyncWorker);
    } finally {
      await context.dispose();
    }
  });

  it('0 runs the worker in the request thread on a file database too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vppd-sync-thread-'));
    const context = await createContext(
      testConfig({ syncThreads: '0', database: `sqlite:${join(dir, 'vppd.db')}` }),
      { logger: pino({ level: 'silent' }) },
    );
    try {
      expect(await context.sync.createRunner()).toBeInstanceOf(SyncWorker);
    } finally {
      await context.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a sync thread that cannot open the database fails its start with the reason, and is gone', async () => {
    const logged: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          logged.push(chunk.toString('utf8'));
          done();
        },
      }),
    );
    // The database's directory is a file: the thread cannot open it.
    const dir = await mkdtemp(join(tmpdir(), 'vppd-sync-thread-'));
    const notADirectory = join(dir, 'a-file');
    await writeFile(notADirectory, '');
    const filename = join(notADirectory, 'vppd.db');
    await expect(
      startSyncThread({
        data: sqliteSyncThreadData(filename),
        logger,
      }),
    ).rejects.toThrow(/^the sync thread did not start: .*a-file/);
    // A start that failed is no unexpected stop: nothing claims syncs are off until a restart.
    expect(logged.join('')).not.toContain('stopped unexpectedly');
    await rm(dir, { recursive: true, force: true });
  });
});
