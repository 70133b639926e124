import { CompiledQuery } from 'kysely';
import type { BulkInsert, BulkInsertSpec } from '../engine.js';

/**
 * A multi-row `insert … values (?, …), (?, …)` (with `on conflict … do update` for an upsert), its
 * text built once per row count: better-sqlite3's statement cache (sqlite/dialect.ts) then prepares
 * it once. SQLite applies the rows in order, so a key repeated in one statement keeps its last row.
 */
export function sqliteBulkInsert(spec: BulkInsertSpec): BulkInsert {
  const width = spec.columns.length;
  const head = `insert into ${quote(spec.table)} (${spec.columns.map((c) => quote(c.name)).join(', ')}) values `;
  const row = `(${new Array(width).fill('?').join(', ')})`;
  const tail =
    spec.onConflict === undefined
      ? ''
      : ` on conflict (${spec.onConflict.key.map(quote).join(', ')}) do update set ${spec.onConflict.update
          .map((c) => `${quote(c)} = "excluded".${quote(c)}`)
          .join(', ')}`;
  const texts = new Map<number, string>();
  const textFor = (rows: number): string => {
    let text = texts.get(rows);
    if (text === undefined) {
      text = head + new Array(rows).fill(row).join(', ') + tail;
      texts.set(rows, text);
    }
    return text;
  };
  const insert: BulkInsert = async (trx, values) => {
    if (values.length % width !== 0) throw new Error(`${spec.table} bulk insert: ragged parameters`);
    // Outside a transaction: one of its own (one commit, and all rows or none).
    if (!trx.isTransaction) return trx.transaction().execute((inner) => insert(inner, values));
    const step = spec.maxRows * width;
    for (let i = 0; i < values.length; i += step) {
      const parameters = i === 0 && values.length <= step ? values : values.slice(i, i + step);
      await trx.executeQuery(CompiledQuery.raw(textFor(parameters.length / width), parameters as unknown[]));
    }
  };
  return insert;
}

function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}
