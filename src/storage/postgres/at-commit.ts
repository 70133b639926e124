import { createRequire } from 'node:module';
import type pg from 'pg';
import { answerNotNeededComment } from '../answer-not-needed.js';

/** pg's own conversion of a parameter to the text it sends (not in its type declarations). */
const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils') as {
  prepareValue: (value: unknown) => unknown;
};

/**
 * Statements sent with the commit. A transaction's event append (event-append.ts) takes its tenant's
 * `event_heads` row lock and holds it until the transaction ends, so every other append of the tenant,
 * on every replica, waits for it. Run as its own statement, the lock is held for the answer's way back
 * to the process, that process's event loop getting to it (busy with the other syncs' pages), and the
 * COMMIT's way to the server: with three worker replicas syncing one tenant's tokens on a loaded 2-core
 * machine, 57 ms of server time per sync was spent waiting for that lock (`npm run bench -- scaleout`).
 * A statement queried as {@link atCommitMarker} inside a transaction is held back instead and sent with
 * the COMMIT as one simple Query (`…; commit`): the lock is then held only while the server runs it and
 * commits. Its pg_notify calls travel with it.
 *
 * Only for statements whose answer the transaction does not need: it gets back the {@link AtCommit}'s
 * expected count at once. Any other statement of the transaction sends what is held first, so the
 * order of statements never changes. A held statement that fails fails the COMMIT (the server skips
 * the rest of the Query), and the transaction is rolled back as for any failed commit. Outside a
 * transaction a marked statement runs at once.
 *
 * A transaction's BEGIN is held the same way and sent in one Query with its first statement, whose
 * parameters are then written into the text as literals ({@link inlineParameters}: the text form pg
 * sends them in, quoted as untyped literals, which the server resolves exactly as untyped parameters).
 * A transaction's claim, the start of a run and a sync's commit each save a round trip. A first
 * statement that is not worth inlining (many or large values, a COPY) is sent after the BEGIN as before;
 * a transaction that ends before sending anything never reaches the server.
 *
 * A write marked as needing no answer (answer-not-needed.ts) is held too, inlined the same way, and sent
 * with the transaction's next statement or its COMMIT: no round trip of its own.
 *
 * The pool's clients are wrapped when they connect (dialect.ts), after copy-from.ts's wrapper.
 */
export const atCommitMarker = '/* vppd at commit */';

/** A statement for {@link atCommitMarker}: SQL with its values as literals (no parameters in a simple Query). */
export interface AtCommit {
  readonly text: string;
  /** What the statement is expected to answer: command tag and row count. */
  readonly command: 'INSERT' | 'SELECT';
  readonly rowCount: number;
}

type Query = (...args: unknown[]) => unknown;

const beginsTransaction = /^\s*(begin|start\s+transaction)\b/i;

/** The answer of a Query's last statement: pg answers a multi-statement Query with one result per statement. */
export function lastResult<R>(results: R | readonly R[]): R {
  return Array.isArray(results) ? (results[results.length - 1] as R) : (results as R);
}

/** Makes `client` hold {@link atCommitMarker} statements for its transaction's COMMIT, and its BEGIN for the first statement. */
export function enableAtCommit(client: pg.PoolClient): void {
  const query = client.query.bind(client) as Query;
  let inTransaction = false;
  let held: string[] = [];
  /** The transaction's BEGIN (its text: an isolation level stays with it) while not yet sent. */
  let begin: string | undefined;
  /** What is held, BEGIN first, as the start of one Query (empty when nothing is). */
  const take = () => {
    const parts = begin === undefined ? held : [begin, ...held];
    begin = undefined;
    held = [];
    return parts.join(';\n');
  };
  (client as unknown as { query: Query }).query = (...args: unknown[]) => {
    const [text, values] = args;
    if (text === atCommitMarker) {
      const statement = (values as readonly AtCommit[])[0] as AtCommit;
      if (!inTransaction) return query(statement.text);
      held.push(statement.text);
      return Promise.resolve({
        command: statement.command,
        rowCount: statement.rowCount,
        rows: [],
        fields: [],
      });
    }
    const plain =
      typeof text === 'string' && args.length <= 2 && (values === undefined || Array.isArray(values));
    if (plain && inTransaction && text.endsWith(answerNotNeededComment)) {
      // A write whose answer is not read (answer-not-needed.ts): held for the next statement's Query.
      const inline = inlineParameters(text, (values ?? []) as readonly unknown[]);
      if (inline !== undefined) {
        held.push(inline);
        const command = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? 'UPDATE';
        return Promise.resolve({ command, rowCount: 0, rows: [], fields: [] });
      }
    }
    if (plain && !inTransaction && beginsTransaction.test(text)) {
      if (values === undefined || values.length === 0) {
        inTransaction = true;
        held = [];
        begin = text;
        return Promise.resolve({ command: 'BEGIN', rowCount: null, rows: [], fields: [] });
      }
    }
    if (typeof text === 'string') {
      if (beginsTransaction.test(text)) {
        inTransaction = true;
        held = [];
        begin = undefined;
      } else if (/^\s*(commit|end)\s*;?\s*$/i.test(text)) {
        inTransaction = false;
        if (begin !== undefined && held.length === 0) {
          // Nothing was sent: the transaction never reached the server, and has nothing to commit.
          begin = undefined;
          return Promise.resolve({ command: 'COMMIT', rowCount: null, rows: [], fields: [] });
        }
        // One Query: the held statements, then the commit.
        if (begin !== undefined || held.length > 0)
          return (query(`${take()};\ncommit`) as Promise<unknown>).then(lastResult);
      } else if (/^\s*(rollback|abort)\s*;?\s*$/i.test(text)) {
        inTransaction = false;
        held = [];
        if (begin !== undefined) {
          begin = undefined;
          return Promise.resolve({ command: 'ROLLBACK', rowCount: null, rows: [], fields: [] });
        }
      }
    }
    if (begin !== undefined || held.length > 0) {
      // Anything else in the transaction runs after what is held, in the order it was asked: in the
      // same Query when its values can be written into it, else right after.
      const inline = plain
        ? inlineParameters(text as string, (values ?? []) as readonly unknown[])
        : undefined;
      if (inline !== undefined) return (query(`${take()};\n${inline}`) as Promise<unknown>).then(lastResult);
      return (query(take()) as Promise<unknown>).then(() => query(...args));
    }
    return query(...args);
  };
}

