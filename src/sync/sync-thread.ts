import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { AppleObserver } from '../apple/apple-client.js';
import type { Logger } from '../domain/logger.js';
import type { SyncThreadCommand, SyncThreadData, SyncThreadEvent } from './sync-thread-protocol.js';
import type { SyncRunner, SyncRunnerHealth } from './sync-worker.js';

export type { SyncThreadData } from './sync-thread-protocol.js';

export interface SyncThreadOptions {
  readonly data: SyncThreadData;
  /** Where the thread's log records go (its `component` bindings come along). */
  readonly logger: Logger;
  /** Told about every Apple request the thread makes and every rate-limit wait (metrics). */
  readonly observer?: AppleObserver;
  /** When a thread that died is replaced (defaults: {@link defaultSyncThreadRestart}). */
  readonly restart?: Partial<SyncThreadRestartPolicy>;
  /** Told each time a new thread has replaced one that died (metrics). */
  readonly onRestart?: () => void;
}

/** How a sync thread that died is replaced. */
export interface SyncThreadRestartPolicy {
  /** The wait before the first replacement; it doubles with each death in a row. */
  readonly firstDelayMs: number;
  /** The longest wait between two attempts. */
  readonly maxDelayMs: number;
  /** A thread that stays up this long ends the run of deaths: the next death waits `firstDelayMs` again. */
  readonly stableMs: number;
  /** Deaths in a row (a thread exiting, or a replacement failing to start) that make the thread failing. */
  readonly failingAfter: number;
}

export const defaultSyncThreadRestart: SyncThreadRestartPolicy = {
  firstDelayMs: 1_000,
  maxDelayMs: 60_000,
  stableMs: 60_000,
  failingAfter: 5,
};

/** The sync runner {@link startSyncThread} returns: the thread in service now, replaced when it dies. */
export interface SyncThreadRunner extends SyncRunner {
  health(): SyncRunnerHealth;
}

/** One worker thread and the request thread's side of its messages. */
interface ThreadHandle {
  readonly worker: Worker;
  /** Settles once the thread opened its database (rejects when it did not, or exited first). */
  readonly ready: Promise<void>;
  /** Runs in flight in the thread, as it last reported. */
  readonly active: number;
  send(command: SyncThreadCommand): void;
  /** Sends a command with an id; resolves with its answer, or 0 once the thread is gone. */
  ask(command: (id: number) => SyncThreadCommand): Promise<number>;
  /** Closes the thread on purpose (its exit is then no news) and waits for it to exit. */
  close(): Promise<void>;
  /** Ends the thread at once, on purpose. */
  terminate(): Promise<void>;
}

/** Why a running thread stopped: its exit code and the uncaught error, if one ended it. */
interface ThreadDeath {
  readonly exitCode: number;
  readonly error?: { readonly name: string; readonly message: string };
}

/**
 * Starts a sync thread. `onDeath` hears of a thread that stopped after it was ready and before it was
 * closed on purpose; a thread that never got ready rejects `ready` instead.
 */
function spawnThread(
  options: SyncThreadOptions,
  onDeath: (handle: ThreadHandle, death: ThreadDeath) => void,
) {
  const { logger } = options;
  const worker = newSyncThread(options.data);
  let active = 0;
  let nextId = 1;
  let exited = false;
  let running = false;
  let onPurpose = false;
  let error: ThreadDeath['error'];
  const pending = new Map<number, (value: number) => void>();
  const exit = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
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
    worker.on('error', (thrown) => {
      // Name and message only: the thread's own log records say what it was doing.
      error = { name: thrown.name, message: thrown.message };
      if (!running) logger.error({ err: error }, 'the sync thread failed');
      reject(thrown);
    });
    worker.on('exit', (code) => {
      exited = true;
      active = 0;
      // Whatever was asked of a thread that is gone is over: nothing of it still runs here.
      for (const settle of pending.values()) settle(0);
      pending.clear();
      reject(new Error(`the sync thread exited with code ${code}`));
      // A thread that never started was reported by its start; one closed on purpose is no news.
      if (running && !onPurpose) onDeath(handle, { exitCode: code, ...(error ? { error } : {}) });
    });
  });
  // The supervisor awaits `ready` only while it starts the thread; later rejections are no news.
  ready.catch(() => undefined);
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
  const handle: ThreadHandle = {
    worker,
    ready,
    get active() {
      return active;
    },
    send,
    ask,
    async close() {
      onPurpose = true;
      await ask((id) => ({ type: 'close', id }));
      await exit;
    },
    async terminate() {
      onPurpose = true;
      await worker.terminate();
    },
  };
  return handle;
}

/** Ends a runner's thread as if it crashed (tests only: no route, command or setting reaches it). */
const crashHooks = new WeakMap<SyncRunner, () => Promise<boolean>>();

/**
 * Tests only: terminates the thread `runner` runs now, as a crash would end it (its runs stop where they
 * are, their leases stay until they expire), and resolves true once it is gone; false when `runner` has
 * no thread running. The runner then replaces it as it replaces any thread that died.
 */
export function crashSyncThreadForTests(runner: SyncRunner): Promise<boolean> {
  return crashHooks.get(runner)?.() ?? Promise.resolve(false);
}

