import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { CliExit, usageError, usageExitCodes } from './cli-exit.js';
import { createGraphHttpClient, defaultVppdUrl, type GraphHttpClient } from './graph-http-client.js';
import type { CliIo } from './io.js';

/** What the CLI takes from the process; injected so tests can drive it in-process too. */
export interface ClientCommandDependencies {
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly fetch?: typeof fetch;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Whether stdout is a terminal: the `sync --wait` progress line is rewritten in place there. */
  readonly isTty?: boolean;
  readonly now?: () => number;
}

interface ClientFlags {
  readonly url?: string;
  readonly token?: string;
  readonly json?: boolean;
}

/** A vppToken as the Graph API serves it (the properties the CLI shows). */
interface TokenBody {
  readonly id: string;
  readonly displayName: string | null;
  readonly organizationName: string | null;
  readonly locationName: string | null;
  readonly lastSyncStatus: string;
  readonly state: string;
  readonly lastSyncDateTime: string;
  readonly expirationDateTime: string;
  readonly [key: string]: unknown;
}

/** What `GET /vppd/v1/tokens/{id}/sync` answers. */
interface SyncProgressBody {
  readonly lastSyncStatus: string;
  readonly state: string;
  readonly job: 'idle' | 'queued' | 'running';
  readonly phase: string | null;
  readonly pages: number | null;
  readonly records: number | null;
  readonly error: { readonly kind: string; readonly reason: string; readonly message: string } | null;
  readonly lastRun: {
    readonly outcome: string;
    readonly startedAt: string;
    readonly finishedAt: string | null;
    readonly pages: number | null;
    readonly records: number | null;
  } | null;
}

const tokensPath = '/beta/deviceAppManagement/vppTokens';
const progressPath = (id: string) => `/vppd/v1/tokens/${encodeURIComponent(id)}/sync`;
const tokenPath = (id: string) => `${tokensPath}/${encodeURIComponent(id)}`;

/**
 * `vppd tokens list|show|add|renew|sync|delete`: a thin client over vppd's HTTP API (`--url`/`VPPD_URL`,
 * `--token`/`VPPD_TOKEN`), tables for humans and `--json` for scripts; exit 0 ok, 1 failure, 2 usage.
 */
