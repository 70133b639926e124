import { type Kysely, type Migration, sql } from 'kysely';
import type { EngineDdl } from '../engine.js';

// Column types come from the engine's DDL (storage/engine.ts): the same migration runs on SQLite and
// PostgreSQL, and writes on SQLite exactly the DDL it wrote before the engines were split. A plain table with a unique key: on SQLite a rowid table, whose leaves hold a chunk's ~2 KB of text
// inline (a WITHOUT ROWID table keeps at most ~1 KB of a row in its B-tree and the rest on overflow
// pages, which measured ~40% slower to write).
/**
 * A run's assignments stored in chunks of up to 128 licenses of one asset instead of one row per
 * license (storage/assignment-chunks.ts has the format). Staging 200,000 licenses took ~250 ms of
 * SQLite work as rows, more than fetching and parsing them from Apple; as ~2,100 chunks it takes
 * ~80 ms (grouping and JSON included). The rows of `license_assignments` are converted (every run's, so the current snapshots keep
 * serving the same licenses) and the table is dropped.
 */
export const licenseAssignmentChunks = (ddl: EngineDdl): Migration => ({
  async up(db: Kysely<unknown>) {
    const runKey = ddl.serialKey;
    await db.schema
      .createTable('license_assignment_chunks')
      .addColumn('run_key', runKey.type, (c) =>
        c.notNull().references('license_runs.run_key').onDelete('cascade'),
      )
      .addColumn('adam_id', ddl.text, (c) => c.notNull())
      .addColumn('pricing_param', ddl.text, (c) => c.notNull())
      .addColumn('first_seq', 'integer', (c) => c.notNull())
      .addColumn('last_seq', 'integer', (c) => c.notNull())
      .addColumn('holder_count', 'integer', (c) => c.notNull())
      .addColumn('seqs', ddl.text, (c) => c.notNull())
      .addColumn('holders', ddl.text, (c) => c.notNull())
      .addUniqueConstraint('license_assignment_chunks_key', [
        'run_key',
        'adam_id',
        'pricing_param',
        'first_seq',
      ])
      .execute();
    await convertAssignmentRows(db);
    await db.schema.dropTable('license_assignments').execute();
  },
});

interface OldRow {
  run_key: number | string;
  adam_id: string;
  pricing_param: string;
  seq: number | string;
  serial_number: string | null;
  client_user_id: string | null;
}

// The chunk format as of this migration, written out here rather than imported: a shipped
// migration must keep producing what the code of its time read, whatever the code becomes.
const chunkSize = 128;

/**
 * Reads the old rows in key order (run, asset, seq), a keyset page at a time, and writes each
 * asset's licenses as chunks of up to 128.
 */
async function convertAssignmentRows(db: Kysely<unknown>): Promise<void> {
  let after: OldRow | undefined;
  let open:
    | {
        runKey: number;
        adamId: string;
        pricingParam: string;
        seqs: number[];
        kinds: number[];
        holders: string[];
      }
    | undefined;
  let pending: Record<string, unknown>[] = [];
  const writePending = async () => {
    for (let i = 0; i < pending.length; i += 200) {
      await (db as Kysely<{ license_assignment_chunks: Record<string, unknown> }>)
        .insertInto('license_assignment_chunks')
        .values(pending.slice(i, i + 200))
        .execute();
    }
    pending = [];
  };
  const close = () => {
    if (open === undefined || open.seqs.length === 0) return;
    // [start, length, kind] triples: kind 0 a device (serial number), 1 a user (clientUserId).
    const runs: number[] = [];
    let start = open.seqs[0] as number;
    let kind = open.kinds[0] as number;
    let length = 1;
    for (let i = 1; i < open.seqs.length; i++) {
      const seq = open.seqs[i] as number;
      if (seq === start + length && open.kinds[i] === kind) length++;
      else {
        runs.push(start, length, kind);
        start = seq;
        kind = open.kinds[i] as number;
        length = 1;
      }
    }
    runs.push(start, length, kind);
    pending.push({
      run_key: open.runKey,
      adam_id: open.adamId,
      pricing_param: open.pricingParam,
      first_seq: open.seqs[0],
      last_seq: open.seqs[open.seqs.length - 1],
      holder_count: open.seqs.length,
      seqs: JSON.stringify(runs),
      holders: JSON.stringify(open.holders),
    });
    open = undefined;
  };
  for (;;) {
    const previous = after;
    const { rows } = await sql<OldRow>`
      select run_key, adam_id, pricing_param, seq, serial_number, client_user_id
      from license_assignments
      ${
        previous === undefined
          ? sql``
          : sql`where (run_key, adam_id, pricing_param, seq) > (${previous.run_key}, ${previous.adam_id}, ${previous.pricing_param}, ${previous.seq})`
      }
      order by run_key, adam_id, pricing_param, seq
      limit 10000`.execute(db);
    if (rows.length === 0) break;
    for (const row of rows) {
      const runKey = Number(row.run_key);
      if (
        open === undefined ||
        open.runKey !== runKey ||
        open.adamId !== row.adam_id ||
        open.pricingParam !== row.pricing_param ||
        open.seqs.length >= chunkSize
      ) {
        close();
        open = {
          runKey,
          adamId: row.adam_id,
          pricingParam: row.pricing_param,
          seqs: [],
          kinds: [],
          holders: [],
        };
      }
      open.seqs.push(Number(row.seq));
      open.kinds.push(row.serial_number !== null ? 0 : 1);
      open.holders.push(row.serial_number ?? row.client_user_id ?? '');
    }
    after = rows[rows.length - 1];
    if (pending.length >= 1000) await writePending();
  }
  close();
  await writePending();
}
