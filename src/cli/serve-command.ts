import { once } from 'node:events';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { RawSettings } from '../config.js';
import type { RunningServer } from '../server/start-server.js';
import type { SyncRunner } from '../sync/sync-worker.js';
import type { CliIo } from './io.js';

interface ServeFlags {
  readonly port?: string;
  readonly host?: string;
  readonly database?: string;
  readonly appleUrl?: string;
  readonly syncInterval?: string;
  readonly deltaSyncInterval?: string;
  readonly role?: string;
  readonly trustProxy?: string;
  readonly publicUrl?: string;
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
    .description(
      'serve the Graph-compatible API and run the sync worker (--demo: with a simulator and demo tenant)',
    )
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
    .option(
      '--delta-sync-interval <duration>',
      'delta syncs between full ones, e.g. 15m, or off (env VPPD_DELTA_SYNC_INTERVAL, default 15m)',
    )
    .option('--role <role>', 'all (API + sync worker, default), api or worker (env VPPD_ROLE)')
    .option(
      '--trust-proxy <addresses>',
      'proxy addresses/CIDRs whose X-Forwarded-* and Forwarded headers are believed, comma-separated (env VPPD_TRUST_PROXY)',
    )
    .option(
      '--public-url <url>',
      'external base URL of every link, e.g. https://tools.example.com/vppd; wins over forwarded headers (env VPPD_PUBLIC_URL)',
    )
    .option(
      '--demo',
      'demo mode: SQLite and secrets in ./data, an in-process Apple simulator (unless --apple-url), a demo tenant with a token for every status, and a ready-to-use bearer token',
    )
    .action(async (flags: ServeFlags) => {
      await runServe(flags, io, deps);
    });
}

async function runServe(flags: ServeFlags, io: CliIo, deps: ServeDependencies): Promise<void> {
  // Loaded here, not at the top: the other commands (tokens, auth) start without the server stack.
  const { demoTenantId, ensureDemoSecrets, mergeSettings, parseConfig, readEnv } = await import(
    '../config.js'
  );
  const { startServer } = await import('../server/start-server.js');
  const { issueAccessToken } = await import('../http/auth/issue-access-token.js');
  const { demoBannerLines } = await import('../demo/demo-banner.js');
  const { seedDemoTenant } = await import('../demo/seed-demo-tenant.js');
  const { startDemoAppleSim } = await import('../demo/start-demo-apple-sim.js');
  const { demoSessionOf } = await import('../web/dashboard-routes.js');
  const cwd = deps.cwd ?? process.cwd();
  const fromFlags: RawSettings = {
    port: flags.port,
    host: flags.host,
    database: flags.database,
    appleUrl: flags.appleUrl,
    syncInterval: flags.syncInterval,
    deltaSyncInterval: flags.deltaSyncInterval,
    role: flags.role,
    trustProxy: flags.trustProxy,
    publicUrl: flags.publicUrl,
    demo: flags.demo === true,
  };
  let settings = mergeSettings(readEnv(deps.env ?? process.env), fromFlags);
  const dataDir = resolve(cwd, 'data');
  if (settings.demo) {
    const demo = await ensureDemoSecrets(settings, { dataDir });
    settings = demo.settings;
    if (demo.filled.length > 0) io.stdout(`demo: secrets kept in ${demo.file} (mode 0600)\n`);
  }
  let config = parseConfig(settings);

  const stop: { first: AbortSignal; second?: AbortSignal } =
    deps.stopSignal === undefined ? terminationSignals() : { first: deps.stopSignal };
  // The demo talks to an in-process Apple simulator unless --apple-url points elsewhere.
  const sim =
    config.demo && settings.appleUrl === undefined ? await startDemoAppleSim({ dataDir }) : undefined;
  if (sim) config = { ...config, apple: { baseUrl: sim.baseUrl, metadataUrl: sim.metadataUrl } };
  let server: RunningServer;
  try {
    // The product behaviour: syncs run in this process (per --role) and token uploads/renewals sync.
    server = await startServer(config, { runSync: true, syncOnTokenWrite: true });
  } catch (error) {
    await sim?.close();
    throw error;
  }
  // One write, the listening line last: whoever waits for it has the demo lines already.
  const lines: string[] = [];
  if (config.demo) {
    const seed = sim ? await seedDemoTenant(server.context, sim, demoTenantId) : undefined;
    const bearer =
      config.auth.kind === 'hs256'
        ? await issueAccessToken({ secret: config.auth.secret, tenantId: demoTenantId })
        : undefined;
    lines.push(
      ...demoBannerLines({
        url: server.url,
        tenantId: demoTenantId,
        bearer,
        bearerDescription: '30 days, DeviceManagementServiceConfig.ReadWrite.All',
        appleSimUrl: sim?.baseUrl,
        seed,
        dashboardUrl: `${server.url}/`,
        sessionOffHost: demoSessionOf(config) === 'off-not-loopback' ? config.host : undefined,
      }),
    );
  }
  lines.push(`vppd listening on ${server.url} (database ${config.database.url})`, '');
  io.stdout(lines.join('\n'));
  if (!stop.first.aborted) await once(stop.first, 'abort');
  await shutDown(server, config.shutdownGraceMs, stop.second, io);
  await sim?.close();
  io.stdout('vppd: stopped\n');
}

/**
 * Graceful stop: no new connections, no new syncs claimed; running syncs get up to `graceMs` to
 * finish (a second signal cuts the wait short); those still running are given back to the queue
 * (their leases released, not counted as an attempt) so another process runs them; then the
 * in-flight requests drain and the database closes.
 */
async function shutDown(
  server: RunningServer,
  graceMs: number,
  hurry: AbortSignal | undefined,
  io: CliIo,
): Promise<void> {
  // Stops accepting connections now; fastify's close below waits for the requests in flight.
  server.app.server.close();
  const { sync } = server.context;
  await sync.scheduler?.stop();
  const worker = sync.worker;
  if (worker !== undefined && worker.active > 0) {
    io.stdout(
      `vppd: stopping: no new requests; waiting up to ${graceMs / 1000}s for ${worker.active} running sync(s) (signal again to stop waiting)\n`,
    );
    const left = await drainUnless(worker, graceMs, hurry);
    if (left > 0) {
      io.stdout(`vppd: ${left} sync(s) still running: given back to the queue for the next worker\n`);
    }
  } else {
    io.stdout('vppd: stopping (draining requests)\n');
  }
  await server.close();
}

/** Waits for the worker's runs up to `graceMs`, or until `hurry` aborts; resolves with how many still run. */
async function drainUnless(
  worker: SyncRunner,
  graceMs: number,
  hurry: AbortSignal | undefined,
): Promise<number> {
  if (hurry === undefined) return worker.drain(graceMs);
  if (hurry.aborted) return worker.active;
  const cut = new Promise<void>((resolve) =>
    hurry.addEventListener('abort', () => resolve(), { once: true }),
  );
  const drained = worker.drain(graceMs);
  await Promise.race([drained, cut]);
  return worker.active;
}

/** Signals that fire on the first SIGTERM/SIGINT (stop) and on a second one (stop waiting for syncs). */
function terminationSignals(): { first: AbortSignal; second: AbortSignal } {
  const first = new AbortController();
  const second = new AbortController();
  const onSignal = () => {
    if (!first.signal.aborted) {
      first.abort();
      return;
    }
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    second.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return { first: first.signal, second: second.signal };
}
