import { isIP } from 'node:net';
import { z } from 'zod';
import { parseWebhookAllow, type WebhookAllowEntry } from './alerts/webhook-address-policy.js';
import { errors } from './domain/errors.js';
import {
  type DatabaseConfig,
  type MigrateMode,
  migrateModes,
  parseDatabaseUrl as parseStorageUrl,
} from './storage/open-database.js';

/**
 * Configuration of `vppd serve`: read raw strings (flags over env) with {@link readEnv}, validate them
 * once with {@link parseConfig}, then hand the result to `createContext`. Nothing else reads the
 * environment. See docs/architecture.md, "Running it".
 */

/** Apple's production Apps and Books v2 base URL (docs/apple.md, "Configuration"). */
export const appleProductionUrl = 'https://vpp.itunes.apple.com/mdm/v2';

/** Where `vppd serve` keeps its database by default. */
export const defaultDatabaseUrl = 'sqlite:./data/vppd.db';

/** The tenant (`tid`) of the demo's printed bearer token. */
export const demoTenantId = '0d3e0000-0000-4000-8000-000000000001';

/** Raw settings as strings, exactly as given by flags or the environment; undefined when unset. */
export interface RawSettings {
  readonly port?: string | undefined;
  readonly host?: string | undefined;
  readonly database?: string | undefined;
  /** Connections of the PostgreSQL pool (ignored on SQLite). */
  readonly databasePool?: string | undefined;
  /** `auto` (default): start-up applies pending migrations; `off`: it refuses a schema not current. */
  readonly migrate?: string | undefined;
  readonly appleUrl?: string | undefined;
  readonly appleMetadataUrl?: string | undefined;
  readonly syncInterval?: string | undefined;
  /** Delta syncs between full ones: a duration, or `0`/`off`. */
  readonly deltaSyncInterval?: string | undefined;
  readonly demo?: boolean | undefined;
  readonly jwtSecret?: string | undefined;
  readonly jwksUrl?: string | undefined;
  readonly jwtIssuer?: string | undefined;
  readonly jwtAudience?: string | undefined;
  readonly encryptionKey?: string | undefined;
  readonly logLevel?: string | undefined;
  /** Which parts run in this process: `all` (default), `api`, `worker`. */
  readonly role?: string | undefined;
  readonly syncConcurrency?: string | undefined;
  /** Syncs running at once across every process on the database (default: the concurrency). */
  readonly syncMaxActive?: string | undefined;
  readonly syncLease?: string | undefined;
  /** `1`: syncs run in a worker thread of their own (the default); `0`: in the request thread. */
  readonly syncThreads?: string | undefined;
  /** How long SIGTERM/SIGINT waits for running syncs before giving them back. */
  readonly shutdownGrace?: string | undefined;
  /** Bearer token `GET /metrics` requires; unset: /metrics answers loopback clients only. */
  readonly metricsToken?: string | undefined;
  /** `off` (default) or the most apps `/metrics` reports per-app license series for. */
  readonly metricsAppLicenses?: string | undefined;
  /** Proxy addresses or CIDRs (comma-separated) whose forwarded headers are believed. */
  readonly trustProxy?: string | undefined;
  /** The external base URL, pinned (wins over forwarded headers). */
  readonly publicUrl?: string | undefined;
  /** `intune`: apply Graph's published per-tenant and per-app limits; unset or `off`: none. */
  readonly graphThrottling?: string | undefined;
  // Hardening (issue 17): limits vppd enforces by itself; README "Security".
  /** Longest a request may take to arrive, headers and body (default 30 s). */
  readonly requestTimeout?: string | undefined;
  /** Most open client connections of this process (default 800, for a 1,024 file limit). */
  readonly maxConnections?: string | undefined;
  /** Hosts and CIDRs webhook deliveries may reach although they are not public addresses. */
  readonly webhookAllow?: string | undefined;
  /** Longest lifetime of an accepted bearer token, from `iat` (or `nbf`) to `exp` (default 90d). */
  readonly jwtMaxLifetime?: string | undefined;
  /** Most open `/vppd/v1/events` streams per tenant in this process (default 20). */
  readonly maxStreamsPerTenant?: string | undefined;
  /** How long sync history is kept (each token's last 50 runs, last success and failure always). */
  readonly historyRetention?: string | undefined;
  /** How long the event log keeps events the alert scanner has passed (default 7d). */
  readonly eventRetention?: string | undefined;
}

