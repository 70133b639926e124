import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ensureDemoSecrets,
  mergeSettings,
  parseConfig,
  parseDuration,
  type RawSettings,
  readEnv,
} from './config.js';
import { isVppdError } from './domain/errors.js';

const key = Buffer.alloc(32, 7).toString('base64');
const secret = 'x'.repeat(32);
const minimal: RawSettings = { encryptionKey: key, jwtSecret: secret };

function configError(raw: RawSettings): string {
  try {
    parseConfig(raw);
  } catch (error) {
    if (isVppdError(error, 'config')) return error.message;
    throw error;
  }
  throw new Error('expected a config error');
}

describe('parseConfig', () => {
  it('applies the contract defaults', () => {
    const config = parseConfig(minimal);
    expect(config.port).toBe(8080);
    expect(config.host).toBe('127.0.0.1');
    expect(config.database).toEqual({
      kind: 'sqlite',
      url: 'sqlite:./data/vppd.db',
      filename: './data/vppd.db',
    });
    expect(config.apple.baseUrl).toBe('https://vpp.itunes.apple.com/mdm/v2');
    expect(config.syncIntervalMs).toBe(12 * 3600_000);
    expect(config.demo).toBe(false);
    expect(config.auth.kind).toBe('hs256');
    expect(config.encryptionKey.length).toBe(32);
  });

  it('reads every setting from the environment, blank meaning unset', () => {
    const raw = readEnv({
      VPPD_PORT: '9090',
      VPPD_HOST: '0.0.0.0',
      VPPD_DATABASE_URL: 'sqlite::memory:',
      VPPD_APPLE_URL: 'http://127.0.0.1:9999/mdm/v2/',
      VPPD_APPLE_METADATA_URL: 'http://127.0.0.1:9998/lookup',
      VPPD_SYNC_INTERVAL: '30m',
      VPPD_ENCRYPTION_KEY: key,
      VPPD_JWT_SECRET: secret,
      VPPD_JWKS_URL: '  ',
    });
    const config = parseConfig(raw);
    expect(config.port).toBe(9090);
    expect(config.host).toBe('0.0.0.0');
    expect(config.database.kind).toBe('sqlite-memory');
    expect(config.apple).toEqual({
      baseUrl: 'http://127.0.0.1:9999/mdm/v2',
      metadataUrl: 'http://127.0.0.1:9998/lookup',
    });
    expect(config.syncIntervalMs).toBe(30 * 60_000);
  });

  it('runs syncs in a thread of their own unless VPPD_SYNC_THREADS is 0; anything else is refused', () => {
    expect(parseConfig(minimal).sync.threads).toBe(1);
    expect(parseConfig({ ...readEnv({ VPPD_SYNC_THREADS: '0' }), ...minimal }).sync.threads).toBe(0);
    expect(parseConfig({ ...readEnv({ VPPD_SYNC_THREADS: '1' }), ...minimal }).sync.threads).toBe(1);
    for (const bad of ['2', 'yes', '-1']) {
      expect(configError({ ...minimal, syncThreads: bad })).toBe(
        'VPPD_SYNC_THREADS: must be 0 (syncs run in the request thread) or 1 (in a worker thread of their own)',
      );
    }
  });

  it('lets flags win over the environment', () => {
    const merged = mergeSettings({ ...minimal, port: '1' }, { port: '2', host: undefined });
    expect(parseConfig(merged).port).toBe(2);
  });

  it('accepts JWKS auth when all three settings are present', () => {
    const config = parseConfig({
      encryptionKey: key,
      jwksUrl: 'https://login.example/keys',
      jwtIssuer: 'https://issuer.example/',
      jwtAudience: 'api://vppd',
    });
    expect(config.auth).toMatchObject({
      kind: 'jwks',
      issuer: 'https://issuer.example/',
      audience: 'api://vppd',
    });
  });

  it.each([
    [{ jwtSecret: secret }, /^VPPD_ENCRYPTION_KEY: required/],
    [{ ...minimal, encryptionKey: 'not base64!' }, /^VPPD_ENCRYPTION_KEY: must be 32 bytes, base64/],
    [
      { ...minimal, encryptionKey: Buffer.alloc(16).toString('base64') },
      /^VPPD_ENCRYPTION_KEY: must be 32 bytes/,
    ],
    [{ encryptionKey: key }, /^VPPD_JWT_SECRET: required/],
    [{ ...minimal, jwtSecret: 'short' }, /^VPPD_JWT_SECRET: must be at least 32 bytes/],
    [{ ...minimal, jwksUrl: 'https://k.example/' }, /^VPPD_JWT_SECRET: set either/],
    [
      { encryptionKey: key, jwksUrl: 'https://k.example/' },
      /^VPPD_JWT_ISSUER \S*: required|^VPPD_JWT_ISSUER: required/,
    ],
    [
      { encryptionKey: key, jwksUrl: 'ftp://k', jwtIssuer: 'i', jwtAudience: 'a' },
      /^VPPD_JWKS_URL: must be an http/,
    ],
    [{ ...minimal, port: '70000' }, /^VPPD_PORT \(--port\): must be a port number/],
    [{ ...minimal, port: 'eighty' }, /^VPPD_PORT \(--port\): must be a port number/],
    [
      { ...minimal, database: 'postgres://vppd:pw-not-shown@db/vppd?sslmode=prefer' },
      /^VPPD_DATABASE_URL \(--database\): sslmode=prefer is not supported/,
    ],
    [{ ...minimal, database: 'postgres://db/vppd', databasePool: '0' }, /^VPPD_DATABASE_POOL: must be/],
    [{ ...minimal, database: 'mysql://x' }, /^VPPD_DATABASE_URL \(--database\): must be/],
    [{ ...minimal, appleUrl: 'nope' }, /^VPPD_APPLE_URL \(--apple-url\): must be an http/],
    [{ ...minimal, syncInterval: 'often' }, /^VPPD_SYNC_INTERVAL \(--sync-interval\): must be a duration/],
    [{ ...minimal, syncInterval: '5s' }, /^VPPD_SYNC_INTERVAL \(--sync-interval\): must be between/],
    [{ ...minimal, logLevel: 'loud' }, /^VPPD_LOG_LEVEL: must be one of/],
  ] as const)('stops with one line naming the setting (%#)', (raw, pattern) => {
    const message = configError(raw);
    expect(message).toMatch(pattern);
    expect(message).not.toContain('\n');
    // A secret value never appears in the message.
    expect(message).not.toContain(key);
    expect(message).not.toContain('pw-not-shown');
  });
});

