import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { demoTenantId } from '../src/config.js';
import { demoTokens } from '../src/demo/demo-scenario.js';
import { mintToken, roles, testJwtSecret } from './helpers/jwt.js';
import { cleanEnv, runUntilExit, type ServeProcess, startServeProcess } from './helpers/serve-process.js';
import { buildSToken } from './helpers/stoken-builder.js';
import { createPostgresDatabase, storageEngines } from './helpers/storage-engines.js';

// `vppd serve` as a real process over real sockets: start-up, /healthz, a write that survives a
// restart, graceful stop on SIGTERM/SIGINT with exit 0, one-line start-up failures, and --demo.

const dir = mkdtempSync(join(tmpdir(), 'vppd-serve-'));
const running: ServeProcess[] = [];
const key = Buffer.alloc(32, 3).toString('base64');

afterAll(async () => {
  for (const p of running) await p.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function serve(args: string[], env: Record<string, string>, cwd = dir): Promise<ServeProcess> {
  const p = await startServeProcess(args, { env: cleanEnv(env), cwd });
  running.push(p);
  return p;
}

describe('vppd serve (process)', () => {
  it.each(storageEngines)(
    'serves on %s, keeps data across a restart, and stops with exit 0 on SIGTERM',
    async (kind) => {
      // On PostgreSQL with a password in the URL (the test server trusts local connections): never printed.
      const password = 'serve-pw-not-shown';
      const postgres = kind === 'postgres' ? new URL(await createPostgresDatabase()) : undefined;
      if (postgres) postgres.password = password;
      const database = postgres?.toString() ?? `sqlite:${join(dir, 'restart/vppd.db')}`;
      // No grace on SIGTERM: the created token's first sync (to an unreachable Apple) is given back at once.
      const env = {
        VPPD_ENCRYPTION_KEY: key,
        VPPD_JWT_SECRET: testJwtSecret,
        VPPD_LOG_LEVEL: 'warn',
        VPPD_SHUTDOWN_GRACE: '0s',
      };
      const first = await serve(['--port', '0', '--database', database], env);
      expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const health = await fetch(`${first.url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });

      const bearer = `Bearer ${await mintToken({ tenantId: 'tenant-1', roles: [roles.readWrite] })}`;
      const created = await fetch(`${first.url}/beta/deviceAppManagement/vppTokens`, {
        method: 'POST',
        headers: { authorization: bearer, 'content-type': 'application/json', 'client-request-id': 'c-1' },
        body: JSON.stringify({ token: buildSToken(), displayName: 'Survivor' }),
      });
      expect(created.status).toBe(201);
      expect(created.headers.get('content-type')).toMatch(/^application\/json/);
      expect(created.headers.get('client-request-id')).toBe('c-1');
      const { id } = (await created.json()) as { id: string };
      expect(await first.stop('SIGTERM')).toBe(0);
      expect(first.stdout()).toContain('vppd: stopped');

      const second = await serve(['--port', '0'], { ...env, VPPD_DATABASE_URL: database });
      const again = await fetch(`${second.url}/v1.0/deviceAppManagement/vppTokens/${id}`, {
        headers: { authorization: bearer },
      });
      expect(again.status).toBe(200);
      expect(((await again.json()) as { displayName: string }).displayName).toBe('Survivor');
      expect(await second.stop('SIGINT')).toBe(0);
      for (const p of [first, second]) expect(p.stdout() + p.stderr()).not.toContain(password);
      if (postgres) expect(first.stdout()).toContain(':***@');
    },
  );

  it('stops start-up with one line naming the setting, exit 1', async () => {
    const valid = { VPPD_ENCRYPTION_KEY: key, VPPD_JWT_SECRET: testJwtSecret };
    const cases: [Record<string, string>, RegExp, string[]?][] = [
      [{}, /^vppd: VPPD_ENCRYPTION_KEY: required/],
      [{ VPPD_ENCRYPTION_KEY: key }, /^vppd: VPPD_JWT_SECRET: required/],
      [
        { ...valid, VPPD_DATABASE_URL: 'postgres://vppd:pw-not-shown@db/vppd?sslmode=allow' },
        /^vppd: VPPD_DATABASE_URL \(--database\): sslmode=allow is not supported/,
      ],
      [
        valid,
        /^vppd: VPPD_PUBLIC_URL \(--public-url\): must be an absolute http\(s\) URL without query or fragment/,
        ['--public-url', 'https://tools.example.com/vppd?x=1'],
      ],
    ];
    // In parallel: each is a separate process start.
    const results = await Promise.all(
      cases.map(([env, , args]) =>
        runUntilExit(['serve', ...(args ?? [])], {
          env: cleanEnv({ VPPD_PORT: '0', VPPD_DATABASE_URL: 'sqlite::memory:', ...env }),
          cwd: dir,
        }),
      ),
    );
    results.forEach((result, i) => {
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(cases[i]?.[1] as RegExp);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).not.toContain(key);
      expect(result.stderr).not.toContain('pw-not-shown');
    });
  });

  it('--demo runs with no env, keeps its secrets (0600) across restarts and prints a working bearer token', async () => {
    const cwd = mkdtempSync(join(dir, 'demo-'));
    const first = await serve(
      ['--demo', '--port', '0'],
      { VPPD_LOG_LEVEL: 'warn', VPPD_SHUTDOWN_GRACE: '0s' },
      cwd,
    );
    const secrets = join(cwd, 'data/demo-secrets.json');
    expect(statSync(secrets).mode & 0o777).toBe(0o600);
    const token = /^(eyJ[\w-]+\.[\w-]+\.[\w-]+)$/m.exec(first.stdout())?.[1];
    expect(token).toBeDefined();
    expect(first.stdout()).toMatch(/^demo: curl -s -H "Authorization: Bearer eyJ/m);
    expect(first.stdout()).toContain(demoTenantId);
    const create = await fetch(`${first.url}/beta/deviceAppManagement/vppTokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token: buildSToken() }),
    });
    expect(create.status).toBe(201);
    expect(await first.stop()).toBe(0);

    const second = await serve(
      ['--demo', '--port', '0'],
      { VPPD_LOG_LEVEL: 'warn', VPPD_SHUTDOWN_GRACE: '0s' },
      cwd,
    );
    // The first run's token still works and the stored sToken still decrypts (same key).
    const list = await fetch(`${second.url}/beta/deviceAppManagement/vppTokens/$count`, {
      headers: { authorization: `Bearer ${token}` },
    });
    // The demo tenant's seeded tokens plus the one created above, none duplicated by the restart.
    expect(await list.text()).toBe(String(demoTokens.length + 1));
    expect(await second.stop()).toBe(0);
  });
});