/** The name a user sees for each setting in error messages (env name, plus the flag where there is one). */
export const settingNames: Readonly<Record<keyof RawSettings, string>> = {
  port: 'VPPD_PORT (--port)',
  host: 'VPPD_HOST (--host)',
  database: 'VPPD_DATABASE_URL (--database)',
  databasePool: 'VPPD_DATABASE_POOL',
  migrate: 'VPPD_MIGRATE',
  appleUrl: 'VPPD_APPLE_URL (--apple-url)',
  appleMetadataUrl: 'VPPD_APPLE_METADATA_URL',
  syncInterval: 'VPPD_SYNC_INTERVAL (--sync-interval)',
  deltaSyncInterval: 'VPPD_DELTA_SYNC_INTERVAL (--delta-sync-interval)',
  demo: '--demo',
  jwtSecret: 'VPPD_JWT_SECRET',
  jwksUrl: 'VPPD_JWKS_URL',
  jwtIssuer: 'VPPD_JWT_ISSUER',
  jwtAudience: 'VPPD_JWT_AUDIENCE',
  encryptionKey: 'VPPD_ENCRYPTION_KEY',
  logLevel: 'VPPD_LOG_LEVEL',
  role: 'VPPD_ROLE (--role)',
  syncConcurrency: 'VPPD_SYNC_CONCURRENCY',
  syncMaxActive: 'VPPD_SYNC_MAX_ACTIVE',
  syncLease: 'VPPD_SYNC_LEASE',
  syncThreads: 'VPPD_SYNC_THREADS',
  shutdownGrace: 'VPPD_SHUTDOWN_GRACE',
  metricsToken: 'VPPD_METRICS_TOKEN',
  metricsAppLicenses: 'VPPD_METRICS_APP_LICENSES',
  trustProxy: 'VPPD_TRUST_PROXY (--trust-proxy)',
  publicUrl: 'VPPD_PUBLIC_URL (--public-url)',
  graphThrottling: 'VPPD_GRAPH_THROTTLING',
  requestTimeout: 'VPPD_REQUEST_TIMEOUT',
  maxConnections: 'VPPD_MAX_CONNECTIONS',
  webhookAllow: 'VPPD_WEBHOOK_ALLOW',
  jwtMaxLifetime: 'VPPD_JWT_MAX_LIFETIME',
  maxStreamsPerTenant: 'VPPD_MAX_STREAMS_PER_TENANT',
  historyRetention: 'VPPD_HISTORY_RETENTION',
  eventRetention: 'VPPD_EVENT_RETENTION',
};

/** Reads the vppd settings from an environment (blank values count as unset). */
export function readEnv(env: Readonly<Record<string, string | undefined>>): RawSettings {
  const get = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value;
  };
  return {
    port: get('VPPD_PORT'),
    host: get('VPPD_HOST'),
    database: get('VPPD_DATABASE_URL'),
    databasePool: get('VPPD_DATABASE_POOL'),
    migrate: get('VPPD_MIGRATE'),
    appleUrl: get('VPPD_APPLE_URL'),
    appleMetadataUrl: get('VPPD_APPLE_METADATA_URL'),
    syncInterval: get('VPPD_SYNC_INTERVAL'),
    deltaSyncInterval: get('VPPD_DELTA_SYNC_INTERVAL'),
    jwtSecret: get('VPPD_JWT_SECRET'),
    jwksUrl: get('VPPD_JWKS_URL'),
    jwtIssuer: get('VPPD_JWT_ISSUER'),
    jwtAudience: get('VPPD_JWT_AUDIENCE'),
    encryptionKey: get('VPPD_ENCRYPTION_KEY'),
    logLevel: get('VPPD_LOG_LEVEL'),
    role: get('VPPD_ROLE'),
    syncConcurrency: get('VPPD_SYNC_CONCURRENCY'),
    syncMaxActive: get('VPPD_SYNC_MAX_ACTIVE'),
    syncLease: get('VPPD_SYNC_LEASE'),
    syncThreads: get('VPPD_SYNC_THREADS'),
    shutdownGrace: get('VPPD_SHUTDOWN_GRACE'),
    metricsToken: get('VPPD_METRICS_TOKEN'),
    metricsAppLicenses: get('VPPD_METRICS_APP_LICENSES'),
    trustProxy: get('VPPD_TRUST_PROXY'),
    publicUrl: get('VPPD_PUBLIC_URL'),
    graphThrottling: get('VPPD_GRAPH_THROTTLING'),
    requestTimeout: get('VPPD_REQUEST_TIMEOUT'),
    maxConnections: get('VPPD_MAX_CONNECTIONS'),
    webhookAllow: get('VPPD_WEBHOOK_ALLOW'),
    jwtMaxLifetime: get('VPPD_JWT_MAX_LIFETIME'),
    maxStreamsPerTenant: get('VPPD_MAX_STREAMS_PER_TENANT'),
    historyRetention: get('VPPD_HISTORY_RETENTION'),
    eventRetention: get('VPPD_EVENT_RETENTION'),
  };
}

