import { CompiledQuery } from 'kysely';
import type { BulkInsert, BulkInsertSpec } from '../engine.js';
import { type CopyPayload, copyMarker, copyText } from './copy-from.js';

/** PostgreSQL's limit of bound parameters per statement. */
const maxParameters = 65_535;

/**
 * How rows travel: one array parameter per column (`unnest`), one parameter per value (`values`), or
 * `COPY … FROM STDIN` in text format (`copy`; an upsert, which COPY cannot do, uses `values`).
 */
export type PostgresBulkStrategy = 'unnest' | 'values' | 'copy';

/**
 * A multi-row insert on PostgreSQL. Three ways, measured with `npm run bench -- storage-bulk` (a sync's
 * staging through the real LicenseStore: 1,000 assets and 200,000 licenses in 12,969 chunk rows of
 * ~2 KB; alternating rounds on the shared 2-core VM at load average 10-13, two runs of 5 and 7 rounds;
 * docs/architecture.md "Storage engines"):
 * - `copy` (the default): `copy … from stdin` in text format on the transaction's own connection, or
 *   as a statement of its own outside one (copy-from.ts), every row of a call in one message. Median 872 / 1,033 ms, vppd CPU 218 / 229 ms.
 *   Wins on both sides of the wire: the rows are one tab-separated string (only the rare backslash,
 *   tab or newline needs escaping: the chunks' JSON quotes do not), the server parses no statement,
 *   binds no parameter and plans nothing per row batch.
 * - `values`: `insert … values ($1, …), (…)`, one parameter per value, the text built once per row
 *   count, at most `maxRows` rows (and 65,535 parameters) per statement. Median 897 / 1,277 ms
 *   (1.03x / 1.24x of copy), CPU 229 / 262 ms. Upserts use it (COPY cannot update).
 * - `unnest`: `insert … select * from unnest($1::text[], $2::int8[], …)`, one array parameter per
 *   column. Median 1,268 / 1,153 ms, CPU 300 / 311 ms: the driver serializes each column into an
 *   array literal, escaping every quote of the chunks' JSON, and the server parses it back.
 *
 * An upsert's statement may not touch a row twice in PostgreSQL ("ON CONFLICT DO UPDATE command cannot
 * affect row a second time"), so rows repeating a key within one call are merged first into what
 * SQLite leaves when it applies them in order.
 */
