// `--database sqlite|postgres|postgres://…` of the benchmarks: where each run's fresh database lives.
// `sqlite` (default): a file in the run's temp dir. `postgres`: a throw-away local server started like the
// tests' (test/setup/postgres-server.ts: fsync and synchronous_commit off, so commits cost no disk flush —
// SQLite's WAL with synchronous=NORMAL does not flush on commit either). `postgres://…`: databases created
// on that server (the URL's user needs CREATEDB).

import { join } from 'node:path';
import { createPostgresDatabase } from '../test/helpers/storage-engines.js';
import { startPostgresServer } from '../test/setup/postgres-server.js';

export interface BenchDatabase {
  /** For the report line. */
  readonly label: string;
  /** A database URL for one run: a new database (`dir` holds a SQLite file). */
  fresh(dir: string): Promise<string>;
  close(): Promise<void>;
  /** The throw-away server's data directory (`postmaster.pid`), when this bench started one. */
  readonly serverDataDir?: string;
}

/** `serverOptions`: more `name=value` settings of a throw-away server (not applied to a given one). */
export async function benchDatabase(
  option: string | undefined,
  serverOptions: readonly string[] = [],
): Promise<BenchDatabase> {
  if (option === undefined || option === 'sqlite') {
    return {
      label: 'SQLite file',
      fresh: async (dir) => `sqlite:${join(dir, 'vppd.db')}`,
      close: async () => {},
    };
  }
  if (option === 'postgres') {
    const server = await startPostgresServer(serverOptions);
    return {
      label: 'PostgreSQL (throw-away local server over TCP, durability off)',
      fresh: () => createPostgresDatabase(),
      close: server.stop,
      serverDataDir: server.dataDir,
    };
  }
  if (option.startsWith('postgres://') || option.startsWith('postgresql://')) {
    process.env.VPPD_TEST_POSTGRES_URL = option;
    return {
      label: 'PostgreSQL (given server)',
      fresh: () => createPostgresDatabase(),
      close: async () => {},
    };
  }
  throw new Error('--database is sqlite, postgres or a postgres:// URL');
}
