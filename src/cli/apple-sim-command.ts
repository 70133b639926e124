import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { defaultSimLocations, startAppleSim } from '../apple-sim/apple-sim.js';
import { simTokenFiles } from '../apple-sim/sim-token-files.js';
import { errors } from '../domain/errors.js';
import type { CliIo } from './io.js';

interface AppleSimCliOptions {
  readonly port: string;
  readonly host: string;
  readonly seed: string;
  readonly pageSize?: string;
  readonly maxInFlight?: string;
  /** Deliver notifications to `http:` URLs too (a local vppd without TLS). */
  readonly notificationsAllowHttp?: boolean;
  /** Seconds between delivery tries of a notification, comma-separated (Apple: up to 3 tries over minutes). */
  readonly notificationRetry?: string;
  /** A number string, or false from `--no-rate-limit`. */
  readonly rateLimit: string | boolean;
}

interface TokensCliOptions {
  readonly out: string;
  readonly seed: string;
}

function integerOption(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw errors.config(name, `must be an integer from ${min} to ${max}, got '${value}'`);
  }
  return n;
}

/** Resolves when SIGINT or SIGTERM arrives; the listeners are removed afterwards. */
function untilSignal(): Promise<string> {
  const controller = new AbortController();
  const onSignal = (signal: string) => controller.abort(signal);
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  return new Promise((resolve) => {
    controller.signal.addEventListener('abort', () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(String(controller.signal.reason));
    });
  });
}

/** `vppd apple-sim`: runs the Apple Apps and Books simulator; `vppd apple-sim tokens` writes its token files. */
export function registerAppleSimCommand(program: Command, io: CliIo): void {
  const command = program
    .command('apple-sim')
    .description('run the Apple Apps and Books (VPP) simulator in the foreground, with the default scenario')
    .option('--port <port>', 'TCP port (0 picks a free one)', '8090')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--seed <seed>', 'seed of the generated data and tokens', 'vppd')
    .option('--page-size <n>', 'records per page of assets, assignments and users (default 500)')
    .option('--rate-limit <n>', 'requests per second per location', '15')
    .option('--no-rate-limit', 'switch the per-location rate limit off (benchmarks)')
    .option(
      '--max-in-flight <n>',
      'answer 429 when a location has more requests than this at once (Apple: 5)',
    )
    .option(
      '--notifications-allow-http',
      'also deliver notifications to http: URLs (a local vppd without TLS)',
    )
    .option(
      '--notification-retry <seconds>',
      'waits between the 3 tries of a notification, e.g. 60,180',
      '60,180',
    )
    .action(async (options: AppleSimCliOptions) => {
      const port = integerOption('--port', options.port, 0, 65535);
      const pageSize =
        options.pageSize === undefined
          ? undefined
          : integerOption('--page-size', options.pageSize, 1, 100_000);
      const rateLimit =
        options.rateLimit === false
          ? false
          : integerOption('--rate-limit', String(options.rateLimit), 1, 1_000_000);
      const maxInFlight =
        options.maxInFlight === undefined
          ? undefined
          : integerOption('--max-in-flight', options.maxInFlight, 1, 1000);
      const retryDelaysMs = (options.notificationRetry ?? '60,180')
        .split(',')
        .map((part) => integerOption('--notification-retry', part.trim(), 0, 3600) * 1000);
      if (retryDelaysMs.length > 2) throw errors.config('--notification-retry', 'at most 2 waits (3 tries)');
      const stopped = untilSignal();
      const sim = await startAppleSim({
        port,
        host: options.host,
        seed: options.seed,
        rateLimit,
        ...(pageSize !== undefined ? { pageSize } : {}),
        ...(maxInFlight !== undefined ? { maxInFlight } : {}),
        notifications: { allowHttp: options.notificationsAllowHttp === true, retryDelaysMs },
      });
      io.stdout(`${sim.baseUrl}\n`);
      io.stdout(`metadata lookup: ${sim.metadataUrl}\n`);
      io.stdout(`admin API: ${sim.adminUrl} (GET ${sim.adminUrl}/locations lists locations and tokens)\n`);
      io.stdout(`locations: ${sim.locations.map((l) => l.id).join(', ')}\n`);
      const signal = await stopped;
      await sim.close();
      io.stdout(`apple-sim stopped (${signal})\n`);
    });

  command
    .command('tokens')
    .description('write one <location>.vpptoken file per default simulator location')
    .requiredOption('--out <dir>', 'directory to write the token files into (created if missing)')
    .option('--seed <seed>', 'seed, the same as the simulator’s', 'vppd')
    .action(async (options: TokensCliOptions, tokens: Command) => {
      // Commander hands `--seed` to the parent command when both define it, wherever it is written.
      const seed =
        tokens.getOptionValueSource('seed') === 'cli'
          ? options.seed
          : command.opts<AppleSimCliOptions>().seed;
      const files = simTokenFiles(seed, defaultSimLocations(), new Date());
      await mkdir(options.out, { recursive: true });
      for (const file of files) {
        // Token files are secrets: readable by the owner only.
        await writeFile(join(options.out, file.fileName), `${file.content}\n`, { mode: 0o600 });
        io.stdout(`${join(options.out, file.fileName)}\n`);
      }
    });
}
