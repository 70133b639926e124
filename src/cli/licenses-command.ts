import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { CliExit, usageError, usageExitCodes } from './cli-exit.js';
import { createGraphHttpClient, defaultVppdUrl, type GraphHttpClient } from './graph-http-client.js';
import type { CliIo } from './io.js';
import type { ClientCommandDependencies } from './tokens-command.js';

/** An operation as `/vppd/v1/operations/{id}` answers it (the fields the CLI shows). */
interface OperationBody {
  readonly id: string;
  readonly tokenId: string;
  readonly kind: string;
  readonly status: string;
  readonly requestedCount: number;
  readonly completedCount: number;
  readonly failedCount: number;
  readonly createdDateTime: string;
  readonly finishedDateTime: string | null;
  readonly snapshotUpdate: string | null;
  readonly failures?: readonly {
    readonly adamId: string | null;
    readonly serialNumber?: string;
    readonly clientUserId?: string;
    readonly errorNumber: number | null;
    readonly errorMessage: string;
  }[];
  readonly [key: string]: unknown;
}

interface ReclaimBody {
  readonly dryRun: boolean;
  readonly heldCount: number;
  readonly releaseCount: number;
  readonly apps: readonly {
    adamId: string;
    pricingParam: string;
    heldCount: number;
    keptCount: number;
    releaseCount: number;
  }[];
  readonly operations: readonly OperationBody[];
}

interface AppBody {
  readonly displayName: string | null;
  readonly appStoreUrl: string | null;
  readonly totalLicenseCount: number;
  readonly usedLicenseCount: number;
}

interface ClientFlags {
  readonly url?: string;
  readonly token?: string;
  readonly json?: boolean;
}

const operationPath = (id: string) => `/vppd/v1/operations/${encodeURIComponent(id)}`;
const tokenOpsPath = (id: string, verb: string) => `/vppd/v1/tokens/${encodeURIComponent(id)}/${verb}`;
const ended = new Set(['completed', 'failed', 'partiallyFailed']);

/** Reads ids from a file or stdin (`-`): one per line; blank lines and `#` comments are skipped. */
export async function readIdList(
  io: CliIo,
  file: string,
  readStdin: () => Promise<string>,
): Promise<string[]> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    usageError(io, `cannot read ${file}: ${typeof code === 'string' ? code : 'unreadable'}`);
  }
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

async function processStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function commaList(value: string | undefined): string[] {
  return value === undefined
    ? []
    : value
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
}

/**
 * `vppd licenses list|associate|disassociate|reclaim` and `vppd operations show`: clients of vppd's
 * license operations over HTTP. Exit codes as for syncs: 0 done (with `--wait`: completed), 1 failed or
 * partially failed, 2 usage.
 */
