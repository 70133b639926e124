import { createHash } from 'node:crypto';
import { type Kysely, type RawBuilder, sql } from 'kysely';
import { errors } from '../domain/errors.js';
import type { DatabaseSchema } from './database-schema.js';
import type { StorageEngine, StoredTable } from './engine.js';
import { storageMigrations } from './migrations/storage-migrations.js';
import { migrateToLatest, migrationTableNames } from './open-database.js';

/** What `vppd db copy` did to one table. */
export interface TableCopy {
  readonly table: string;
  readonly rows: number;
  /** sha256 (hex) of the table's rows in key order, the same on both sides. */
  readonly checksum: string;
  /** Serial-key columns whose sequence was moved past the copied keys. */
  readonly serialKeys: readonly string[];
}

export interface DatabaseCopyResult {
  /** The schema version both databases are at (the last migration's name). */
  readonly migration: string;
  /** Migrations applied to the target before the rows were copied. */
  readonly migratedTarget: readonly string[];
  /** In the order the tables were copied (referenced tables first). */
  readonly tables: readonly TableCopy[];
}

export interface DatabaseCopyOptions {
  /** Rows read and inserted per statement (default 500). */
  readonly batchRows?: number;
  /** Told when a table's rows are in the target (before the verification and the commit). */
  readonly onTableCopied?: (table: string, rows: number) => void;
}

const bookkeeping = new Set<string>([migrationTableNames.migrations, migrationTableNames.lock]);

/**
 * Copies every table of `source` into the empty database `target` (any engines): `vppd db copy`.
 *
 * - The source is held with {@link StorageEngine.readExclusively} for the whole copy: refused while
 *   another connection (a running vppd) has it open, and nobody writes to it until the copy ends.
 * - The source's schema must be exactly this vppd's (every migration applied, none unknown); the
 *   target must hold no row outside the migrator's bookkeeping. The target is migrated to the same
 *   version first (as `vppd serve` would), then the rows are copied in one transaction.
 * - The tables come from the migrated schema's catalogue ({@link StorageEngine.describeTables}), not
 *   from a list: a table a later migration adds is copied with no change here. They are copied
 *   referenced tables first, in pages of `batchRows` ordered by their key, values as stored (sealed
 *   sTokens and webhook secrets byte for byte: the same `VPPD_ENCRYPTION_KEY` opens them).
 * - Serial keys are copied as they are and the target's sequences moved past them.
 * - Before the commit every table is read back from the target: its row count and the sha256 of its
 *   rows in key order (each row's values as canonical JSON) must equal the source's, else the
 *   transaction rolls back and nothing is left in the target but the empty schema.
 */
