import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { type Kysely, sql } from 'kysely';
import { isSqlite } from './dialect-ddl.js';

/**
 * One batch of a run's assignments for the staging thread: the records as JSON (Apple's order, as
 * the Apple client parsed them) and the order to insert them in (primary-key order); record `i` gets
 * `seq = firstSeq + i`.
 */
export interface StagingBatch {
  readonly runKey: number;
  readonly firstSeq: number;
  /** JSON array of `{adamId, pricingParam, serialNumber?, clientUserId?}`. */
  readonly json: string;
  /** Positions into the array in insert order; undefined = as listed. Transferred, not copied. */
  readonly order: Uint32Array | undefined;
}

/** The error of a batch the thread could not write, with SQLite's code (e.g. a foreign-key violation). */
export class StagingWriteError extends Error {
  override readonly name = 'StagingWriteError';
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

// The thread's body, plain CommonJS so it runs the same under node, tsx and vitest (no transform).
// It owns a second connection to the same database file; WAL lets the main connection read (and
// write between batches) meanwhile. Each batch is one transaction of multi-row inserts.
const threadSource = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.filename, { timeout: workerData.busyTimeoutMs });
db.pragma('foreign_keys = ON');
db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
db.pragma('synchronous = NORMAL');
const chunk = 1000;
const statements = new Map();
const insert = (rows) => {
  let statement = statements.get(rows);
  if (statement === undefined) {
    statement = db.prepare(
      'insert into license_assignments (run_key, adam_id, pricing_param, seq, serial_number, client_user_id) values ' +
        new Array(rows).fill('(?, ?, ?, ?, ?, ?)').join(', '),
    );
    statements.set(rows, statement);
  }
  return statement;
};
const stage = db.transaction((runKey, firstSeq, records, order) => {
  for (let i = 0; i < records.length; i += chunk) {
    const end = Math.min(records.length, i + chunk);
    const parameters = new Array((end - i) * 6);
    let k = 0;
    for (let j = i; j < end; j++) {
      const at = order === undefined ? j : order[j];
      const a = records[at];
      parameters[k++] = runKey;
      parameters[k++] = a.adamId;
      parameters[k++] = a.pricingParam;
      parameters[k++] = firstSeq + at;
      parameters[k++] = a.serialNumber ?? null;
      parameters[k++] = a.clientUserId ?? null;
    }
    insert(end - i).run(parameters);
  }
});
const slots = [];
parentPort.on('message', (m) => {
  if (m === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    if (m.memory !== undefined) slots[m.slot] = Buffer.from(m.memory);
    const json = slots[m.slot].toString(m.encoding, 0, m.length);
    stage(m.runKey, m.firstSeq, JSON.parse(json), m.order);
    parentPort.postMessage({ id: m.id });
  } catch (error) {
    parentPort.postMessage({ id: m.id, error: { message: String(error && error.message || error), code: error && error.code } });
  }
});
`;

const slotCount = 2;

/**
 * Writes assignment batches into a SQLite database file from a worker thread, so the SQLite work of
 * a large sync (most of its CPU after fetching and parsing) runs beside the event loop instead of
 * blocking it. One thread per sync; batches are written in the order sent.
 */
export class SqliteStagingThread {
  readonly #worker: Worker;
  // Batches travel through shared memory, not in the message: copying a large string into a
  // message costs ~7 ms per MB here, mostly page faults of the fresh buffers. A slot is reused
  // only after the batch that used it was answered.
  readonly #slots: { memory: SharedArrayBuffer; view: Buffer; free: Promise<void> }[] = [];
  #nextSlot = 0;
  readonly #pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  #drained: (() => void)[] = [];
  #nextId = 0;
  #failure: Error | undefined;
  #closed: Promise<void> | undefined;

  private constructor(filename: string, busyTimeoutMs: number) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.#worker = new Worker(threadSource, { eval: true, workerData: { driver, filename, busyTimeoutMs } });
    this.#worker.on('message', (m: { id: number; error?: { message: string; code?: string } }) => {
      const waiter = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      if (m.error === undefined) waiter?.resolve();
      else waiter?.reject(new StagingWriteError(m.error.message, m.error.code));
      if (this.#pending.size === 0) this.#wakeDrained();
    });
    this.#worker.on('error', (error) => this.#fail(error));
    this.#worker.on('exit', () => this.#fail(new StagingWriteError('the staging thread stopped', undefined)));
  }

  /** Starts a staging thread on a database file. */
  static start(filename: string, busyTimeoutMs = 5000): SqliteStagingThread {
    return new SqliteStagingThread(filename, busyTimeoutMs);
  }

  /** Batches sent and not yet written. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Sends a batch; resolves once it is committed, rejects with the thread's error. */
  async write(batch: StagingBatch): Promise<void> {
    const index = this.#nextSlot;
    this.#nextSlot = (index + 1) % slotCount;
    await this.#slots[index]?.free;
    if (this.#failure !== undefined) throw this.#failure;
    // Plain ASCII (Apple's ids nearly always are: as many UTF-8 bytes as characters) is copied byte
    // for byte; anything else as UTF-8.
    const utf8Length = Buffer.byteLength(batch.json, 'utf8');
    const encoding = utf8Length === batch.json.length ? 'latin1' : 'utf8';
    const length = utf8Length;
    let slot = this.#slots[index];
    let memory: SharedArrayBuffer | undefined;
    if (slot === undefined || slot.memory.byteLength < length) {
      memory = new SharedArrayBuffer(Math.max(length, 2 * (slot?.memory.byteLength ?? 1 << 20)));
      slot = { memory, view: Buffer.from(memory), free: Promise.resolve() };
      this.#slots[index] = slot;
    }
    slot.view.write(batch.json, 0, length, encoding);
    const id = this.#nextId++;
    const written = new Promise<void>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage(
        {
          id,
          runKey: batch.runKey,
          firstSeq: batch.firstSeq,
          slot: index,
          length,
          encoding,
          memory,
          order: batch.order,
        },
        batch.order === undefined ? [] : [batch.order.buffer as ArrayBuffer],
      );
    });
    slot.free = written.then(
      () => undefined,
      () => undefined,
    );
    return written;
  }

  /**
   * Stops the thread. `drain` lets sent batches commit first; otherwise the thread is terminated and
   * a batch in progress rolls back (its transaction never commits).
   */
  close(options: { readonly drain: boolean }): Promise<void> {
    this.#closed ??= (async () => {
      if (options.drain && this.#failure === undefined) {
        // Every answer first (messages posted before the thread exits are not guaranteed to arrive).
        if (this.#pending.size > 0) await new Promise<void>((resolve) => this.#drained.push(resolve));
        const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
        this.#worker.postMessage('close');
        await exited;
      } else {
        await this.#worker.terminate();
      }
      this.#fail(new StagingWriteError('the staging thread was closed', undefined));
    })();
    return this.#closed;
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#pending.values()) waiter.reject(this.#failure);
    this.#pending.clear();
    this.#wakeDrained();
  }

  #wakeDrained(): void {
    const waiting = this.#drained;
    this.#drained = [];
    for (const wake of waiting) wake();
  }
}

/** The file of a SQLite database (undefined for other engines and for in-memory databases). */
export async function sqliteFileOf(db: Kysely<unknown>): Promise<string | undefined> {
  if (!isSqlite(db)) return undefined;
  const { rows } = await sql<{
    file: string | null;
  }>`select file from pragma_database_list where name = 'main'`.execute(db);
  const file = rows[0]?.file;
  return file === undefined || file === null || file === '' ? undefined : file;
}
