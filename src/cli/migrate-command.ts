import type { Command } from 'commander';
import type { CliIo } from './io.js';

interface MigrateFlags {
  readonly database?: string;
}

/** What the migrate command takes from the process; injected so tests can run it in-process. */
export interface MigrateDependencies {
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/**
 * `vppd migrate`: applies the pending migrations of the database (`--database` or VPPD_DATABASE_URL)
 * under the same lock `serve` takes, prints one line saying what it applied, and exits. With
 * `VPPD_MIGRATE=off` on the servers, this is the one step that changes the schema (README, PostgreSQL).
 */
export function registerMigrateCommand(program: Command, io: CliIo, deps: MigrateDependencies = {}): void {
  program
    .command('migrate')
    .description('apply pending database migrations and exit (for VPPD_MIGRATE=off deployments)')
    .option(
      '--database <url>',
      'sqlite:<path> or postgres://… (env VPPD_DATABASE_URL, default sqlite:./data/vppd.db)',
    )
    .action(async (flags: MigrateFlags) => {
      const { defaultDatabaseUrl, readEnv, settingNames } = await import('../config.js');
      const { createStorageEngine, migrateToLatest, parseDatabaseUrl, readSchemaStatus } = await import(
        '../storage/open-database.js'
      );
      const { errors } = await import('../domain/errors.js');
      const raw = readEnv(deps.env ?? process.env);
      const url = flags.database ?? raw.database ?? defaultDatabaseUrl;
      let config: ReturnType<typeof parseDatabaseUrl>;
      try {
        config = parseDatabaseUrl(url, { poolSize: 1 });
      } catch (error) {
        throw errors.config(settingNames.database, error instanceof Error ? error.message : String(error));
      }
      const storage = createStorageEngine(config);
      try {
        const { unknown } = await readSchemaStatus(storage);
        if (unknown.length > 0) {
          throw new Error(
            `the database schema is newer than this vppd (migrations it does not know: ${unknown.join(', ')}); nothing applied`,
          );
        }
        const applied = await migrateToLatest(storage);
        io.stdout(
          applied.length === 0
            ? 'vppd: schema up to date; no migration to apply\n'
            : `vppd: applied ${applied.length} migration${applied.length === 1 ? '' : 's'}: ${applied.join(', ')}\n`,
        );
      } finally {
        await storage.close();
      }
    });
}