/**
 * Sync execution off the request thread (issue 18): a worker thread runs the SyncWorker — Apple
 * fetches, page parsing, staging, commits, heartbeats, progress — and the history pruner on its own
 * database connection (SQLite in WAL lets it write while this thread reads; on PostgreSQL it has its
 * own pool). Its garbage collection and its synchronous SQLite statements no longer hold up requests.
 * Leases, progress and history are in the database as before; logs, Apple metrics and the count of
 * runs in flight come back as messages. Resolves once the thread has opened its database.
 *
 * A thread that dies (an uncaught error, an exit) is replaced: after `firstDelayMs`, doubling with each
 * death in a row up to `maxDelayMs`; a replacement that cannot start counts as a death too. The new
 * thread has the same worker id and is started if the runner was (`start` and no `stop` or `drain`
 * since). The dead thread's runs are not given back: nothing here knows how far their commits got, so
 * their leases expire and any worker (the new thread included) takes them over, as after a crashed
 * process. {@link SyncThreadRunner.health} tells whether a thread runs and whether it keeps dying.
 */
export async function startSyncThread(options: SyncThreadOptions): Promise<SyncThreadRunner> {
  const { logger } = options;
  const policy: SyncThreadRestartPolicy = { ...defaultSyncThreadRestart, ...options.restart };
  let current: ThreadHandle | undefined;
  /** A replacement being started (not ready yet). */
  let starting: ThreadHandle | undefined;
  /** `start` was called, and no `stop` or `drain` since: a replacement is started too. */
  let started = false;
  let closing: Promise<void> | undefined;
  let restartTimer: NodeJS.Timeout | undefined;
  let stableTimer: NodeJS.Timeout | undefined;
  let restarts = 0;
  let deathsInARow = 0;

  const backOff = () => Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** Math.max(0, deathsInARow - 1));
  const serving = (handle: ThreadHandle) => {
    current = handle;
    clearTimeout(stableTimer);
    stableTimer = setTimeout(() => {
      deathsInARow = 0;
    }, policy.stableMs);
    stableTimer.unref();
  };
  const scheduleRestart = (delayMs: number) => {
    restartTimer = setTimeout(() => void restart(), delayMs);
    restartTimer.unref();
  };
  const onDeath = (handle: ThreadHandle, death: ThreadDeath) => {
    if (handle !== current || closing !== undefined) return;
    current = undefined;
    clearTimeout(stableTimer);
    deathsInARow++;
    const restartInMs = backOff();
    logger.error(
      { exitCode: death.exitCode, ...(death.error ? { err: death.error } : {}), deathsInARow, restartInMs },
      'the sync thread stopped unexpectedly: a new one starts after the back-off (the leases of its runs expire and a worker takes them over)',
    );
    scheduleRestart(restartInMs);
  };
  const restart = async () => {
    restartTimer = undefined;
    if (closing !== undefined) return;
    const handle = spawnThread(options, onDeath);
    starting = handle;
    try {
      await handle.ready;
    } catch (error) {
      starting = undefined;
      await handle.terminate();
      if (closing !== undefined) return;
      deathsInARow++;
      const restartInMs = backOff();
      logger.error(
        {
          err: { name: (error as Error).name, message: (error as Error).message },
          deathsInARow,
          restartInMs,
        },
        'a new sync thread did not start: trying again after the back-off',
      );
      scheduleRestart(restartInMs);
      return;
    }
    starting = undefined;
    if (closing !== undefined) {
      await handle.close();
      return;
    }
    restarts++;
    serving(handle);
    if (started) handle.send({ type: 'start' });
    options.onRestart?.();
    logger.warn({ restarts, started }, 'a new sync thread replaced the one that stopped');
  };

  const first = spawnThread(options, onDeath);
  try {
    await first.ready;
  } catch (error) {
    await first.terminate();
    throw error;
  }
  serving(first);

  const runner: SyncThreadRunner = {
    get active() {
      return current?.active ?? 0;
    },
    start: () => {
      started = true;
      current?.send({ type: 'start' });
    },
    wake: () => current?.send({ type: 'wake' }),
    drain: (graceMs) => {
      started = false;
      return current?.ask((id) => ({ type: 'drain', id, graceMs })) ?? Promise.resolve(0);
    },
    stop: async () => {
      started = false;
      await current?.ask((id) => ({ type: 'stop', id }));
    },
    close() {
      closing ??= (async () => {
        clearTimeout(restartTimer);
        clearTimeout(stableTimer);
        await starting?.terminate();
        await current?.close();
        current = undefined;
      })();
      return closing;
    },
    health: () => ({
      up: current !== undefined,
      restarts,
      deathsInARow,
      failing: deathsInARow >= policy.failingAfter,
    }),
  };
  crashHooks.set(runner, async () => {
    const handle = current;
    if (handle === undefined) return false;
    const exited = new Promise<void>((resolve) => handle.worker.once('exit', () => resolve()));
    // Not through handle.terminate(): that would mark the exit as on purpose.
    await handle.worker.terminate();
    await exited;
    return true;
  });
  return runner;
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
