// The sync thread's main module (see sync-thread.ts): a SyncWorker and the history pruner on their own
// database connection and Apple client, driven by messages from the request thread. Everything it
// would log and every Apple request it would count goes back as a message.
import { randomBytes, randomUUID } from 'node:crypto';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { type AppleRequestObservation, createAppleClient, realSleep } from '../apple/apple-client.js';
import type { Logger } from '../domain/logger.js';
import { createDatabaseRateLimiter } from '../storage/apple-rate-store.js';
import { openStorage } from '../storage/open-database.js';
import { createTokenCipher } from '../storage/token-cipher.js';
import { createVppTokenStore } from '../storage/vpp-token-store.js';
import { createBackgroundLane } from './background-lane.js';
import { createSyncService } from './sync-service.js';
import {
  logLevelValues,
  type SyncThreadCommand,
  type SyncThreadData,
  type SyncThreadEvent,
  type SyncThreadLogLevel,
} from './sync-thread-protocol.js';

const port = parentPort;
if (port === null) throw new Error('sync-thread-entry runs only as a worker thread');
const data = workerData as SyncThreadData;
const post = (event: SyncThreadEvent) => port.postMessage(event);

/** A Logger whose records cross to the request thread's logger (bindings applied there). */
function messageLogger(bindings: Record<string, unknown>): Logger {
  const threshold = logLevelValues[data.logLevel] ?? logLevelValues.info ?? 30;
  const send = (level: SyncThreadLogLevel) => (details: object, message: string) => {
    if ((logLevelValues[level] ?? 0) < threshold) return;
    try {
      post({ type: 'log', level, bindings, details, message });
    } catch {
      // Something in the details cannot be cloned (a function, a socket): send what JSON keeps of it.
      post({ type: 'log', level, bindings, details: JSON.parse(JSON.stringify(details)) as object, message });
    }
  };
  return {
    debug: send('debug'),
    info: send('info'),
    warn: send('warn'),
    error: send('error'),
    child: (more) => messageLogger({ ...bindings, ...more }),
  };
}

// Apple observations cross in batches: one message per request cost as much as a page's staging.
let appleSeen: { requests: AppleRequestObservation[]; waits: { endpoint: string; waitedMs: number }[] } = {
  requests: [],
  waits: [],
};
let appleFlush: NodeJS.Timeout | undefined;
function flushApple(): void {
  clearTimeout(appleFlush);
  appleFlush = undefined;
  if (appleSeen.requests.length === 0 && appleSeen.waits.length === 0) return;
  post({ type: 'apple', ...appleSeen });
  appleSeen = { requests: [], waits: [] };
}
function flushAppleSoon(): void {
  appleFlush ??= setTimeout(flushApple, 100);
}

async function main(): Promise<void> {
  try {
    // Linux keeps a nice value per thread: this one yields the CPU to the request thread.
    setPriority(data.nice);
  } catch {
    // Not permitted or not supported: the thread runs at the process's priority.
  }
  const logger = messageLogger({});
  const storage = await openStorage(data.database);
  const clock = () => new Date();
  const tokens = createVppTokenStore({
    storage,
    cipher: createTokenCipher(data.encryptionKey, randomBytes),
    clock,
  });
  // No request arrives in this thread, so the lane only yields between slices (timers, heartbeats).
  const lane = createBackgroundLane();
  const apple = createAppleClient({
    baseUrl: data.apple.baseUrl,
    connections: data.apple.connections,
    beforeParse: lane.turn,
    ...(data.apple.sharedRate ? { rateLimiter: createDatabaseRateLimiter(storage, realSleep) } : {}),
    ...(data.apple.metadataUrl ? { metadataUrl: data.apple.metadataUrl } : {}),
    logger: logger.child({ component: 'apple' }),
    observer: {
      request: (observation) => {
        appleSeen.requests.push(observation);
        flushAppleSoon();
      },
      rateLimitWait: (observation) => {
        appleSeen.waits.push(observation);
        flushAppleSoon();
      },
    },
  });
  const sync = createSyncService({
    storage,
    tokens,
    apple,
    clock,
    newId: randomUUID,
    logger: logger.child({ component: 'sync' }),
    settings: data.settings,
    workerId: data.workerId,
    lane,
    onActiveChange: (active) => post({ type: 'active', active }),
  });
  const worker = await sync.createWorker();
  const pruner = sync.createHistoryPruner();
  let closing = false;
  port?.on('message', (command: SyncThreadCommand) => {
    switch (command.type) {
      case 'start':
        if (closing) return;
        worker.start();
        pruner.start();
        return;
      case 'wake':
        worker.wake();
        return;
      case 'drain':
        void worker.drain(command.graceMs).then((left) => {
          flushApple();
          post({ type: 'done', id: command.id, value: left });
        });
        return;
      case 'stop':
        void worker.stop().then(() => {
          flushApple();
          post({ type: 'done', id: command.id, value: 0 });
        });
        return;
      case 'close':
        closing = true;
        void (async () => {
          await pruner.stop();
          await worker.stop();
          await apple.close();
          await storage.close();
          flushApple();
          post({ type: 'done', id: command.id, value: 0 });
          port?.close();
        })();
        return;
    }
  });
  post({ type: 'ready' });
}

main().catch((error: unknown) => {
  post({ type: 'startFailed', message: error instanceof Error ? error.message : String(error) });
  port.close();
});
