import type { Command } from 'commander';
import { defaultSecurity, minJwtSecretBytes, parseDuration } from '../config.js';
import { formatGraphDateTime } from '../domain/graph-date-time.js';
import { issueAccessToken } from '../http/auth/issue-access-token.js';
import { readPermissions, writePermissions } from '../http/auth/permissions.js';
import { usageError, usageExitCodes } from './cli-exit.js';
import type { CliIo } from './io.js';

/** The Graph permission each `--role` grants in a minted token. */
export const cliRoles = {
  read: readPermissions[0],
  write: writePermissions[0],
} as const;
export type CliRole = keyof typeof cliRoles;

interface AuthTokenFlags {
  readonly tenant?: string;
  readonly role: string;
  readonly expiresIn: string;
  readonly json?: boolean;
}

/**
 * `vppd auth token --tenant T --role read|write`: mints a development bearer token (HS256) signed
 * with `VPPD_JWT_SECRET`, the way vppd verifies them. For self-hosting and tests; production tokens
 * come from Entra ID (VPPD_JWKS_URL).
 */
export function registerAuthCommand(
  program: Command,
  io: CliIo,
  deps: { readonly env?: Readonly<Record<string, string | undefined>>; readonly now?: () => Date } = {},
): void {
  const auth = usageExitCodes(program.command('auth').description('development credentials'));
  usageExitCodes(auth.command('token'))
    .description('print a bearer token for a tenant, signed with VPPD_JWT_SECRET (HS256)')
    .option('--tenant <id>', 'tenant id (the token’s tid claim)')
    .option('--role <role>', 'read or write', 'write')
    .option('--expires-in <duration>', 'lifetime, e.g. 30m, 1h, 7d', '1h')
    .option('--json', 'print {accessToken, tokenType, expiresOn, tenantId, roles}')
    .action(async (flags: AuthTokenFlags) => {
      const env = deps.env ?? process.env;
      if (flags.tenant === undefined || flags.tenant.trim() === '') usageError(io, '--tenant: required');
      if (!(flags.role in cliRoles)) usageError(io, `--role: must be read or write, got '${flags.role}'`);
      const ttlMs = parseDuration(flags.expiresIn);
      // vppd refuses tokens that live longer than VPPD_JWT_MAX_LIFETIME (default 90d): never mint one.
      const maxText = env.VPPD_JWT_MAX_LIFETIME?.trim() || '90d';
      const maxMs = parseDuration(maxText) ?? defaultSecurity.jwtMaxLifetimeSeconds * 1000;
      if (ttlMs === undefined || ttlMs < 1000 || ttlMs > maxMs) {
        usageError(
          io,
          `--expires-in: must be a duration from 1s to ${maxText} (VPPD_JWT_MAX_LIFETIME), like 1h, got '${flags.expiresIn}'`,
        );
      }
      const secret = env.VPPD_JWT_SECRET;
      if (secret === undefined || secret.trim() === '') {
        usageError(io, 'VPPD_JWT_SECRET: required (the secret vppd serve verifies tokens with)');
      }
      if (Buffer.byteLength(secret, 'utf8') < minJwtSecretBytes) {
        usageError(io, `VPPD_JWT_SECRET: must be at least ${minJwtSecretBytes} bytes`);
      }
      const now = deps.now?.() ?? new Date();
      const roles = [cliRoles[flags.role as CliRole]];
      const ttlSeconds = Math.floor(ttlMs / 1000);
      const accessToken = await issueAccessToken({
        secret: new TextEncoder().encode(secret),
        tenantId: flags.tenant,
        roles,
        ttlSeconds,
        now,
      });
      if (flags.json !== true) return io.stdout(`${accessToken}\n`);
      const expiresOn = formatGraphDateTime(
        new Date(Math.floor(now.getTime() / 1000) * 1000 + ttlSeconds * 1000),
      );
      io.stdout(
        `${JSON.stringify({ accessToken, tokenType: 'Bearer', expiresOn, tenantId: flags.tenant, roles }, null, 2)}\n`,
      );
    });
}
