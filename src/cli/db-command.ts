import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { DatabaseConfig } from '../storage/open-database.js';
import { CliExit, usageError, usageExitCodes } from './cli-exit.js';
import type { CliIo } from './io.js';

interface CopyFlags {
  readonly from?: string;
  readonly to?: string;
}

/** `vppd db copy --from <url|path> --to <url>`: moves a vppd database to another (e.g. SQLite to PostgreSQL). */
export function registerDbCommand(program: Command, io: CliIo): void {
  const db = usageExitCodes(program.command('db').description('database maintenance'));
  usageExitCodes(db.command('copy'))
    .description(
      'copy every table of a stopped vppd database into an empty one (e.g. SQLite to PostgreSQL), verified by row counts and checksums, in one transaction',
    )
    .option(
      '--from <url>',
      'the source: sqlite:<path>, a file path, or postgres://… (no vppd may have it open)',
    )
    .option('--to <url>', 'the empty target: postgres://… (or sqlite:<path>)')
    .action(async (flags: CopyFlags) => {
      await runCopy(flags, io);
    });
}

async function runCopy(flags: CopyFlags, io: CliIo): Promise<void> {
  const { createStorageEngine, parseDatabaseUrl } = await import('../storage/open-database.js');
  const { copyDatabase } = await import('../storage/database-copy.js');
  const parse = (flag: string, value: string | undefined): DatabaseConfig => {
    if (value === undefined || value.trim() === '') usageError(io, `${flag}: required`);
    // A bare path is a SQLite file (`./data/vppd.db`).
    const url = /^(sqlite|postgres|postgresql):/.test(value) ? value : `sqlite:${value}`;
    let config: DatabaseConfig;
    try {
      config = parseDatabaseUrl(url, { poolSize: 2 });
    } catch (error) {
      usageError(io, `${flag}: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (config.kind === 'sqlite-memory') usageError(io, `${flag}: an in-memory database cannot be copied`);
    return config;
  };
  const from = parse('--from', flags.from);
  const to = parse('--to', flags.to);
  if (from.url === to.url) usageError(io, '--from and --to name the same database');
  // Opening a SQLite path creates the file: a mistyped source must not become an empty database.
  if (from.kind === 'sqlite' && !existsSync(from.filename)) {
    fail(io, `--from: ${from.filename} does not exist`);
  }

  const started = performance.now();
  const source = createStorageEngine(from);
  const target = createStorageEngine(to);
  try {
    const result = await copyDatabase(source, target);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const width = Math.max(5, ...result.tables.map((t) => t.table.length));
    const rows = result.tables.reduce((sum, t) => sum + t.rows, 0);
    const lines = [
      `vppd db copy: ${from.url} -> ${to.url}`,
      `schema ${result.migration}; target migrated with ${result.migratedTarget.length} migration(s) first`,
      `${'table'.padEnd(width)}  ${'rows'.padStart(9)}  sha256 (first 16)  serial keys reset`,
      ...result.tables.map(
        (t) =>
          `${t.table.padEnd(width)}  ${String(t.rows).padStart(9)}  ${t.checksum.slice(0, 16)}   ${t.serialKeys.join(', ') || '-'}`,
      ),
      `copied ${result.tables.length} tables, ${rows} rows in ${seconds} s: row counts and checksums match on both sides; committed`,
    ];
    io.stdout(`${lines.join('\n')}\n`);
  } catch (error) {
    fail(io, error instanceof Error ? error.message : String(error));
  } finally {
    await Promise.allSettled([source.close(), target.close()]);
  }
}

/** One line on stderr, exit 1. */
function fail(io: CliIo, message: string): never {
  io.stderr(`vppd: db copy: ${message.split('\n')[0]}\n`);
  throw new CliExit(1);
}
