import { once } from 'node:events';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import {
  demoTenantId,
  ensureDemoSecrets,
  mergeSettings,
  parseConfig,
  type RawSettings,
  readEnv,
} from '../config.js';
import { issueAccessToken } from '../graph/auth/issue-access-token.js';
import { startServer } from '../graph/start-server.js';
import type { CliIo } from './io.js';

interface ServeFlags {
  readonly port?: string;
  readonly host?: string;
  readonly database?: string;
  readonly appleUrl?: string;
  readonly syncInterval?: string;
  readonly role?: string;
  readonly demo?: boolean;
}

/** What the serve command takes from the process; injected so tests can run it in-process. */
export interface ServeDependencies {
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
  /** Aborted when the server should stop (default: on SIGTERM or SIGINT). */
  readonly stopSignal?: AbortSignal;
}

/** `vppd serve`: runs the API until SIGTERM/SIGINT, then drains and exits 0. */
export function registerServeCommand(program: Command, io: CliIo, deps: ServeDependencies = {}): void {
  program
    .command('serve')
    .description('serve the Graph-compatible API (and, later, the sync worker and dashboard)')
    .option('--port <port>', 'TCP port (env VPPD_PORT, default 8080)')
    .option('--host <host>', 'interface to listen on (env VPPD_HOST, default 127.0.0.1)')
    .option(
      '--database <url>',
      'sqlite:<path>, sqlite::memory: or postgres://… (env VPPD_DATABASE_URL, default sqlite:./data/vppd.db)',
    )
    .option(
      '--apple-url <url>',
      "Apple Apps and Books base URL (env VPPD_APPLE_URL, default Apple's production)",
    )
    .option('--sync-interval <duration>', 'automatic sync interval, e.g. 12h (env VPPD_SYNC_INTERVAL)')
    .option('--role <role>', 'all (API + sync worker, default), api or worker (env VPPD_ROLE)')
    .option(
      '--demo',
      'demo mode: generates and keeps secrets in ./data and prints a ready-to-use bearer token',
    )
    .action(async (flags: ServeFlags) => {
      await runServe(flags, io, deps);
    });
}

async function runServe(flags: ServeFlags, io: CliIo, deps: ServeDependencies): Promise<void> {
  const cwd = deps.cwd ?? process.cwd();
  const fromFlags: RawSettings = {
    port: flags.port,
    host: flags.host,
    database: flags.database,
    appleUrl: flags.appleUrl,
    syncInterval: flags.syncInterval,
    role: flags.role,
    demo: flags.demo === true,
  };
  let settings = mergeSettings(readEnv(deps.env ?? process.env), fromFlags);
  if (settings.demo) {
    const demo = await ensureDemoSecrets(settings, { dataDir: resolve(cwd, 'data') });
    settings = demo.settings;
    if (demo.filled.length > 0) io.stdout(`demo: secrets kept in ${demo.file} (mode 0600)\n`);
  }
  const config = parseConfig(settings);

  const stop = deps.stopSignal ?? signalOnTermination();
  // The product behaviour: syncs run in this process (per --role) and token uploads/renewals sync.
  const server = await startServer(config, { runSync: true, syncOnTokenWrite: true });
  // One write, the listening line last: whoever waits for it has the demo lines already.
  const lines: string[] = [];
  if (config.demo && config.auth.kind === 'hs256') {
    const token = await issueAccessToken({ secret: config.auth.secret, tenantId: demoTenantId });
    lines.push(
      `demo: tenant ${demoTenantId}, bearer token (30 days, DeviceManagementServiceConfig.ReadWrite.All):`,
      token,
      `demo: curl -s -H "Authorization: Bearer ${token}" ${server.url}/beta/deviceAppManagement/vppTokens`,
    );
  }
  lines.push(`vppd listening on ${server.url} (database ${config.database.url})`, '');
  io.stdout(lines.join('\n'));
  if (!stop.aborted) await once(stop, 'abort');
  io.stdout('vppd: stopping (draining requests)\n');
  await server.close();
  io.stdout('vppd: stopped\n');
}

/** An AbortSignal that fires on the first SIGTERM or SIGINT. */
function signalOnTermination(): AbortSignal {
  const controller = new AbortController();
  const onSignal = () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    controller.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return controller.signal;
}