export async function copyDatabase(
  source: StorageEngine,
  target: StorageEngine,
  options: DatabaseCopyOptions = {},
): Promise<DatabaseCopyResult> {
  const batchRows = options.batchRows ?? 500;
  const known = Object.keys(storageMigrations(source.ddl)).sort();
  const latest = known[known.length - 1] ?? '';
  return source.readExclusively(async (from) => {
    const sourceTables = await source.describeTables(from);
    await checkSourceSchema(from, sourceTables, known);
    await checkTargetEmpty(target, known);
    const migratedTarget = await migrateToLatest(target);
    const targetTables = new Map((await target.describeTables()).map((t) => [t.name, t]));
    const tables = copyOrder(sourceTables.filter((t) => !bookkeeping.has(t.name)));
    for (const table of tables) {
      const there = targetTables.get(table.name);
      const missing = table.columns.find((c) => !there?.columns.some((t) => t.name === c.name));
      if (there === undefined || missing !== undefined) {
        throw errors.conflict(
          `the target's schema differs from the source's at ${table.name}${missing ? `.${missing.name}` : ''} although both are at ${latest}`,
        );
      }
    }
    const extra = [...targetTables.keys()].find(
      (n) => !bookkeeping.has(n) && !tables.some((t) => t.name === n),
    );
    if (extra !== undefined)
      throw errors.conflict(`the target has a table ${extra} the source does not have`);

    const copied = await target.db.transaction().execute(async (trx) => {
      const into = trx as unknown as Kysely<DatabaseSchema>;
      const nonEmpty = await firstNonEmpty(
        into,
        tables.map((t) => t.name),
      );
      if (nonEmpty !== undefined) throw notEmpty(nonEmpty);
      const results: TableCopy[] = [];
      for (const table of tables) {
        const insert = target.bulkInsert({
          table: table.name as keyof DatabaseSchema & string,
          columns: table.columns.map((c) => ({ name: c.name, type: c.type })),
          maxRows: batchRows,
          explicitSerialKeys: table.columns.some((c) => c.serial),
        });
        const digest = await readTable(from, table, batchRows, (values) => insert(trx, values));
        const serialKeys = (targetTables.get(table.name)?.columns ?? [])
          .filter((c) => c.serial)
          .map((c) => c.name);
        for (const column of serialKeys) await target.resetSerialKey(trx, table.name, column);
        options.onTableCopied?.(table.name, digest.rows);
        results.push({ table: table.name, rows: digest.rows, checksum: digest.checksum, serialKeys });
      }
      for (const [i, table] of tables.entries()) {
        const expected = results[i] as TableCopy;
        const [sourceCount, targetCount] = await Promise.all([
          countRows(from, table.name),
          countRows(into, table.name),
        ]);
        const written = await readTable(into, table, batchRows, async () => {});
        if (
          sourceCount !== expected.rows ||
          targetCount !== expected.rows ||
          written.rows !== expected.rows
        ) {
          throw errors.internal(
            `copy of ${table.name} failed verification: ${expected.rows} rows read, source counts ${sourceCount}, target ${targetCount}; nothing was committed`,
          );
        }
        if (written.checksum !== expected.checksum) {
          throw errors.internal(
            `copy of ${table.name} failed verification: checksum ${written.checksum.slice(0, 12)} in the target, ${expected.checksum.slice(0, 12)} in the source; nothing was committed`,
          );
        }
      }
      return results;
    });
    return { migration: latest, migratedTarget, tables: copied };
  });
}

async function checkSourceSchema(
  db: Kysely<DatabaseSchema>,
  tables: readonly StoredTable[],
  known: readonly string[],
): Promise<void> {
  if (!tables.some((t) => t.name === migrationTableNames.migrations)) {
    throw errors.badRequest(
      `the source is not a vppd database (it has no ${migrationTableNames.migrations} table)`,
    );
  }
  const applied = await appliedMigrations(db);
  const unknown = applied.find((m) => !known.includes(m));
  if (unknown !== undefined) {
    throw errors.conflict(
      `the source database has migration ${unknown}, which this vppd does not know: copy it with the vppd version that wrote it`,
    );
  }
  const missing = known.find((m) => !applied.includes(m));
  if (missing !== undefined) {
    throw errors.conflict(
      `the source database's schema is older than this vppd's (migration ${missing} not applied): run this vppd on it once first (vppd serve migrates it at start-up), then copy`,
    );
  }
}

async function checkTargetEmpty(target: StorageEngine, known: readonly string[]): Promise<void> {
  const tables = await target.describeTables();
  const data = tables.filter((t) => !bookkeeping.has(t.name)).map((t) => t.name);
  const nonEmpty = await firstNonEmpty(target.db, data);
  if (nonEmpty !== undefined) throw notEmpty(nonEmpty);
  if (tables.some((t) => t.name === migrationTableNames.migrations)) {
    const unknown = (await appliedMigrations(target.db)).find((m) => !known.includes(m));
    if (unknown !== undefined) {
      throw errors.conflict(`the target database has migration ${unknown}, which this vppd does not know`);
    }
  }
}

function notEmpty(table: string) {
  return errors.conflict(
    `the target database is not empty (table ${table} has rows): copy into an empty database`,
  );
}

