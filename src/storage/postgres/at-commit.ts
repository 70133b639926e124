import type pg from 'pg';

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

/** Makes `client` hold {@link atCommitMarker} statements for its transaction's COMMIT. */
export function enableAtCommit(client: pg.PoolClient): void {
  const query = client.query.bind(client) as Query;
  let inTransaction = false;
  let held: string[] = [];
  const take = () => {
    const text = held.join(';\n');
    held = [];
    return text;
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
    if (typeof text === 'string') {
      if (/^\s*(begin|start\s+transaction)\b/i.test(text)) {
        inTransaction = true;
        held = [];
      } else if (/^\s*(commit|end)\s*;?\s*$/i.test(text)) {
        inTransaction = false;
        if (held.length > 0) {
          // One Query: the held statements, then the commit. pg answers a multi-statement Query with
          // one result per statement.
          return (query(`${take()};\ncommit`) as Promise<unknown>).then((results) =>
            Array.isArray(results) ? results[results.length - 1] : results,
          );
        }
      } else if (/^\s*(rollback|abort)\s*;?\s*$/i.test(text)) {
        inTransaction = false;
        held = [];
      }
    }
    // Anything else in the transaction runs after what is held, in the order it was asked.
    if (held.length > 0) return (query(take()) as Promise<unknown>).then(() => query(...args));
    return query(...args);
  };
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