export function postgresBulkInsert(
  spec: BulkInsertSpec,
  strategy: PostgresBulkStrategy = 'copy',
): BulkInsert {
  const width = spec.columns.length;
  const columns = spec.columns.map((c) => quote(c.name)).join(', ');
  const tail =
    spec.onConflict === undefined
      ? ''
      : ` on conflict (${spec.onConflict.key.map(quote).join(', ')}) do update set ${spec.onConflict.update
          .map((c) => `${quote(c)} = excluded.${quote(c)}`)
          .join(', ')}`;
  const indexOf = (name: string) => {
    const index = spec.columns.findIndex((c) => c.name === name);
    if (index < 0) throw new Error(`${spec.table} bulk insert: ${name} is not a column`);
    return index;
  };
  const keyIndexes = spec.onConflict?.key.map(indexOf) ?? [];
  const updateIndexes = spec.onConflict?.update.map(indexOf) ?? [];
  const maxRows = Math.max(1, Math.min(spec.maxRows, Math.floor(maxParameters / width)));

  // A copy gives identity keys itself; `generated always` refuses them without this clause.
  const head = `insert into ${quote(spec.table)} (${columns})${spec.explicitSerialKeys === true ? ' overriding system value' : ''}`;
  const unnestText = `${head} select * from unnest(${spec.columns
    .map((c, i) => `$${i + 1}::${arrayType[c.type]}`)
    .join(', ')})${tail}`;
  const valuesTexts = new Map<number, string>();
  const valuesText = (rows: number): string => {
    let text = valuesTexts.get(rows);
    if (text === undefined) {
      const tuples: string[] = [];
      for (let r = 0; r < rows; r++) {
        tuples.push(`(${Array.from({ length: width }, (_, c) => `$${r * width + c + 1}`).join(', ')})`);
      }
      text = `${head} values ${tuples.join(', ')}${tail}`;
      valuesTexts.set(rows, text);
    }
    return text;
  };

  const copyStatement = `copy ${quote(spec.table)} (${columns}) from stdin`;
  // COPY inserts only; identity values given are taken as they are (no `overriding` needed).
  const useCopy = strategy === 'copy' && spec.onConflict === undefined;

  const insert: BulkInsert = async (trx, input) => {
    if (input.length % width !== 0) throw new Error(`${spec.table} bulk insert: ragged parameters`);
    // A COPY is one statement (atomic, and run as an implicit transaction outside one); the other
    // strategies may need several, so outside a transaction they open one.
    if (!useCopy && !trx.isTransaction) return trx.transaction().execute((inner) => insert(inner, input));
    if (useCopy) {
      const rows = input.length / width;
      if (rows === 0) return;
      const payload: CopyPayload = {
        statement: copyStatement,
        data: copyText(input, width, 0, rows),
        rows,
        asynchronousCommit: spec.staging === true,
      };
      await trx.executeQuery(CompiledQuery.raw(copyMarker, [payload]));
      return;
    }
    const values = keyIndexes.length > 0 ? mergeRepeatedKeys(input, width, keyIndexes, updateIndexes) : input;
    const rows = values.length / width;
    // One array per column whatever the row count: unnest needs no split (values does).
    const perStatement = strategy === 'unnest' ? rows : maxRows;
    for (let first = 0; first < rows; first += perStatement) {
      const count = Math.min(perStatement, rows - first);
      if (strategy !== 'unnest') {
        const parameters = values.slice(first * width, (first + count) * width) as unknown[];
        await trx.executeQuery(CompiledQuery.raw(valuesText(count), parameters));
        continue;
      }
      const arrays: unknown[][] = Array.from({ length: width }, () => new Array<unknown>(count));
      for (let r = 0; r < count; r++) {
        const base = (first + r) * width;
        for (let c = 0; c < width; c++) (arrays[c] as unknown[])[r] = values[base + c];
      }
      await trx.executeQuery(CompiledQuery.raw(unnestText, arrays));
    }
  };
  return insert;
}

const arrayType: Record<BulkInsertSpec['columns'][number]['type'], string> = {
  text: 'text[]',
  integer: 'int4[]',
  bigint: 'int8[]',
  blob: 'bytea[]',
};

/**
 * The rows of `values` with one row per key: a repeated key's first row (in its place) with the
 * `update` columns of its last one — what SQLite's upsert leaves when it applies the rows in order.
 */
function mergeRepeatedKeys(
  values: readonly unknown[],
  width: number,
  keyIndexes: readonly number[],
  updateIndexes: readonly number[],
): readonly unknown[] {
  const rows = values.length / width;
  const firstRow = new Map<string, number>();
  let merged: unknown[] | undefined;
  let dropped: Set<number> | undefined;
  for (let r = 0; r < rows; r++) {
    const key = JSON.stringify(keyIndexes.map((k) => values[r * width + k]));
    const first = firstRow.get(key);
    if (first === undefined) {
      firstRow.set(key, r);
      continue;
    }
    merged ??= values.slice();
    dropped ??= new Set();
    dropped.add(r);
    for (const u of updateIndexes) merged[first * width + u] = values[r * width + u];
  }
  if (merged === undefined || dropped === undefined) return values;
  const kept: unknown[] = [];
  for (let r = 0; r < rows; r++) {
    if (dropped.has(r)) continue;
    for (let c = 0; c < width; c++) kept.push(merged[r * width + c]);
  }
  return kept;
}

function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}