describe('security settings', () => {
  it('default to safe limits and read their environment variables', () => {
    expect(parseConfig(minimal).security).toEqual({
      requestTimeoutMs: 30_000,
      maxConnections: 800,
      webhookAllow: [],
      jwtMaxLifetimeSeconds: 90 * 86_400,
      maxStreamsPerTenant: 20,
    });
    const raw = readEnv({
      VPPD_REQUEST_TIMEOUT: '5s',
      VPPD_MAX_CONNECTIONS: '4000',
      VPPD_WEBHOOK_ALLOW: 'localhost, 10.0.0.0/8',
      VPPD_JWT_MAX_LIFETIME: '1d',
      VPPD_MAX_STREAMS_PER_TENANT: '5',
    });
    expect(parseConfig(mergeSettings(minimal, raw)).security).toEqual({
      requestTimeoutMs: 5000,
      maxConnections: 4000,
      webhookAllow: [
        { kind: 'host', host: 'localhost' },
        { kind: 'subnet', address: '10.0.0.0', prefix: 8, family: 'ipv4' },
      ],
      jwtMaxLifetimeSeconds: 86_400,
      maxStreamsPerTenant: 5,
    });
  });

  it('name the setting when a value is bad', () => {
    expect(configError({ ...minimal, requestTimeout: '0s' })).toMatch(
      /^VPPD_REQUEST_TIMEOUT: must be a duration/,
    );
    expect(configError({ ...minimal, maxConnections: 'lots' })).toMatch(/^VPPD_MAX_CONNECTIONS: /);
    expect(configError({ ...minimal, webhookAllow: '10.0.0.0/40' })).toMatch(
      /^VPPD_WEBHOOK_ALLOW: '10.0.0.0\/40'/,
    );
    expect(configError({ ...minimal, jwtMaxLifetime: 'forever' })).toMatch(/^VPPD_JWT_MAX_LIFETIME: /);
    expect(configError({ ...minimal, maxStreamsPerTenant: '0' })).toMatch(/^VPPD_MAX_STREAMS_PER_TENANT: /);
  });
});