export function registerTokensCommand(
  program: Command,
  io: CliIo,
  deps: ClientCommandDependencies = {},
): void {
  const env = deps.env ?? process.env;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const now = deps.now ?? Date.now;
  const tokens = usageExitCodes(
    program
      .command('tokens')
      .description('manage VPP tokens on a running vppd (a client of its HTTP API)')
      .option('--url <url>', `vppd's base URL (env VPPD_URL, default ${defaultVppdUrl})`)
      .option('--token <jwt>', 'bearer token (env VPPD_TOKEN; `vppd auth token` mints one)')
      .option('--json', 'print JSON for scripts instead of tables'),
  );

  const setUp = (command: Command): { client: GraphHttpClient; json: boolean } => {
    const flags = command.optsWithGlobals<ClientFlags>();
    const url = flags.url ?? nonBlank(env.VPPD_URL) ?? defaultVppdUrl;
    if (!/^https?:\/\/[^/]/.test(url))
      usageError(io, `--url (VPPD_URL): must be an http(s) URL, got '${url}'`);
    const token = flags.token ?? nonBlank(env.VPPD_TOKEN);
    if (token === undefined)
      usageError(io, 'no bearer token: pass --token or set VPPD_TOKEN (see `vppd auth token`)');
    return {
      client: createGraphHttpClient({ baseUrl: url, token, ...(deps.fetch ? { fetch: deps.fetch } : {}) }),
      json: flags.json === true,
    };
  };
  const printJson = (value: unknown) => io.stdout(`${JSON.stringify(value, null, 2)}\n`);
  const sub = (name: string, description: string) =>
    usageExitCodes(tokens.command(name).description(description));

  sub('list', 'list the tenant’s VPP tokens').action(async (_options: object, command: Command) => {
    const { client, json } = setUp(command);
    const all: TokenBody[] = [];
    let next: string | undefined = tokensPath;
    while (next !== undefined) {
      const page: { body: { value: TokenBody[]; '@odata.nextLink'?: string } } = await client.request(
        'GET',
        next,
      );
      all.push(...page.body.value);
      next = page.body['@odata.nextLink'];
    }
    if (json) return printJson(all.map(withoutODataContext));
    if (all.length === 0) return io.stdout('no VPP tokens\n');
    io.stdout(
      table(
        ['ID', 'NAME', 'STATUS', 'STATE', 'LAST SYNC', 'EXPIRES'],
        all.map((t) => [
          t.id,
          t.displayName ?? t.locationName ?? t.organizationName ?? '',
          t.lastSyncStatus,
          t.state,
          syncDate(t.lastSyncDateTime),
          t.expirationDateTime.slice(0, 10),
        ]),
      ),
    );
  });

  sub('show', 'show one token and where its sync stands')
    .argument('<id>', 'token id')
    .action(async (id: string, _options: object, command: Command) => {
      const { client, json } = setUp(command);
      const token = (await client.request<TokenBody>('GET', tokenPath(id))).body;
      if (json) return printJson(withoutODataContext(token));
      const progress = (await client.request<SyncProgressBody>('GET', progressPath(id))).body;
      io.stdout(describeToken(token, progress));
    });

  sub('add', 'upload a .vpptoken file as a new token (its first sync starts at once)')
    .argument('<file>', 'the .vpptoken file from Apple Business/School Manager')
    .option('--name <displayName>', 'display name of the token')
    .action(async (file: string, options: { name?: string }, command: Command) => {
      const { client, json } = setUp(command);
      const sToken = await readTokenFile(io, file);
      const body = { token: sToken, ...(options.name === undefined ? {} : { displayName: options.name }) };
      const created = (await client.request<TokenBody>('POST', tokensPath, { body })).body;
      if (json) return printJson(withoutODataContext(created));
      io.stdout(
        `added ${created.id} (${created.organizationName ?? 'unknown organization'}): ${created.lastSyncStatus}\n`,
      );
    });

  sub('renew', 'replace a token’s sToken with a renewed .vpptoken file (re-synced at once)')
    .argument('<id>', 'token id')
    .argument('<file>', 'the renewed .vpptoken file')
    .action(async (id: string, file: string, _options: object, command: Command) => {
      const { client, json } = setUp(command);
      const sToken = await readTokenFile(io, file);
      const renewed = (
        await client.request<TokenBody>('PATCH', tokenPath(id), {
          body: { token: sToken },
          headers: { prefer: 'return=representation' },
        })
      ).body;
      if (json) return printJson(withoutODataContext(renewed));
      io.stdout(
        `renewed ${renewed.id}: expires ${renewed.expirationDateTime.slice(0, 10)}, ${renewed.lastSyncStatus}\n`,
      );
    });

  sub('sync', 'sync a token with Apple now (syncLicenses)')
    .argument('<id>', 'token id')
    .option(
      '--delta',
      'a delta sync: only what Apple changed since the last sync (POST /vppd/v1/tokens/{id}/sync)',
    )
    .option('--wait', 'show live progress and wait for the outcome: exit 0 when completed, 1 when failed')
    .option('--timeout <duration>', 'with --wait: give up after this long, e.g. 10m', '30m')
    .action(
      async (id: string, options: { wait?: boolean; delta?: boolean; timeout: string }, command: Command) => {
        const { client, json } = setUp(command);
        const { parseDuration } = await import('../config.js');
        const timeoutMs = parseDuration(options.timeout);
        if (timeoutMs === undefined || timeoutMs <= 0) {
          usageError(io, `--timeout: must be a duration like 90s or 10m, got '${options.timeout}'`);
        }
        const started =
          options.delta === true
            ? (await client.request<TokenBody>('POST', progressPath(id), { body: { kind: 'delta' } })).body
            : (await client.request<TokenBody>('POST', `${tokenPath(id)}/syncLicenses`)).body;
        if (options.wait !== true) {
          if (json) return printJson(withoutODataContext(started));
          return io.stdout(`sync ${id}: ${started.lastSyncStatus}\n`);
        }
        const outcome = await waitForSync(client, id, { json, timeoutMs });
        if (json) printJson(outcome.progress);
        if (outcome.progress.lastSyncStatus === 'completed') {
          if (!json) io.stdout(`sync ${id}: completed${runFigures(outcome.progress, outcome.ms)}\n`);
          return;
        }
        const error = outcome.progress.error;
        io.stderr(
          `vppd: sync of ${id} failed: ${error ? `${error.reason} (${error.kind}): ${error.message}` : 'no reason recorded'}\n`,
        );
        throw new CliExit(1);
      },
    );

  sub('delete', 'delete a token and its license data')
    .argument('<id>', 'token id')
    .action(async (id: string, _options: object, command: Command) => {
      const { client, json } = setUp(command);
      await client.request('DELETE', tokenPath(id));
      if (json) return printJson({ id, deleted: true });
      io.stdout(`deleted ${id}\n`);
    });

  /** Polls the progress endpoint until the token is no longer inProgress; prints a live line. */
  async function waitForSync(
    client: GraphHttpClient,
    id: string,
    options: { json: boolean; timeoutMs: number },
  ): Promise<{ progress: SyncProgressBody; ms: number }> {
    const start = now();
    let shown = '';
    for (;;) {
      const progress = (await client.request<SyncProgressBody>('GET', progressPath(id))).body;
      if (progress.lastSyncStatus !== 'inProgress') {
        if (deps.isTty && shown !== '') io.stdout('\n');
        return { progress, ms: now() - start };
      }
      const line = progressLine(progress, now() - start);
      if (!options.json && line !== shown) {
        // On a terminal the line is rewritten in place; in a pipe each change is a line of its own.
        io.stdout(deps.isTty ? `\r\x1b[K${line}` : `${line}\n`);
        shown = line;
      }
      if (now() - start > options.timeoutMs) {
        if (deps.isTty) io.stdout('\n');
        io.stderr(
          `vppd: sync of ${id} still in progress after ${Math.round(options.timeoutMs / 1000)}s; stopped waiting\n`,
        );
        throw new CliExit(1);
      }
      await sleep(500);
    }
  }
}

