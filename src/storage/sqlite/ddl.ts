import { sql } from 'kysely';
import type { EngineDdl } from '../engine.js';

/**
 * SQLite's spelling of vppd's column types. Every choice here reproduces the DDL the migrations wrote
 * before the engines were split, byte for byte, so existing databases and new ones are the same.
 */
export const sqliteDdl: EngineDdl = {
  // SQLite compares text with BINARY (memcmp of UTF-8: code point order) unless told otherwise.
  text: 'text',
  timestamp: 'text',
  boolean: 'integer',
  blob: 'blob',
  bigint: 'bigint',
  // The rowid itself; AUTOINCREMENT forbids reusing the key of a deleted row.
  serialKey: { type: 'integer', build: (c) => c.primaryKey().autoIncrement() },
  // One B-tree to write per row (the primary key's) instead of a rowid table plus a key index.
  clusteredByPrimaryKey: (table) => table.modifyEnd(sql`without rowid`),
};