/** Where the data lives (defined by storage, which opens it). */
export type { DatabaseConfig };

/** How bearer tokens are verified. */
export type AuthConfig =
  | { readonly kind: 'hs256'; readonly secret: Uint8Array }
  | { readonly kind: 'jwks'; readonly jwksUrl: URL; readonly issuer: string; readonly audience: string };

/** Which parts of vppd a process runs: the API, the sync worker and scheduler, or both. */
export const processRoles = ['all', 'api', 'worker'] as const;
export type ProcessRole = (typeof processRoles)[number];

/** A proxy address or network whose forwarded headers are believed (`10.0.0.0/8`, `::1`). */
export interface TrustedProxyRange {
  readonly family: 'ipv4' | 'ipv6';
  readonly address: string;
  /** Prefix length; 32 (IPv4) or 128 (IPv6) for a single address. */
  readonly prefix: number;
}

/** Graph throttling modes: `off` (default) or `intune` (Intune's published limits, per process). */
export const graphThrottlingModes = ['off', 'intune'] as const;
export type GraphThrottlingMode = (typeof graphThrottlingModes)[number];

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

/** Validated configuration; secrets are held as bytes and never printed. */
export interface Config {
  readonly port: number;
  readonly host: string;
  readonly database: DatabaseConfig;
  /** Whether start-up migrates the schema (`auto`) or refuses one that is not current (`off`). */
  readonly migrate: MigrateMode;
  readonly apple: { readonly baseUrl: string; readonly metadataUrl: string | undefined };
  readonly syncIntervalMs: number;
  /** Delta syncs between full ones (`VPPD_DELTA_SYNC_INTERVAL`, default 15 min); 0 when off. */
  readonly deltaSyncIntervalMs: number;
  /**
   * The sync machinery: role of this process, global concurrency, lease of a running sync, and how
   * long sync history is kept (`VPPD_HISTORY_RETENTION`, default 90 days) and events of the event log
   * (`VPPD_EVENT_RETENTION`, default 7 days).
   */
  readonly sync: {
    readonly role: ProcessRole;
    /** Syncs this process runs at once (`VPPD_SYNC_CONCURRENCY`). */
    readonly concurrency: number;
    /** Syncs running at once across every process on the database (`VPPD_SYNC_MAX_ACTIVE`). */
    readonly maxActive: number;
    readonly leaseMs: number;
    readonly historyRetentionMs: number;
    readonly eventRetentionMs: number;
    /**
     * Sync threads (`VPPD_SYNC_THREADS`): 1 (default) runs the worker in a worker thread of its own,
     * so its GC and SQLite statements never hold up requests; 0 runs it in the request thread. An
     * in-memory database cannot be shared with another thread: its syncs always run in-thread.
     */
    readonly threads: 0 | 1;
  };
  readonly demo: boolean;
  readonly auth: AuthConfig;
  /** 32 bytes: AES-256-GCM key for sTokens at rest (and the root of the fingerprint key). */
  readonly encryptionKey: Buffer;
  readonly logLevel: LogLevel;
  /** On SIGTERM/SIGINT: how long running syncs may finish before their jobs are given back (default 20 s). */
  readonly shutdownGraceMs: number;
  /** Bearer token of `GET /metrics`; undefined: only loopback clients may scrape. */
  readonly metricsToken?: string | undefined;
  /** Per-app license series on `/metrics`: 0 (off, the default) or the most apps reported (cardinality guard). */
  readonly metricsAppLicenses: number;
  /** How absolute URLs (links, `Location`) are built behind a reverse proxy. */
  readonly externalUrl: {
    /** Peers whose `X-Forwarded-*` / `Forwarded` headers are believed (none by default). */
    readonly trustedProxies: readonly TrustedProxyRange[];
    /** The pinned external base (`https://tools.example.com/vppd`, no trailing slash); wins over headers. */
    readonly publicUrl: string | undefined;
  };
  /** Graph's throttling limits (`intune`) or none (`off`, default). */
  readonly graphThrottling: GraphThrottlingMode;
  /** Limits against abusive clients and tenants (README "Security"). */
  readonly security: SecurityConfig;
}