/** Statements with more values than this (bulk writes) are not inlined: sent after the BEGIN instead. */
const maxInlinedValues = 64;
const maxInlinedLength = 16_384;

/**
 * `text` with its `$n` parameters replaced by `values` as literals, or undefined when it is not worth it
 * (more than {@link maxInlinedValues} values or {@link maxInlinedLength} characters of them, or a value
 * pg would send other than as text). Each value is converted as pg converts a parameter
 * (`prepareValue`: arrays to array literals, dates, objects to JSON) and written as an untyped string
 * literal, or NULL: the server gives it the type the context needs, as it does an untyped parameter.
 * Bytes become their hex text (`\x…`), bytea's input form. `$n` inside quotes, identifiers, comments and
 * dollar-quoted strings is left alone. Declined too when a value is never referred to: then it is not a
 * parameter but another wrapper's payload (copy-from.ts's COPY).
 */
export function inlineParameters(text: string, values: readonly unknown[]): string | undefined {
  if (values.length === 0) return text;
  if (values.length > maxInlinedValues) return undefined;
  const literals: string[] = [];
  let length = 0;
  for (const value of values) {
    const prepared = prepareValue(value) as unknown;
    let written: string;
    if (prepared === null) written = 'NULL';
    else if (Buffer.isBuffer(prepared)) written = literal(`\\x${prepared.toString('hex')}`);
    else if (typeof prepared === 'string') written = literal(prepared);
    else return undefined;
    length += written.length;
    if (length > maxInlinedLength) return undefined;
    literals.push(written);
  }
  let out = '';
  const used = new Set<number>();
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    const next = text[i + 1];
    let end = i + 1;
    if (c === "'" || c === '"') {
      end = text.indexOf(c, i + 1);
      // A doubled quote inside is two quoted runs back to back: copied as they are.
      if (end < 0) return undefined;
      end++;
    } else if (c === '-' && next === '-') {
      end = text.indexOf('\n', i);
      if (end < 0) end = text.length;
    } else if (c === '/' && next === '*') {
      end = text.indexOf('*/', i + 2);
      if (end < 0) return undefined;
      end += 2;
    } else if (c === '$') {
      const number = /^\$(\d+)/.exec(text.slice(i, i + 12));
      if (number !== null) {
        const index = Number(number[1]) - 1;
        const written = literals[index];
        if (written === undefined) return undefined;
        used.add(index);
        out += written;
        i += number[0].length;
        continue;
      }
      const tag = /^\$[A-Za-z_]?[A-Za-z_0-9]*\$/.exec(text.slice(i, i + 64));
      if (tag !== null) {
        end = text.indexOf(tag[0], i + tag[0].length);
        if (end < 0) return undefined;
        end += tag[0].length;
      }
    }
    out += text.slice(i, end);
    i = end;
  }
  // A value the text never refers to is not a parameter (a marker's payload, copy-from.ts): declined.
  return used.size === values.length ? out : undefined;
}

/**
 * A value as a PostgreSQL literal for a statement of {@link AtCommit}: text as an escape string
 * (`E'…'`, quotes and backslashes doubled: the same whatever `standard_conforming_strings` says),
 * integers as they are, null as NULL. Arrays of text as `ARRAY[…]::text[]`.
 */
export function literal(value: string | number | null | readonly string[]): string {
  if (value === null) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`not an integer literal: ${value}`);
    return String(value);
  }
  if (typeof value === 'string') return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
  return `ARRAY[${value.map((v) => literal(v)).join(',')}]::text[]`;
}
