import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';

/** How vppd talks TLS to PostgreSQL: libpq's `sslmode` values, as far as the `pg` driver can honour them. */
export const postgresSslModes = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
export type PostgresSslMode = (typeof postgresSslModes)[number];

/** Connections in the pool when `VPPD_DATABASE_POOL` is not set. */
export const defaultPostgresPoolSize = 10;

/**
 * A PostgreSQL database. `url` is for people (logs, the start-up line): its password is replaced by
 * `***`. The password itself is only in `connection`, which is never logged.
 */
export interface PostgresDatabaseConfig {
  readonly kind: 'postgres';
  readonly url: string;
  readonly poolSize: number;
  readonly sslMode: PostgresSslMode;
  readonly connection: PostgresConnectionSettings;
}

export interface PostgresConnectionSettings {
  /** A host name, an address, or a directory holding the server's unix socket. */
  readonly host: string;
  readonly port: number;
  readonly user: string | undefined;
  readonly password: string | undefined;
  readonly database: string | undefined;
  /** Files named by `sslrootcert`, `sslcert`, `sslkey` (read when the pool is created). */
  readonly sslRootCert?: string | undefined;
  readonly sslCert?: string | undefined;
  readonly sslKey?: string | undefined;
  /** `application_name` (default `vppd`). */
  readonly applicationName: string;
}

const knownParameters = new Set(['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'host', 'application_name']);

/**
 * Parses `postgres://user:password@host:5432/database?sslmode=require` (or `postgresql://`); undefined
 * for a URL of another engine. Query parameters: `sslmode` (see {@link postgresSslModes}; default
 * `disable`), `sslrootcert`, `sslcert`, `sslkey` (file paths), `host` (a unix socket directory instead
 * of the URL's host), `application_name`. Throws a message for the operator (never containing the
 * password) on anything else.
 */
export function parsePostgresUrl(url: string, poolSize: number): PostgresDatabaseConfig | undefined {
  if (!url.startsWith('postgres://') && !url.startsWith('postgresql://')) return undefined;
  let parsed: URL;
  try {
    // libpq allows an empty host (`postgres://user@/db?host=/run/postgresql`); WHATWG URLs do not.
    parsed = new URL(url.replace(/^(postgres(?:ql)?:\/\/(?:[^/?#@]*@)?)(?=[/?#]|$)/, '$1localhost'));
  } catch {
    throw new Error('is not a valid postgres:// URL');
  }
  for (const name of parsed.searchParams.keys()) {
    if (!knownParameters.has(name)) {
      throw new Error(
        `postgres:// URL parameter ${name} is not supported (known: ${[...knownParameters].join(', ')})`,
      );
    }
  }
  const mode = parsed.searchParams.get('sslmode') ?? 'disable';
  if (!(postgresSslModes as readonly string[]).includes(mode)) {
    throw new Error(
      `sslmode=${mode} is not supported: use ${postgresSslModes.join(', ')} (the driver cannot fall back from TLS to plain text, so allow/prefer have no equivalent)`,
    );
  }
  const socketDir = parsed.searchParams.get('host') ?? undefined;
  const host = socketDir ?? decodeURIComponent(parsed.hostname.replace(/^\[|\]$/g, ''));
  if (host === '') throw new Error('postgres:// URL needs a host');
  const port = parsed.port === '' ? 5432 : Number(parsed.port);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  const user = parsed.username === '' ? undefined : decodeURIComponent(parsed.username);
  const password = parsed.password === '' ? undefined : decodeURIComponent(parsed.password);
  const shown = new URL(parsed.toString());
  if (shown.password !== '') shown.password = '***';
  return {
    kind: 'postgres',
    url: shown.toString(),
    poolSize,
    sslMode: mode as PostgresSslMode,
    connection: {
      host,
      port,
      user,
      password,
      database: database === '' ? undefined : database,
      sslRootCert: parsed.searchParams.get('sslrootcert') ?? undefined,
      sslCert: parsed.searchParams.get('sslcert') ?? undefined,
      sslKey: parsed.searchParams.get('sslkey') ?? undefined,
      applicationName: parsed.searchParams.get('application_name') ?? 'vppd',
    },
  };
}

/**
 * The TLS options of `pg` for an sslmode, with libpq's meaning:
 * - `disable`: no TLS.
 * - `require`: TLS, the server's certificate is not checked (unless `sslrootcert` is given: then as
 *   `verify-ca`, like libpq). Protects against eavesdropping only.
 * - `verify-ca`: TLS, the certificate must chain to `sslrootcert` (or the system's CAs); any host name.
 * - `verify-full`: as `verify-ca`, and the certificate must name the host. Use this in production.
 * `sslcert`/`sslkey` present a client certificate.
 */
export function postgresTlsOptions(config: PostgresDatabaseConfig): false | ConnectionOptions {
  const { sslMode, connection } = config;
  if (sslMode === 'disable') return false;
  const files: ConnectionOptions = {
    ...(connection.sslRootCert ? { ca: readFileSync(connection.sslRootCert, 'utf8') } : {}),
    ...(connection.sslCert ? { cert: readFileSync(connection.sslCert, 'utf8') } : {}),
    ...(connection.sslKey ? { key: readFileSync(connection.sslKey, 'utf8') } : {}),
  };
  if (sslMode === 'require' && connection.sslRootCert === undefined) {
    return { ...files, rejectUnauthorized: false };
  }
  if (sslMode === 'verify-full') return { ...files, rejectUnauthorized: true };
  // verify-ca (or require with a root certificate): the chain is checked, the host name is not.
  return { ...files, rejectUnauthorized: true, checkServerIdentity: () => undefined };
}
