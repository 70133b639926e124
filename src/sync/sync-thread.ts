import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { AppleObserver } from '../apple/apple-client.js';
import type { Logger } from '../domain/logger.js';
import type { SyncThreadCommand, SyncThreadData, SyncThreadEvent } from './sync-thread-protocol.js';
import type { SyncRunner } from './sync-worker.js';

export type { SyncThreadData } from './sync-thread-protocol.js';

export interface SyncThreadOptions {
  readonly data: SyncThreadData;
  /** Where the thread's log records go (its `component` bindings come along). */
  readonly logger: Logger;
  /** Told about every Apple request the thread makes and every rate-limit wait (metrics). */
  readonly observer?: AppleObserver;
}

/**
 * Sync execution off the request thread (issue 18): a worker thread runs the SyncWorker — Apple
 * fetches, page parsing, staging, commits, heartbeats, progress — and the history pruner on its own
 * database connection (SQLite in WAL lets it write while this thread reads; on PostgreSQL it has its
 * own pool). Its garbage collection and its synchronous SQLite statements no longer hold up requests.
 * Leases, progress and history are in the database as before; logs, Apple metrics and the count of
 * runs in flight come back as messages. Resolves once the thread has opened its database.
 */
export async function startSyncThread(options: SyncThreadOptions): Promise<SyncRunner> {
  const { logger } = options;
  const worker = newSyncThread(options.data);
  let active = 0;
  let nextId = 1;
  let exited = false;
  let running = false;
  const pending = new Map<number, (value: number) => void>();
  const ready = new Promise<void>((resolve, reject) => {
    worker.on('message', (event: SyncThreadEvent) => {
      switch (event.type) {
        case 'ready':
          running = true;
          resolve();
          return;
        case 'startFailed':
          reject(new Error(`the sync thread did not start: ${event.message}`));
          return;
        case 'active':
          active = event.active;
          return;
        case 'done':
          pending.get(event.id)?.(event.value);
          pending.delete(event.id);
          return;
        case 'log':
          logger.child(event.bindings)[event.level](event.details, event.message);
          return;
        case 'apple':
          for (const observation of event.requests) options.observer?.request?.(observation);
          for (const observation of event.waits) options.observer?.rateLimitWait?.(observation);
          return;
      }
    });
    worker.on('error', (error) => {
      logger.error({ err: { name: error.name, message: error.message } }, 'the sync thread failed');
      reject(error);
    });
    worker.on('exit', (code) => {
      exited = true;
      active = 0;
      // Whatever was asked of a thread that is gone is over: nothing of it still runs here.
      for (const settle of pending.values()) settle(0);
      pending.clear();
      // A thread that never started was reported by its start; one closed on purpose is no news.
      if (running && closing === undefined) {
        logger.error(
          { exitCode: code },
          'the sync thread stopped unexpectedly: this process runs no syncs until it restarts (their leases expire and other workers take them over)',
        );
      }
      reject(new Error(`the sync thread exited with code ${code}`));
    });
  });
  const send = (command: SyncThreadCommand) => {
    if (!exited) worker.postMessage(command);
  };
  const ask = (command: (id: number) => SyncThreadCommand): Promise<number> => {
    if (exited) return Promise.resolve(0);
    const id = nextId++;
    return new Promise<number>((resolve) => {
      pending.set(id, resolve);
      send(command(id));
    });
  };
  let closing: Promise<void> | undefined;
  try {
    await ready;
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  return {
    get active() {
      return active;
    },
    start: () => send({ type: 'start' }),
    wake: () => send({ type: 'wake' }),
    drain: (graceMs) => ask((id) => ({ type: 'drain', id, graceMs })),
    stop: async () => {
      await ask((id) => ({ type: 'stop', id }));
    },
    close() {
      closing ??= (async () => {
        await ask((id) => ({ type: 'close', id }));
        if (!exited) await new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      })();
      return closing;
    },
  };
}

/**
 * The worker thread running sync-thread-entry: built vppd runs the .js beside this file. From sources
 * (tests, benchmarks) it is the .ts, loaded through tsx's loader, which the new thread registers
 * first (Node 20 does not carry `--import` loaders into worker threads).
 */
function newSyncThread(data: SyncThreadData): Worker {
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./sync-thread-entry.js', import.meta.url), { workerData: data });
  }
  const entry = new URL('./sync-thread-entry.ts', import.meta.url).href;
  const tsxApi = new URL(
    'dist/esm/api/index.mjs',
    pathToFileURL(createRequire(import.meta.url).resolve('tsx/package.json')),
  ).href;
  const boot = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData: data });
}
