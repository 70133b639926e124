import type pg from 'pg';

/**
 * `COPY … FROM STDIN` through Kysely. Kysely hands a query's SQL text and parameters to the pool's
 * client as they are, and a COPY needs the client itself (its connection), so the pool's clients are
 * wrapped when they connect: a query whose text is {@link copyMarker} runs its one parameter, a
 * {@link CopyPayload}, as a COPY on that same client — inside whatever transaction the client is in, or
 * as a transaction of its own when it is in none — and answers like an insert (`rowCount`).
 */
export const copyMarker = '/* vppd copy from stdin */';

export interface CopyPayload {
  /** `copy "t" ("a", "b") from stdin`. */
  readonly statement: string;
  /** The rows in COPY's text format (see {@link copyText}). */
  readonly data: string;
  readonly rows: number;
  /** Commit this transaction without waiting for the WAL flush (`BulkInsertSpec.staging`). */
  readonly asynchronousCommit: boolean;
}

/** Makes `client` run {@link copyMarker} queries as COPY (dialect.ts calls it for every new client). */
export function enableCopyFrom(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
  // Every other call is passed on with all its arguments: `pool.query` calls a client's `query` with a
  // callback, which dropping would leave waiting forever.
  (client as unknown as { query: typeof query }).query = (...args: unknown[]) => {
    const [text, values] = args;
    if (text !== copyMarker) return query(...args);
    const payload = (values as readonly CopyPayload[])[0] as CopyPayload;
    return new Promise((resolve, reject) => {
      query(new CopyIn(payload, resolve, reject));
    });
  };
}

/**
 * One COPY as a single socket write: a simple Query message (`set local synchronous_commit = off; copy
 * …` for staging, so no extra round trip for the setting), the rows as one CopyData message and
 * CopyDone, sent together without waiting for the server's CopyInResponse. The server reads them in
 * order; if the query fails before or during the copy, it drops the CopyData and CopyDone that follow
 * (protocol: "any subsequent CopyData, CopyDone, or CopyFail messages issued by the frontend will
 * simply be dropped"). Outside a transaction block the statements of one Query run as one implicit
 * transaction, so `set local` holds for the COPY and ends with it.
 *
 * Why (`npm run bench -- sync --database postgres --breakdown`, docs/architecture.md "Staging in one
 * round trip"): a staging batch took begin, `set local`, the COPY (header, data and CopyDone written
 * separately, after a round trip for CopyInResponse) and commit: 4 round trips and 7 socket writes, each
 * write waking the server's backend on the same 2 cores.
 *
 * It is a pg "submittable": the client calls `submit` when the connection is free and the `handle…`
 * methods as the server answers.
 */
class CopyIn {
  #rowCount: number;
  readonly #payload: CopyPayload;
  readonly #resolve: (result: unknown) => void;
  readonly #reject: (error: unknown) => void;

  constructor(payload: CopyPayload, resolve: (result: unknown) => void, reject: (error: unknown) => void) {
    this.#payload = payload;
    this.#rowCount = payload.rows;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  submit(connection: { stream: { write(data: Buffer): boolean } }): void {
    const { statement, data, asynchronousCommit } = this.#payload;
    const text = asynchronousCommit ? `set local synchronous_commit = off; ${statement}` : statement;
    connection.stream.write(copyMessages(text, data));
  }

  /** pg replaces it when `query_timeout` is set; called once the query is done. */
  callback(): void {}

  handleCommandComplete(message: { text?: string }): void {
    const match = /^COPY (\d+)$/.exec(message.text ?? '');
    if (match !== null) this.#rowCount = Number(match[1]);
  }

  /** The data went out with the query already. */
  handleCopyInResponse(): void {}

  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}

  handleReadyForQuery(): void {
    this.callback();
    this.#resolve({ command: 'COPY', rowCount: this.#rowCount, rows: [], fields: [] });
  }

  handleError(error: unknown): void {
    this.callback();
    this.#reject(error);
  }
}

/** Query (`text`), CopyData (`data`) and CopyDone messages of the frontend/backend protocol in one buffer. */
export function copyMessages(text: string, data: string): Buffer {
  const textBytes = Buffer.byteLength(text);
  const dataBytes = Buffer.byteLength(data);
  // Q int32 text \0 | d int32 data | c int32
  const buffer = Buffer.allocUnsafe(1 + 4 + textBytes + 1 + 1 + 4 + dataBytes + 1 + 4);
  let at = 0;
  buffer[at++] = 0x51; // 'Q'
  at = buffer.writeInt32BE(4 + textBytes + 1, at);
  at += buffer.write(text, at);
  buffer[at++] = 0;
  buffer[at++] = 0x64; // 'd'
  at = buffer.writeInt32BE(4 + dataBytes, at);
  at += buffer.write(data, at);
  buffer[at++] = 0x63; // 'c'
  buffer.writeInt32BE(4, at);
  return buffer;
}

const specialGlobal = /[\\\n\r\t]/g;
const escapes: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Rows of `width` values from `values` (flat, row after row) in COPY's text format: tab-separated,
 * one line per row, `\N` for null, backslash, newline, carriage return and tab escaped, bytes as
 * bytea's `\x` hex.
 */
export function copyText(values: readonly unknown[], width: number, first: number, count: number): string {
  const lines: string[] = new Array(count);
  for (let r = 0; r < count; r++) {
    const base = (first + r) * width;
    let line = '';
    for (let c = 0; c < width; c++) {
      const value = values[base + c];
      let field: string;
      if (value === null || value === undefined) field = '\\N';
      else if (typeof value === 'string')
        field = needsEscape(value) ? value.replace(specialGlobal, (ch) => escapes[ch] as string) : value;
      else if (Buffer.isBuffer(value)) field = `\\\\x${value.toString('hex')}`;
      else field = String(value);
      line = c === 0 ? field : `${line}\t${field}`;
    }
    lines[r] = line;
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Whether `value` holds a character COPY's text format escapes. Four `indexOf` scans, not one test of
 * a character-class RegExp: V8 searches a single character with a vectorised scan, and the chunk rows'
 * ~2 KB of JSON (which needs no escaping) are scanned for every batch: 0.6 ms against 4.7 ms for
 * the ~2,000 chunk rows of 200,000 licenses (a micro-benchmark of both, best of 7, load ~9).
 */
function needsEscape(value: string): boolean {
  return (
    value.indexOf('\\') >= 0 ||
    value.indexOf('\t') >= 0 ||
    value.indexOf('\n') >= 0 ||
    value.indexOf('\r') >= 0
  );
}