/** The limits of issue 17's hardening, all with safe defaults. */
export interface SecurityConfig {
  /** Whole-request receive timeout (headers and body); headers alone get at most 10 s of it. */
  readonly requestTimeoutMs: number;
  /** Most open client connections (node's `server.maxConnections`). */
  readonly maxConnections: number;
  /** Exceptions to "webhooks reach public addresses only": host names, addresses and CIDRs. */
  readonly webhookAllow: readonly WebhookAllowEntry[];
  /** Longest accepted bearer-token lifetime (`exp` minus `iat`, or `nbf`), in seconds. */
  readonly jwtMaxLifetimeSeconds: number;
  /** Most open event streams per tenant. */
  readonly maxStreamsPerTenant: number;
}

/** The defaults of {@link SecurityConfig}. */
export const defaultSecurity: SecurityConfig = {
  requestTimeoutMs: 30_000,
  maxConnections: 800,
  webhookAllow: [],
  jwtMaxLifetimeSeconds: 90 * 86_400,
  maxStreamsPerTenant: 20,
};

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Smallest accepted HS256 secret, in bytes (RFC 7518 §3.2: at least the hash size). */
export const minJwtSecretBytes = 32;

const durationUnits = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Parses `90s`, `30m`, `12h`, `1d` (or plain seconds) into milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,9})(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? 's') as keyof typeof durationUnits;
  return Number(m[1]) * durationUnits[unit];
}

const httpUrl = (what: string) =>
  z.string().refine(
    (value) => {
      try {
        const url = new URL(value);
        return url.protocol === 'http:' || url.protocol === 'https:';
      } catch {
        return false;
      }
    },
    { message: `must be an http(s) URL${what}` },
  );