export function registerLicensesCommand(
  program: Command,
  io: CliIo,
  deps: ClientCommandDependencies & { readonly readStdin?: () => Promise<string> } = {},
): void {
  const env = deps.env ?? process.env;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const readStdin = deps.readStdin ?? processStdin;
  const withClientFlags = (command: Command) =>
    usageExitCodes(
      command
        .option('--url <url>', `vppd's base URL (env VPPD_URL, default ${defaultVppdUrl})`)
        .option('--token <jwt>', 'bearer token (env VPPD_TOKEN; `vppd auth token` mints one)')
        .option('--json', 'print JSON for scripts instead of text'),
    );
  const licenses = withClientFlags(
    program
      .command('licenses')
      .description('give, take back and reclaim VPP licenses through a running vppd'),
  );
  const operations = withClientFlags(
    program.command('operations').description('license operations recorded by a running vppd'),
  );

  const setUp = (command: Command): { client: GraphHttpClient; json: boolean } => {
    const flags = command.optsWithGlobals<ClientFlags>();
    const url = flags.url ?? env.VPPD_URL?.trim() ?? defaultVppdUrl;
    if (!/^https?:\/\/[^/]/.test(url))
      usageError(io, `--url (VPPD_URL): must be an http(s) URL, got '${url}'`);
    const token = flags.token ?? (env.VPPD_TOKEN?.trim() || undefined);
    if (token === undefined)
      usageError(io, 'no bearer token: pass --token or set VPPD_TOKEN (see `vppd auth token`)');
    return {
      client: createGraphHttpClient({ baseUrl: url, token, ...(deps.fetch ? { fetch: deps.fetch } : {}) }),
      json: flags.json === true,
    };
  };
  const printJson = (value: unknown) => io.stdout(`${JSON.stringify(value, null, 2)}\n`);

  const describe = (op: OperationBody): string => {
    const lines = [
      `operation ${op.id}: ${op.kind} ${op.status}`,
      `  requested ${op.requestedCount}, completed ${op.completedCount}, failed ${op.failedCount}`,
    ];
    if (op.snapshotUpdate !== null) lines.push(`  snapshot: ${op.snapshotUpdate}`);
    for (const f of op.failures ?? []) {
      lines.push(
        `  failed: app ${f.adamId ?? '?'} ${f.serialNumber ?? f.clientUserId ?? ''}: ${f.errorNumber ?? '-'} ${f.errorMessage}`,
      );
    }
    return `${lines.join('\n')}\n`;
  };

  /** Polls until the operation ended; exit 1 unless it completed. */
  const waitFor = async (client: GraphHttpClient, id: string, json: boolean, intervalMs: number) => {
    for (;;) {
      const op = (await client.request<OperationBody>('GET', operationPath(id))).body;
      if (ended.has(op.status)) {
        if (json) printJson(op);
        else io.stdout(describe(op));
        if (op.status !== 'completed') throw new CliExit(1);
        return;
      }
      await sleep(intervalMs);
    }
  };

  const intervalOf = (text: string) => {
    const ms = Number(text);
    if (!Number.isInteger(ms) || ms < 10) usageError(io, `--interval: milliseconds (≥ 10), got '${text}'`);
    return ms;
  };

  licenses
    .command('list')
    .description('licenses of a token per app: total, used, available (from the last sync or operation)')
    .argument('<token>', 'token id')
    .option('--app <adamId>', 'only this app')
    .action(async (tokenId: string, options: { app?: string }, command: Command) => {
      const { client, json } = setUp(command);
      const filter = encodeURIComponent(`vppTokenId eq '${tokenId.replace(/'/g, "''")}'`);
      let next: string | undefined = `/beta/deviceAppManagement/mobileApps?$filter=${filter}&$top=999`;
      const apps: AppBody[] = [];
      while (next !== undefined) {
        const page: { body: { value: AppBody[]; '@odata.nextLink'?: string } } = await client.request(
          'GET',
          next,
        );
        apps.push(...page.body.value);
        next = page.body['@odata.nextLink'];
      }
      const rows = apps
        .map((a) => ({
          adamId: /id(\d+)$/.exec(a.appStoreUrl ?? '')?.[1] ?? '',
          name: a.displayName ?? '',
          total: a.totalLicenseCount,
          used: a.usedLicenseCount,
          available: a.totalLicenseCount - a.usedLicenseCount,
        }))
        .filter((r) => options.app === undefined || r.adamId === options.app);
      // With --app, the holders too (vppd's licenses route; Graph's assignedLicenses has no serial numbers).
      const holders: string[] = [];
      if (options.app !== undefined && rows.length > 0) {
        const params = new URLSearchParams({ adamId: options.app, top: '1000' });
        let page: string | undefined =
          `/vppd/v1/tokens/${encodeURIComponent(tokenId)}/licenses?${params.toString()}`;
        while (page !== undefined) {
          const body: { value: { serialNumber?: string; clientUserId?: string }[]; nextLink?: string } = (
            await client.request<{
              value: { serialNumber?: string; clientUserId?: string }[];
              nextLink?: string;
            }>('GET', page)
          ).body;
          holders.push(...body.value.map((h) => h.serialNumber ?? `user:${h.clientUserId ?? ''}`));
          page = body.nextLink;
        }
      }
      if (json) return printJson(options.app === undefined ? rows : rows.map((r) => ({ ...r, holders })));
      if (rows.length === 0) return io.stdout('no apps\n');
      const header = ['ADAMID', 'TOTAL', 'USED', 'AVAILABLE', 'NAME'];
      const cells = rows.map((r) => [r.adamId, String(r.total), String(r.used), String(r.available), r.name]);
      const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
      const line = (c: readonly string[]) =>
        c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i] ?? 0))).join('  ');
      io.stdout(`${[line(header), ...cells.map(line)].join('\n')}\n`);
      if (options.app !== undefined)
        io.stdout(`holders (${holders.length}):\n${holders.map((h) => `  ${h}\n`).join('')}`);
    });

  for (const kind of ['associate', 'disassociate'] as const) {
    licenses
      .command(kind)
      .description(kind === 'associate' ? 'give licenses of apps to devices or users' : 'take licenses back')
      .argument('<token>', 'token id')
      .requiredOption('--app <adamIds>', 'app ids (adamId), comma-separated')
      .option('--pricing <param>', 'STDQ or PLUS', 'STDQ')
      .option('--serial <serials>', 'serial numbers, comma-separated')
      .option('--serials-file <file>', 'serial numbers, one per line (- for stdin)')
      .option('--user <ids>', 'client user ids, comma-separated')
      .option('--users-file <file>', 'client user ids, one per line (- for stdin)')
      .option('--idempotency-key <key>', 'a retry with the same key answers the same operation')
      .option('--wait', 'wait for the outcome: exit 0 when completed, 1 when (partially) failed')
      .option('--interval <ms>', 'with --wait: between polls', '2000')
      .action(
        async (tokenId: string, options: Record<string, string | boolean | undefined>, command: Command) => {
          const given = ['serial', 'serialsFile', 'user', 'usersFile'].filter(
            (k) => options[k] !== undefined,
          );
          if (given.length !== 1)
            usageError(io, 'give exactly one of --serial, --serials-file, --user, --users-file');
          const interval = intervalOf(String(options.interval));
          const { client, json } = setUp(command);
          const fromFile = async (name: 'serialsFile' | 'usersFile') =>
            options[name] === undefined ? [] : readIdList(io, String(options[name]), readStdin);
          const serials = [
            ...commaList(options.serial as string | undefined),
            ...(await fromFile('serialsFile')),
          ];
          const users = [...commaList(options.user as string | undefined), ...(await fromFile('usersFile'))];
          if (serials.length + users.length === 0)
            usageError(io, 'the list of serial numbers or users is empty');
          const assets = commaList(options.app as string).map((adamId) => ({
            adamId,
            pricingParam: options.pricing,
          }));
          const body = {
            assets,
            ...(serials.length > 0 ? { serialNumbers: serials } : { clientUserIds: users }),
          };
          const key = options.idempotencyKey;
          const started = (
            await client.request<OperationBody>(
              'POST',
              tokenOpsPath(tokenId, kind === 'associate' ? 'associations' : 'disassociations'),
              {
                body,
                ...(typeof key === 'string' ? { headers: { 'idempotency-key': key } } : {}),
              },
            )
          ).body;
          if (options.wait !== true) {
            if (json) return printJson(started);
            return io.stdout(
              `operation ${started.id}: ${kind} ${started.status} (${started.requestedCount} items)\n`,
            );
          }
          await waitFor(client, started.id, json, interval);
        },
      );
  }

  licenses
    .command('reclaim')
    .description('release every license whose holder is not on the keep-list (a file, - for stdin)')
    .argument('<token>', 'token id')
    .option('--keep <file>', 'serial numbers that keep their licenses, one per line (- for stdin)')
    .option('--keep-users <file>', 'client user ids that keep their licenses, one per line')
    .option('--app <adamIds>', 'only these apps, comma-separated')
    .option('--pricing <param>', 'pricing of --app: STDQ or PLUS', 'STDQ')
    .option('--dry-run', 'show the plan, release nothing')
    .option('--wait', 'wait for the operations: exit 0 when all completed, 1 otherwise')
    .option('--interval <ms>', 'with --wait: between polls', '2000')
    .action(
      async (tokenId: string, options: Record<string, string | boolean | undefined>, command: Command) => {
        if (options.keep === undefined && options.keepUsers === undefined) {
          usageError(io, 'give --keep and/or --keep-users (an empty file releases every license in scope)');
        }
        const interval = intervalOf(String(options.interval));
        const { client, json } = setUp(command);
        const keepSerials =
          options.keep === undefined ? undefined : await readIdList(io, String(options.keep), readStdin);
        const keepUsers =
          options.keepUsers === undefined
            ? undefined
            : await readIdList(io, String(options.keepUsers), readStdin);
        const apps = commaList(options.app as string | undefined).map((adamId) => ({
          adamId,
          pricingParam: options.pricing,
        }));
        const plan = (
          await client.request<ReclaimBody>('POST', tokenOpsPath(tokenId, 'reclaim'), {
            body: {
              ...(keepSerials === undefined ? {} : { keepSerialNumbers: keepSerials }),
              ...(keepUsers === undefined ? {} : { keepClientUserIds: keepUsers }),
              ...(apps.length === 0 ? {} : { apps }),
              dryRun: options.dryRun === true,
            },
          })
        ).body;
        if (json && options.wait !== true) return printJson(plan);
        if (!json) {
          io.stdout(
            `${plan.dryRun ? 'would release' : 'releasing'} ${plan.releaseCount} of ${plan.heldCount} licenses\n`,
          );
          for (const app of plan.apps.filter((a) => a.releaseCount > 0)) {
            io.stdout(
              `  app ${app.adamId} ${app.pricingParam}: release ${app.releaseCount}, keep ${app.keptCount}\n`,
            );
          }
          for (const op of plan.operations) io.stdout(`  operation ${op.id}: ${op.status}\n`);
        }
        if (options.wait !== true) return;
        let failed = false;
        for (const op of plan.operations) {
          try {
            await waitFor(client, op.id, json, interval);
          } catch (error) {
            if (!(error instanceof CliExit)) throw error;
            failed = true;
          }
        }
        if (failed) throw new CliExit(1);
      },
    );

  operations
    .command('show')
    .description('show an operation: status, counts and Apple’s per-item failures')
    .argument('<id>', 'operation id')
    .action(async (id: string, _options: object, command: Command) => {
      const { client, json } = setUp(command);
      const op = (await client.request<OperationBody>('GET', operationPath(id))).body;
      if (json) return printJson(op);
      io.stdout(describe(op));
    });
}