describe('VPPD_EVENT_RETENTION', () => {
  it('defaults to 7 days, reads the environment, and names itself when out of range', () => {
    expect(parseConfig(minimal).sync.eventRetentionMs).toBe(7 * 86_400_000);
    expect(
      parseConfig(readEnv({ VPPD_ENCRYPTION_KEY: key, VPPD_JWT_SECRET: secret, VPPD_EVENT_RETENTION: '36h' }))
        .sync.eventRetentionMs,
    ).toBe(36 * 3_600_000);
    for (const bad of ['10m', '400d', 'a week', '-1d']) {
      expect(configError({ ...minimal, eventRetention: bad })).toBe(
        'VPPD_EVENT_RETENTION: must be a duration between 1h and 365d, like 7d',
      );
    }
  });
});

describe('parseDuration', () => {
  it('parses units and plain seconds', () => {
    expect(parseDuration('90')).toBe(90_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1d')).toBe(86_400_000);
    expect(parseDuration('1.5h')).toBeUndefined();
    expect(parseDuration('-1h')).toBeUndefined();
  });
});

describe('ensureDemoSecrets', () => {
  it('generates once (0600), then reuses, and never overrides what is set', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'vppd-demo-')), 'data');
    try {
      const first = await ensureDemoSecrets({ demo: true }, { dataDir });
      expect(first.filled).toEqual(['encryptionKey', 'jwtSecret']);
      expect(statSync(first.file).mode & 0o777).toBe(0o600);
      const config = parseConfig(first.settings);
      expect(config.encryptionKey).toHaveLength(32);
      const second = await ensureDemoSecrets({ demo: true }, { dataDir });
      expect(second.settings).toEqual(first.settings);
      const saved = JSON.parse(readFileSync(first.file, 'utf8'));
      expect(saved.encryptionKey).toBe(first.settings.encryptionKey);

      const explicit = await ensureDemoSecrets({ demo: true, encryptionKey: key }, { dataDir });
      expect(explicit.settings.encryptionKey).toBe(key);
      expect(explicit.filled).toEqual(['jwtSecret']);
      const jwks = await ensureDemoSecrets(
        { demo: true, encryptionKey: key, jwksUrl: 'https://k/' },
        { dataDir },
      );
      expect(jwks.filled).toEqual([]);
      expect(jwks.settings.jwtSecret).toBeUndefined();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('VPPD_GRAPH_THROTTLING', () => {
  it('is off by default, intune when asked, and names itself when wrong', () => {
    expect(parseConfig(minimal).graphThrottling).toBe('off');
    expect(parseConfig(readEnv({ ...envOf(minimal), VPPD_GRAPH_THROTTLING: 'intune' })).graphThrottling).toBe(
      'intune',
    );
    expect(configError({ ...minimal, graphThrottling: 'graph' })).toBe(
      'VPPD_GRAPH_THROTTLING: must be one of off, intune',
    );
  });
});

function envOf(raw: RawSettings): Record<string, string> {
  return { VPPD_ENCRYPTION_KEY: raw.encryptionKey as string, VPPD_JWT_SECRET: raw.jwtSecret as string };
}