// One zod schema per setting: each failure turns into one line naming that setting.
const fieldSchemas = {
  port: z
    .string()
    .regex(/^\d{1,5}$/, { message: 'must be a port number 0-65535' })
    .transform(Number)
    .refine((n) => n <= 65535, { message: 'must be a port number 0-65535' }),
  host: z.string().min(1, { message: 'must not be empty' }),
  appleUrl: httpUrl(''),
  appleMetadataUrl: httpUrl(''),
  syncInterval: z
    .string()
    .transform((text) => parseDuration(text))
    .refine((ms) => ms !== undefined, { message: 'must be a duration like 30m, 12h or 1d' })
    .transform((ms) => ms as number)
    .refine((ms) => ms >= 60_000 && ms <= 30 * 86_400_000, { message: 'must be between 1m and 30d' }),
  deltaSyncInterval: z
    .string()
    .transform((text) => (/^\s*(0|off)\s*$/i.test(text) ? 0 : parseDuration(text)))
    .refine((ms) => ms !== undefined, { message: 'must be a duration like 15m or 1h, or 0/off' })
    .transform((ms) => ms as number)
    .refine((ms) => ms === 0 || (ms >= 60_000 && ms <= 30 * 86_400_000), {
      message: 'must be between 1m and 30d, or 0/off',
    }),
  encryptionKey: z
    .string()
    .transform((text) => text.trim())
    .refine((text) => base64Pattern.test(text) && Buffer.from(text, 'base64').length === 32, {
      message: 'must be 32 bytes, base64 (e.g. `openssl rand -base64 32`)',
    })
    .transform((text) => Buffer.from(text, 'base64')),
  jwtSecret: z.string().refine((text) => Buffer.byteLength(text, 'utf8') >= minJwtSecretBytes, {
    message: `must be at least ${minJwtSecretBytes} bytes`,
  }),
  jwksUrl: httpUrl('').transform((text) => new URL(text)),
  jwtIssuer: z.string().min(1, { message: 'must not be empty' }),
  jwtAudience: z.string().min(1, { message: 'must not be empty' }),
  logLevel: z.enum(logLevels, { message: `must be one of ${logLevels.join(', ')}` }),
  migrate: z.enum(migrateModes, { message: `must be one of ${migrateModes.join(', ')}` }),
  role: z.enum(processRoles, { message: `must be one of ${processRoles.join(', ')}` }),
  syncConcurrency: z
    .string()
    .regex(/^\d{1,3}$/, { message: 'must be a whole number 1-100' })
    .transform(Number)
    .refine((n) => n >= 1 && n <= 100, { message: 'must be a whole number 1-100' }),
  syncMaxActive: z
    .string()
    .regex(/^\d{1,4}$/, { message: 'must be a whole number 1-1000' })
    .transform(Number)
    .refine((n) => n >= 1 && n <= 1000, { message: 'must be a whole number 1-1000' }),
  syncThreads: z
    .enum(['0', '1'], {
      message: 'must be 0 (syncs run in the request thread) or 1 (in a worker thread of their own)',
    })
    .transform((text) => (text === '1' ? 1 : 0) as 0 | 1),
  syncLease: z
    .string()
    .transform((text) => parseDuration(text))
    .refine((ms) => ms !== undefined && ms >= 1000 && ms <= 3_600_000, {
      message: 'must be a duration between 1s and 1h, like 30s',
    })
    .transform((ms) => ms as number),
  shutdownGrace: z
    .string()
    .transform((text) => parseDuration(text))
    .refine((ms) => ms !== undefined && ms <= 3_600_000, {
      message: 'must be a duration up to 1h, like 20s (0 gives running syncs back at once)',
    })
    .transform((ms) => ms as number),
  historyRetention: z
    .string()
    .transform((text) => parseDuration(text))
    .refine((ms) => ms !== undefined && ms >= 86_400_000 && ms <= 3650 * 86_400_000, {
      message: 'must be a duration between 1d and 3650d, like 90d',
    })
    .transform((ms) => ms as number),
  eventRetention: z
    .string()
    .transform((text) => parseDuration(text))
    .refine((ms) => ms !== undefined && ms >= 3_600_000 && ms <= 365 * 86_400_000, {
      message: 'must be a duration between 1h and 365d, like 7d',
    })
    .transform((ms) => ms as number),
  databasePool: z
    .string()
    .regex(/^\d{1,4}$/, { message: 'must be a whole number 1-1000' })
    .transform(Number)
    .refine((n) => n >= 1 && n <= 1000, { message: 'must be a whole number 1-1000' }),
  metricsAppLicenses: z
    .string()
    .regex(/^(off|\d{1,6})$/, { message: 'must be off or the most apps to report, 1-100000' })
    .transform((text) => (text === 'off' ? 0 : Number(text)))
    .refine((n) => n <= 100_000, { message: 'must be off or the most apps to report, 1-100000' }),
  metricsToken: z.string().refine((text) => Buffer.byteLength(text, 'utf8') >= 16, {
    message: 'must be at least 16 bytes',
  }),
  publicUrl: z
    .string()
    .transform((text) => text.trim())
    .refine(isPublicBaseUrl, {
      message:
        'must be an absolute http(s) URL without query or fragment, like https://tools.example.com/vppd',
    })
    .transform((text) => text.replace(/\/+$/, '')),
  graphThrottling: z.enum(graphThrottlingModes, {
    message: `must be one of ${graphThrottlingModes.join(', ')}`,
  }),
  requestTimeout: z
    .string()
    .transform((text) => parseDuration(text))
    .refine((ms) => ms !== undefined && ms >= 1000 && ms <= 600_000, {
      message: 'must be a duration between 1s and 10m, like 30s',
    })
    .transform((ms) => ms as number),
  maxConnections: z
    .string()
    .regex(/^\d{1,6}$/, { message: 'must be a whole number 1-1000000' })
    .transform(Number)
    .refine((n) => n >= 1, { message: 'must be a whole number 1-1000000' }),
  webhookAllow: z.string().transform((text, ctx) => {
    try {
      return parseWebhookAllow(text);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: error instanceof Error ? error.message : String(error) });
      return z.NEVER;
    }
  }),
  jwtMaxLifetime: z
    .string()
    .transform((text) => parseDuration(text))
    .refine((ms) => ms !== undefined && ms >= 60_000 && ms <= 3650 * 86_400_000, {
      message: 'must be a duration between 1m and 3650d, like 90d',
    })
    .transform((ms) => Math.floor((ms as number) / 1000)),
  maxStreamsPerTenant: z
    .string()
    .regex(/^\d{1,4}$/, { message: 'must be a whole number 1-1000' })
    .transform(Number)
    .refine((n) => n >= 1 && n <= 1000, { message: 'must be a whole number 1-1000' }),
} as const;