async function appliedMigrations(db: Kysely<DatabaseSchema>): Promise<string[]> {
  const { rows } = await sql<{
    name: string;
  }>`select name from ${sql.id(migrationTableNames.migrations)}`.execute(db);
  return rows.map((r) => r.name);
}

async function firstNonEmpty(
  db: Kysely<DatabaseSchema>,
  tables: readonly string[],
): Promise<string | undefined> {
  for (const table of tables) {
    const { rows } = await sql`select 1 as one from ${sql.id(table)} limit 1`.execute(db);
    if (rows.length > 0) return table;
  }
  return undefined;
}

async function countRows(db: Kysely<DatabaseSchema>, table: string): Promise<number> {
  const { rows } = await sql<{ n: number | string }>`select count(*) as n from ${sql.id(table)}`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

/**
 * The tables in an order where each comes after every table its foreign keys reference (by name
 * among those ready, so the order is stable); a cycle of foreign keys is refused.
 */
export function copyOrder(tables: readonly StoredTable[]): StoredTable[] {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const done = new Set<string>();
  const ordered: StoredTable[] = [];
  while (ordered.length < tables.length) {
    const ready = tables
      .filter((t) => !done.has(t.name))
      .filter((t) => t.references.every((r) => r === t.name || done.has(r) || !byName.has(r)))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const next = ready[0];
    if (next === undefined) {
      const left = tables.filter((t) => !done.has(t.name)).map((t) => t.name);
      throw errors.notSupported(
        `the foreign keys of ${left.join(', ')} form a cycle: db copy cannot order them`,
      );
    }
    done.add(next.name);
    ordered.push(next);
  }
  return ordered;
}

/**
 * Reads `table` in key order, a page of `batchRows` at a time (keyset paging on the key; a table
 * without a key is read whole, ordered by every column), hands each page to `page` as one flat array
 * of values (column order) and returns the row count and the sha256 of the rows' canonical JSON.
 */
async function readTable(
  db: Kysely<DatabaseSchema>,
  table: StoredTable,
  batchRows: number,
  page: (values: unknown[]) => Promise<void>,
): Promise<{ rows: number; checksum: string }> {
  const hash = createHash('sha256');
  const names = table.columns.map((c) => c.name);
  const columns = sql.join(names.map((n) => sql.id(n)));
  const keyed = table.key.length > 0;
  const order: RawBuilder<unknown> = keyed
    ? sql.join(table.key.map((k) => sql.id(k)))
    : sql.join(names.map((n) => sql`${sql.id(n)} nulls first`));
  const keyIndexes = table.key.map((k) => names.indexOf(k));
  let after: unknown[] | undefined;
  let count = 0;
  for (;;) {
    const where =
      after === undefined
        ? sql``
        : sql`where (${sql.join(table.key.map((k) => sql.id(k)))}) > (${sql.join(after.map((v) => sql`${v}`))})`;
    const limit = keyed ? sql`limit ${sql.lit(batchRows)}` : sql``;
    const { rows } = await sql<Record<string, unknown>>`
      select ${columns} from ${sql.id(table.name)} ${where} order by ${order} ${limit}`.execute(db);
    if (rows.length === 0) break;
    const values: unknown[] = new Array(rows.length * names.length);
    let v = 0;
    for (const row of rows) {
      const line: unknown[] = new Array(names.length);
      for (const [i, name] of names.entries()) {
        const value = row[name] ?? null;
        values[v++] = value;
        line[i] = canonical(value);
      }
      hash.update(JSON.stringify(line));
      hash.update('\n');
    }
    count += rows.length;
    await page(values);
    if (!keyed || rows.length < batchRows) break;
    const last = rows[rows.length - 1] as Record<string, unknown>;
    after = keyIndexes.map((i) => last[names[i] as string]);
  }
  return { rows: count, checksum: hash.digest('hex') };
}

/** A stored value as JSON the same on every engine: bytes as hex, 64-bit integers as numbers. */
function canonical(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return { bytes: value.toString('hex') };
  if (typeof value === 'bigint') return Number(value);
  return value;
}
