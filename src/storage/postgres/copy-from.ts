import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

/**
 * `COPY … FROM STDIN` through Kysely. Kysely hands a query's SQL text and parameters to the pool's
 * client as they are, and a COPY needs the client itself (a stream on the connection), so the pool's
 * clients are wrapped when they connect: a query whose text is {@link copyMarker} runs its one
 * parameter, a {@link CopyPayload}, as a COPY on that same client — inside whatever transaction the
 * client is in — and answers like an insert (`rowCount`).
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
    return (
      payload.asynchronousCommit ? query('set local synchronous_commit = off') : Promise.resolve()
    ).then(() => copy(client, payload));
  };
}

function copy(client: pg.PoolClient, payload: CopyPayload): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const stream = client.query(copyFrom(payload.statement));
    stream.on('error', reject);
    stream.on('finish', () => resolve({ command: 'COPY', rowCount: payload.rows, rows: [], fields: [] }));
    stream.end(payload.data);
  });
}

const special = /[\\\n\r\t]/;
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
        field = special.test(value) ? value.replace(specialGlobal, (ch) => escapes[ch] as string) : value;
      else if (Buffer.isBuffer(value)) field = `\\\\x${value.toString('hex')}`;
      else field = String(value);
      line = c === 0 ? field : `${line}\t${field}`;
    }
    lines[r] = line;
  }
  return `${lines.join('\n')}\n`;
}