function isPublicBaseUrl(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  return (
    (url.protocol === 'http:' || url.protocol === 'https:') &&
    url.host !== '' &&
    url.username === '' &&
    url.password === '' &&
    !text.includes('?') &&
    !text.includes('#')
  );
}

/**
 * Parses `VPPD_TRUST_PROXY`: comma-separated IPv4/IPv6 addresses or CIDRs (`10.0.0.0/8`, `fd00::/8`,
 * `127.0.0.1`). Throws one config error naming the first bad entry.
 */
export function parseTrustedProxies(text: string): TrustedProxyRange[] {
  const name = settingNames.trustProxy;
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) throw errors.config(name, 'must list proxy addresses or CIDRs');
  return entries.map((entry) => {
    const [address = '', prefixText, ...rest] = entry.split('/');
    const version = isIP(address);
    if (version === 0 || rest.length > 0) {
      throw errors.config(name, `'${entry}' is not an IPv4/IPv6 address or CIDR (like 10.0.0.0/8 or ::1)`);
    }
    const family = version === 4 ? 'ipv4' : 'ipv6';
    const max = version === 4 ? 32 : 128;
    const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : -1;
    if (prefix < 0 || prefix > max) {
      throw errors.config(name, `'${entry}': the prefix length must be 0-${max}`);
    }
    return { family, address, prefix };
  });
}

function parseField<K extends keyof typeof fieldSchemas>(
  key: K,
  value: string,
): z.output<(typeof fieldSchemas)[K]> {
  const result = fieldSchemas[key].safeParse(value);
  if (!result.success) {
    throw errors.config(settingNames[key], result.error.issues[0]?.message ?? 'is invalid');
  }
  return result.data as z.output<(typeof fieldSchemas)[K]>;
}

/**
 * Parses a `--database` URL: `sqlite:<path>`, `sqlite::memory:`, `postgres://…`/`postgresql://…`
 * (storage decides what each engine accepts); `poolSize` comes from `VPPD_DATABASE_POOL`.
 */
export function parseDatabaseUrl(url: string, poolSize?: number): DatabaseConfig {
  try {
    return parseStorageUrl(url, poolSize === undefined ? {} : { poolSize });
  } catch (error) {
    throw errors.config(settingNames.database, error instanceof Error ? error.message : 'is invalid');
  }
}

function parseAuth(raw: RawSettings): AuthConfig {
  const anyJwks = raw.jwksUrl ?? raw.jwtIssuer ?? raw.jwtAudience;
  if (raw.jwtSecret !== undefined && anyJwks !== undefined) {
    throw errors.config(
      settingNames.jwtSecret,
      'set either VPPD_JWT_SECRET or VPPD_JWKS_URL + VPPD_JWT_ISSUER + VPPD_JWT_AUDIENCE, not both',
    );
  }
  if (raw.jwtSecret !== undefined) {
    const secret = parseField('jwtSecret', raw.jwtSecret);
    return { kind: 'hs256', secret: new TextEncoder().encode(secret) };
  }
  if (anyJwks === undefined) {
    throw errors.config(
      settingNames.jwtSecret,
      'required (or VPPD_JWKS_URL + VPPD_JWT_ISSUER + VPPD_JWT_AUDIENCE); `vppd serve --demo` generates one',
    );
  }
  for (const key of ['jwksUrl', 'jwtIssuer', 'jwtAudience'] as const) {
    if (raw[key] === undefined) throw errors.config(settingNames[key], 'required when VPPD_JWKS_URL is used');
  }
  return {
    kind: 'jwks',
    jwksUrl: parseField('jwksUrl', raw.jwksUrl as string),
    issuer: parseField('jwtIssuer', raw.jwtIssuer as string),
    audience: parseField('jwtAudience', raw.jwtAudience as string),
  };
}

