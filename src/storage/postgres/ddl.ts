import { sql } from 'kysely';
import type { EngineDdl } from '../engine.js';

// Byte-order text: the "C" collation compares code points (UTF-8 bytes) like SQLite's BINARY, whatever
// locale the database was created with, and folds case (lower/upper) for ASCII only, like SQLite.
const byteOrderText = sql`text collate "C"`;

/** PostgreSQL's spelling of vppd's column types (engine.ts says what each means). */
export const postgresDdl: EngineDdl = {
  text: byteOrderText,
  // ISO-8601 text, not timestamptz: the same bytes round-trip on both engines and compare as text.
  timestamp: byteOrderText,
  // 0/1, not boolean: the row types, the stores and the OData compiler use 0/1 on every engine.
  boolean: 'integer',
  blob: 'bytea',
  bigint: 'bigint',
  serialKey: { type: 'bigint', build: (c) => c.primaryKey().generatedAlwaysAsIdentity() },
  // Heap tables only: the primary key is an index beside the table.
  clusteredByPrimaryKey: (table) => table,
};
