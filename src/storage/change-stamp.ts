import type { StorageEngine } from './engine.js';

/**
 * Reads a tenant's change stamp: the `seq` of its newest event, as text. It moves after every commit
 * that changed something a reader of the tenant sees (storage/event-store.ts lists them) and never
 * comes back; other tenants' writes leave it alone. Read it before the data it guards.
 */
export type TenantChangeStamp = (tenantId: string) => Promise<string>;

/** Which events move a {@link TenantChangeStamp}. */
export interface TenantChangeStampOptions {
  /**
   * False: a sync's `syncProgressed` notes do not move it (StorageEngine.readTenantStampWithoutProgress),
   * for readers that show no live progress (Graph). Default true: every event does (the dashboard).
   */
  readonly progress?: boolean;
}

/** One reader per engine and kind: every caller in the process (both Graph versions, the dashboard) shares it. */
const tenantStampReaders = new WeakMap<
  StorageEngine,
  { all?: TenantChangeStamp; graph?: TenantChangeStamp }
>();

/**
 * The tenant change stamps of `storage`, read through {@link coalesceReads} from
 * `storage.readTenantStamps`: one read at a time for all tenants asked, each caller answered by a read
 * that started after its call. Every call for the same engine returns the same reader, so the process
 * keeps one stamp read in flight, not one per route module.
 */
export function createTenantChangeStamp(
  storage: StorageEngine,
  options: TenantChangeStampOptions = {},
): TenantChangeStamp {
  const kind = options.progress === false ? 'graph' : 'all';
  let readers = tenantStampReaders.get(storage);
  if (readers === undefined) {
    readers = {};
    tenantStampReaders.set(storage, readers);
  }
  const existing = readers[kind];
  if (existing !== undefined) return existing;
  const asText = (seqs: readonly number[]) => seqs.map(String);
  const reader = coalesceReads<string, string>((tenantIds) => {
    const seqs =
      kind === 'graph'
        ? storage.readTenantStampsWithoutProgress(tenantIds)
        : storage.readTenantStamps(tenantIds);
    return Array.isArray(seqs) ? asText(seqs) : (seqs as Promise<readonly number[]>).then(asText);
  });
  readers[kind] = reader;
  return reader;
}

/** A read of several keys at once: one value per key, in the keys' order. */
export type BatchRead<K, V> = (keys: readonly K[]) => readonly V[] | Promise<readonly V[]>;

interface Waiter<V> {
  readonly promise: Promise<V>;
  resolve(value: V): void;
  reject(error: unknown): void;
}

function waiter<V>(): Waiter<V> {
  let resolve!: (value: V) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<V>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Shares reads of a value that only moves forward (a change stamp) among many callers, without ever
 * answering a caller with a read that started before its call.
 *
 * - Calls wait in a batch (one entry per key). The batch is read in the check phase of the event-loop
 *   turn (`setImmediate`, after every I/O callback of the turn ran), with one call of `read` for all
 *   its keys.
 * - At most one read is in flight. A call arriving while one is in flight does not join it: that read
 *   may have been sent before the caller's request arrived, and so miss a commit that ended just
 *   before. The call waits in the next batch, read as soon as the one in flight settles (in the check
 *   phase of the turn it settles in).
 * - A read that fails rejects every caller of its batch, and the next batch is read as usual.
 * - A read that answers synchronously (SQLite) answers its batch at once: nothing is ever in flight,
 *   and calls of one turn share one read, as before.
 *
 * Why this is exact: a caller's batch is taken, and its read sent, after the call. The engine reads
 * the latest commits when the read runs (PostgreSQL: a statement outside a transaction, read committed,
 * takes its snapshot when it starts on the server, after it was sent), so the answer covers every
 * commit that ended before the call. A PATCH that returned on replica A had committed before its
 * response left A; a GET that arrives on replica B after that asks for the stamp after that, so B's
 * answer is at least the PATCH's `seq` and B's read cache cannot serve bytes kept under an older one.
 * Under load one round trip serves every request that arrived while the previous one was in flight:
 * the number of reads in flight stays one, whatever the request rate, at the cost of at most one extra
 * round trip of waiting for a caller arriving just after a read was sent.
 */
export function coalesceReads<K, V>(read: BatchRead<K, V>): (key: K) => Promise<V> {
  let waiting = new Map<K, Waiter<V>>();
  let scheduled = false;
  let inFlight = false;

  const answer = (batch: Map<K, Waiter<V>>, values: readonly V[]) => {
    if (values.length !== batch.size) {
      const error = new Error(`a batched read answered ${values.length} values for ${batch.size} keys`);
      for (const w of batch.values()) w.reject(error);
      return;
    }
    let i = 0;
    for (const w of batch.values()) w.resolve(values[i++] as V);
  };
  const fail = (batch: Map<K, Waiter<V>>, error: unknown) => {
    for (const w of batch.values()) w.reject(error);
  };
  const settled = () => {
    inFlight = false;
    schedule();
  };
  const flush = () => {
    scheduled = false;
    // Calls from now on wait for a later read: this one may already be too old for them.
    const batch = waiting;
    waiting = new Map();
    let result: readonly V[] | Promise<readonly V[]>;
    try {
      result = read([...batch.keys()]);
    } catch (error) {
      fail(batch, error);
      schedule();
      return;
    }
    if (Array.isArray(result)) {
      answer(batch, result);
      return;
    }
    inFlight = true;
    (result as Promise<readonly V[]>).then(
      (values) => {
        answer(batch, values);
        settled();
      },
      (error: unknown) => {
        fail(batch, error);
        settled();
      },
    );
  };
  const schedule = () => {
    if (scheduled || inFlight || waiting.size === 0) return;
    scheduled = true;
    setImmediate(flush);
  };
  return (key) => {
    let w = waiting.get(key);
    if (w === undefined) {
      w = waiter<V>();
      waiting.set(key, w);
      schedule();
    }
    return w.promise;
  };
}