/**
 * Validates raw settings and applies defaults. Throws VppdError(config) whose message is one line
 * naming the setting, e.g. `VPPD_ENCRYPTION_KEY: must be 32 bytes, base64`.
 */
export function parseConfig(raw: RawSettings): Config {
  const port = raw.port === undefined ? 8080 : parseField('port', raw.port);
  const host = raw.host === undefined ? '127.0.0.1' : parseField('host', raw.host);
  const database = parseDatabaseUrl(
    raw.database ?? defaultDatabaseUrl,
    raw.databasePool === undefined ? undefined : parseField('databasePool', raw.databasePool),
  );
  const baseUrl = raw.appleUrl === undefined ? appleProductionUrl : parseField('appleUrl', raw.appleUrl);
  const metadataUrl =
    raw.appleMetadataUrl === undefined ? undefined : parseField('appleMetadataUrl', raw.appleMetadataUrl);
  const syncIntervalMs =
    raw.syncInterval === undefined ? 12 * 3_600_000 : parseField('syncInterval', raw.syncInterval);
  if (raw.encryptionKey === undefined) {
    throw errors.config(
      settingNames.encryptionKey,
      'required: 32 bytes, base64 (e.g. `openssl rand -base64 32`); `vppd serve --demo` generates one',
    );
  }
  const encryptionKey = parseField('encryptionKey', raw.encryptionKey);
  const auth = parseAuth(raw);
  const logLevel = raw.logLevel === undefined ? 'info' : parseField('logLevel', raw.logLevel);
  const concurrency =
    raw.syncConcurrency === undefined ? 4 : parseField('syncConcurrency', raw.syncConcurrency);
  const sync = {
    role: raw.role === undefined ? ('all' as const) : parseField('role', raw.role),
    concurrency,
    // One process, or several sharing the limit as before: the cluster-wide limit defaults to the
    // process's own. Replicas that should add up set it to replicas x concurrency (README).
    maxActive: raw.syncMaxActive === undefined ? concurrency : parseField('syncMaxActive', raw.syncMaxActive),
    leaseMs: raw.syncLease === undefined ? 30_000 : parseField('syncLease', raw.syncLease),
    threads: raw.syncThreads === undefined ? (1 as const) : parseField('syncThreads', raw.syncThreads),
    historyRetentionMs:
      raw.historyRetention === undefined
        ? 90 * 86_400_000
        : parseField('historyRetention', raw.historyRetention),
    eventRetentionMs:
      raw.eventRetention === undefined ? 7 * 86_400_000 : parseField('eventRetention', raw.eventRetention),
  };
  const shutdownGraceMs =
    raw.shutdownGrace === undefined ? 20_000 : parseField('shutdownGrace', raw.shutdownGrace);
  return {
    port,
    host,
    database,
    migrate: raw.migrate === undefined ? 'auto' : parseField('migrate', raw.migrate),
    apple: { baseUrl: baseUrl.replace(/\/+$/, ''), metadataUrl },
    syncIntervalMs,
    deltaSyncIntervalMs:
      raw.deltaSyncInterval === undefined
        ? 15 * 60_000
        : parseField('deltaSyncInterval', raw.deltaSyncInterval),
    sync,
    demo: raw.demo === true,
    auth,
    encryptionKey,
    logLevel,
    shutdownGraceMs,
    ...(raw.metricsToken === undefined ? {} : { metricsToken: parseField('metricsToken', raw.metricsToken) }),
    metricsAppLicenses:
      raw.metricsAppLicenses === undefined ? 0 : parseField('metricsAppLicenses', raw.metricsAppLicenses),
    externalUrl: {
      trustedProxies: raw.trustProxy === undefined ? [] : parseTrustedProxies(raw.trustProxy),
      publicUrl: raw.publicUrl === undefined ? undefined : parseField('publicUrl', raw.publicUrl),
    },
    graphThrottling:
      raw.graphThrottling === undefined ? 'off' : parseField('graphThrottling', raw.graphThrottling),
    security: parseSecurity(raw),
  };
}

