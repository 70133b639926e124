import { randomBytes, randomUUID } from 'node:crypto';
import { type Logger, pino } from 'pino';
import type { Config } from './config.js';
import { type Authenticator, createAuthenticator } from './graph/auth/authenticator.js';
import { openDatabase, type VppdDatabase } from './storage/open-database.js';
import { createTokenCipher } from './storage/token-cipher.js';
import { createVppTokenStore, type VppTokenStore } from './storage/vpp-token-store.js';

/** Everything that varies between production and tests comes in here. */
export interface ContextOverrides {
  readonly clock?: () => Date;
  /** New GUIDs (token ids, request ids). */
  readonly newId?: () => string;
  readonly randomBytes?: (size: number) => Buffer;
  readonly logger?: Logger;
  /** The fetch used for outgoing HTTP (JWKS today, Apple later). */
  readonly fetch?: typeof fetch;
}

/** The composition root: every service built once from the configuration, disposed once. */
export interface AppContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly clock: () => Date;
  readonly newId: () => string;
  readonly db: VppdDatabase;
  readonly tokens: VppTokenStore;
  readonly authenticator: Authenticator;
  /** Closes the database and everything else the context opened; safe to call twice. */
  dispose(): Promise<void>;
}

/** Paths pino removes from every log line: credentials and the sToken. */
export const redactedLogPaths = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'token',
  '*.token',
  'sToken',
  '*.sToken',
  'body.token',
];

/** Creates the application logger (JSON lines on stdout). */
export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  return pino({
    name: 'vppd',
    level: config.logLevel,
    redact: { paths: redactedLogPaths, censor: '[redacted]' },
  });
}

/** Builds the services from a validated configuration: logger, database (migrated), stores, auth. */
export async function createContext(config: Config, overrides: ContextOverrides = {}): Promise<AppContext> {
  const clock = overrides.clock ?? (() => new Date());
  const newId = overrides.newId ?? randomUUID;
  const logger = overrides.logger ?? createLogger(config);
  const db = await openDatabase(config.database);
  const cipher = createTokenCipher(config.encryptionKey, overrides.randomBytes ?? randomBytes);
  const tokens = createVppTokenStore({ db, cipher, clock });
  const authenticator = createAuthenticator(config.auth, {
    clock,
    ...(overrides.fetch ? { fetch: overrides.fetch } : {}),
  });
  let disposed: Promise<void> | undefined;
  return {
    config,
    logger,
    clock,
    newId,
    db,
    tokens,
    authenticator,
    dispose() {
      disposed ??= db.destroy();
      return disposed;
    },
  };
}
