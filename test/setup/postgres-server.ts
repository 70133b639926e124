// Vitest globalSetup: a throw-away PostgreSQL server for the test run (issue 14). It initdb's a cluster
// in a temp dir, starts it on a free port (unix socket in the same dir), exposes its URL as
// VPPD_TEST_POSTGRES_URL to every test file, and stops and deletes it after the run. Tests that run
// on PostgreSQL create their own database on it (test/helpers/storage-engines.ts).
//
// No PostgreSQL server binaries, or a server that does not start, FAILS the run: the PostgreSQL
// suites are never skipped silently. The binaries come from Debian's `postgresql` package (any major
// version from 13 on; `.ci/run` installs it when missing), found with `pg_config --bindir`, in
// /usr/lib/postgresql/<version>/bin, or where VPPD_TEST_PG_BIN says.
//
// initdb and postgres refuse to run as root. As root, the server runs as the unprivileged `postgres`
// user (or `nobody`) through `runuser`, and its temp dir is handed to that user.
//
// The server also accepts TLS, with a throw-away self-signed certificate naming only the host
// `vppd-test-db` (not 127.0.0.1): the sslmode tests can tell verify-ca from verify-full. Its PEM file is
// at VPPD_TEST_POSTGRES_CA.

import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSelfSignedCertificate } from '../helpers/tls.js';

const superuser = 'vppd_test';

function findBinDir(): string {
  const candidates: string[] = [];
  if (process.env.VPPD_TEST_PG_BIN) candidates.push(process.env.VPPD_TEST_PG_BIN);
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch {
    // not on PATH (Debian keeps the server's binaries out of it)
  }
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(join(root, v, 'bin'));
  }
  const found = candidates.find((dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')));
  if (found === undefined) {
    throw new Error(
      'PostgreSQL server binaries (initdb, pg_ctl) not found: install them (Debian: apt-get install postgresql) or set VPPD_TEST_PG_BIN. The PostgreSQL test suites cannot run without them.',
    );
  }
  return found;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** The user the server runs as: this one, or an unprivileged one when this is root. */
function serverUser(): { name: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    const result = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    if (result.status === 0) {
      const gid = Number(spawnSync('id', ['-g', name], { encoding: 'utf8' }).stdout.trim());
      return { name, uid: Number(result.stdout.trim()), gid };
    }
  }
  throw new Error('running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as');
}

export default async function setup(): Promise<() => Promise<void>> {
  return (await startPostgresServer()).stop;
}

/** A started throw-away server: its stop, and its data directory (`postmaster.pid` names its process). */
export interface PostgresServer {
  readonly stop: () => Promise<void>;
  readonly dataDir: string;
}

/**
 * Starts the throw-away server; `extraOptions` are more `-c name=value` settings (the scale-out bench
 * loads pg_stat_statements to count each sync's statements).
 */
export async function startPostgresServer(extraOptions: readonly string[] = []): Promise<PostgresServer> {
  const bin = findBinDir();
  const user = serverUser();
  const dir = mkdtempSync(join(tmpdir(), 'vppd-pg-'));
  const data = join(dir, 'data');
  const socketDir = join(dir, 'socket');
  mkdirSync(socketDir);
  if (user) {
    chownSync(dir, user.uid, user.gid);
    chownSync(socketDir, user.uid, user.gid);
  }
  const run = (command: string, args: string[]) => {
    const [file, argv] = user
      ? ['runuser', ['-u', user.name, '--', join(bin, command), ...args]]
      : [join(bin, command), args];
    const result = spawnSync(file, argv, {
      encoding: 'utf8',
      cwd: dir,
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      timeout: 120_000,
    });
    if (result.status !== 0) {
      throw new Error(
        `PostgreSQL test server: ${command} failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}${logTail(dir)}`,
      );
    }
  };
  const port = await freePort();
  // C locale: byte-order text and ASCII-only case folding, like vppd's columns (collate "C") anyway.
  run('initdb', ['-D', data, '-U', superuser, '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync']);
  const tls = await createSelfSignedCertificate({ ipAddresses: [], dnsNames: ['vppd-test-db'] });
  const certFile = join(dir, 'server.crt');
  const keyFile = join(dir, 'server.key');
  const caFile = join(dir, 'ca.pem');
  writeFileSync(certFile, tls.cert);
  writeFileSync(keyFile, tls.key, { mode: 0o600 });
  writeFileSync(caFile, tls.cert);
  if (user) {
    chownSync(certFile, user.uid, user.gid);
    chownSync(keyFile, user.uid, user.gid);
  }
  chmodSync(caFile, 0o644);
  // Durability off (a crash loses a throw-away cluster); enough connections for every test worker's pools.
  const options = [
    '-c ssl=on',
    `-c ssl_cert_file=${certFile}`,
    `-c ssl_key_file=${keyFile}`,
    `-p ${port}`,
    `-k ${socketDir}`,
    "-c listen_addresses='127.0.0.1'",
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=400',
    ...extraOptions.map((o) => `-c ${o}`),
  ].join(' ');
  run('pg_ctl', ['start', '-D', data, '-w', '-t', '60', '-l', join(dir, 'server.log'), '-o', options]);
  const url = `postgres://${superuser}@127.0.0.1:${port}/postgres`;
  process.env.VPPD_TEST_POSTGRES_URL = url;
  process.env.VPPD_TEST_POSTGRES_CA = caFile;
  let stopped = false;
  const stop = (mode: 'fast' | 'immediate') => {
    if (stopped) return;
    stopped = true;
    try {
      run('pg_ctl', ['stop', '-D', data, '-m', mode, '-w', '-t', '60']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  // pg_ctl leaves the server running on its own: should the run end without its teardown (a crash, an
  // interrupted run), stop it on the way out rather than leave it behind.
  process.once('exit', () => {
    try {
      stop('immediate');
    } catch {
      // nothing more to do while exiting
    }
  });
  return { stop: async () => stop('fast'), dataDir: data };
}

function logTail(dir: string): string {
  try {
    return `\nserver log:\n${readFileSync(join(dir, 'server.log'), 'utf8').slice(-4000)}`;
  } catch {
    return '';
  }
}