function parseSecurity(raw: RawSettings): SecurityConfig {
  const d = defaultSecurity;
  return {
    requestTimeoutMs:
      raw.requestTimeout === undefined
        ? d.requestTimeoutMs
        : parseField('requestTimeout', raw.requestTimeout),
    maxConnections:
      raw.maxConnections === undefined ? d.maxConnections : parseField('maxConnections', raw.maxConnections),
    webhookAllow:
      raw.webhookAllow === undefined ? d.webhookAllow : parseField('webhookAllow', raw.webhookAllow),
    jwtMaxLifetimeSeconds:
      raw.jwtMaxLifetime === undefined
        ? d.jwtMaxLifetimeSeconds
        : parseField('jwtMaxLifetime', raw.jwtMaxLifetime),
    maxStreamsPerTenant:
      raw.maxStreamsPerTenant === undefined
        ? d.maxStreamsPerTenant
        : parseField('maxStreamsPerTenant', raw.maxStreamsPerTenant),
  };
}

/** Merges settings: values in `over` (flags) win over `under` (env) where they are set. */
export function mergeSettings(under: RawSettings, over: RawSettings): RawSettings {
  const merged: Record<string, unknown> = { ...under };
  for (const [key, value] of Object.entries(over)) {
    if (value !== undefined) merged[key] = value;
  }
  return merged as RawSettings;
}

/** The file `serve --demo` keeps its generated secrets in (mode 0600), inside the data directory. */
export const demoSecretsFileName = 'demo-secrets.json';

export interface DemoSecretsOptions {
  /** Directory holding the secrets file (default `./data`). */
  readonly dataDir: string;
  readonly randomBytes?: (size: number) => Buffer;
}

/** What {@link ensureDemoSecrets} did, for the start-up message. */
export interface DemoSecretsResult {
  readonly settings: RawSettings;
  /** Settings filled from the secrets file or freshly generated (names only). */
  readonly filled: readonly ('encryptionKey' | 'jwtSecret')[];
  readonly file: string;
}

/**
 * For `serve --demo` only: fills `VPPD_ENCRYPTION_KEY` and (when no JWKS is configured)
 * `VPPD_JWT_SECRET` from `<dataDir>/demo-secrets.json`, generating and saving them (mode 0600) the
 * first time, so restarts keep decrypting stored tokens and accepting the printed bearer token.
 */
export async function ensureDemoSecrets(
  raw: RawSettings,
  options: DemoSecretsOptions,
): Promise<DemoSecretsResult> {
  const { readFile, rename, writeFile, chmod } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const random = options.randomBytes ?? (await import('node:crypto')).randomBytes;
  const file = join(options.dataDir, demoSecretsFileName);
  const needKey = raw.encryptionKey === undefined;
  const needSecret = raw.jwtSecret === undefined && raw.jwksUrl === undefined;
  if (!needKey && !needSecret) return { settings: raw, filled: [], file };

  let stored: { encryptionKey?: unknown; jwtSecret?: unknown } = {};
  try {
    stored = JSON.parse(await readFile(file, 'utf8')) as typeof stored;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw errors.config('--demo', `cannot read ${file}: delete it to regenerate the demo secrets`);
    }
  }
  const encryptionKey =
    typeof stored.encryptionKey === 'string' ? stored.encryptionKey : random(32).toString('base64');
  const jwtSecret =
    typeof stored.jwtSecret === 'string' ? stored.jwtSecret : random(48).toString('base64url');
  if (stored.encryptionKey !== encryptionKey || stored.jwtSecret !== jwtSecret) {
    // Private whatever the umask: the directory also holds the demo's database.
    const { mkdirPrivateSync } = await import('./storage/private-directory.js');
    mkdirPrivateSync(options.dataDir);
    const temporary = `${file}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify({ encryptionKey, jwtSecret }, null, 2)}\n`, { mode: 0o600 });
    await chmod(temporary, 0o600);
    await rename(temporary, file);
  }
  const filled: ('encryptionKey' | 'jwtSecret')[] = [];
  if (needKey) filled.push('encryptionKey');
  if (needSecret) filled.push('jwtSecret');
  return {
    settings: {
      ...raw,
      ...(needKey ? { encryptionKey } : {}),
      ...(needSecret ? { jwtSecret } : {}),
    },
    filled,
    file,
  };
}