function progressLine(progress: SyncProgressBody, ms: number): string {
  const parts = [`sync: ${progress.job === 'running' ? 'running' : 'queued'}`];
  if (progress.job === 'running' && progress.phase) parts.push(`phase ${progress.phase}`);
  if (progress.pages !== null) parts.push(`${progress.pages} pages`);
  if (progress.records !== null) parts.push(`${progress.records.toLocaleString('en-US')} records`);
  parts.push(`${Math.floor(ms / 1000)}s`);
  return parts.join(' · ');
}

function runFigures(progress: SyncProgressBody, ms: number): string {
  const run = progress.lastRun;
  if (run?.outcome !== 'completed') return '';
  const pages = run.pages ?? 0;
  const records = (run.records ?? 0).toLocaleString('en-US');
  return ` (${pages} pages, ${records} records, ${(ms / 1000).toFixed(1)}s)`;
}

function describeToken(token: TokenBody, progress: SyncProgressBody): string {
  const rows: [string, string][] = [
    ['id', token.id],
    ['name', token.displayName ?? ''],
    ['organization', token.organizationName ?? ''],
    ['location', token.locationName ?? ''],
    ['status', token.lastSyncStatus],
    ['state', token.state],
    ['last sync', syncDate(token.lastSyncDateTime)],
    ['expires', token.expirationDateTime],
  ];
  if (progress.job !== 'idle') rows.push(['sync', progressLine(progress, 0).replace(/ · 0s$/, '')]);
  if (progress.error)
    rows.push(['last error', `${progress.error.reason} (${progress.error.kind}): ${progress.error.message}`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return `${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`;
}

/** `0001-01-01T00:00:00Z` is Graph's "never". */
function syncDate(text: string): string {
  return text.startsWith('0001-01-01') ? 'never' : text.replace(/\.\d+Z$/, 'Z');
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

function withoutODataContext<T extends Record<string, unknown>>(value: T): Omit<T, '@odata.context'> {
  const { '@odata.context': _context, ...rest } = value;
  return rest;
}

function nonBlank(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/** Reads a .vpptoken file; a missing file is a usage error (exit 2), its content is never printed. */
async function readTokenFile(io: CliIo, file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    return usageError(io, `cannot read token file ${file}: ${code}`);
  }
}
