import { jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { testJwtSecret } from './helpers/jwt.js';
import { runVppd } from './helpers/run-cli.js';

// `vppd auth token` as a real process: the token verifies with the secret vppd serve uses, carries the
// tenant and the Graph permission of the role, lives as long as asked; usage errors exit 2 in one line.

const env = { VPPD_JWT_SECRET: testJwtSecret };
const key = new TextEncoder().encode(testJwtSecret);

describe('vppd auth token (process)', () => {
  it('mints HS256 tokens for a tenant and role with the asked lifetime', async () => {
    const [write, read, json] = await Promise.all([
      runVppd(['auth', 'token', '--tenant', 'tenant-a'], env),
      runVppd(['auth', 'token', '--tenant', 'tenant-b', '--role', 'read', '--expires-in', '30m'], env),
      runVppd(['auth', 'token', '--tenant', 'tenant-c', '--role', 'write', '--json'], env),
    ]);
    expect(write.code).toBe(0);
    expect(write.stderr).toBe('');
    const writeClaims = (await jwtVerify(write.stdout.trim(), key)).payload;
    expect(writeClaims).toMatchObject({
      tid: 'tenant-a',
      roles: ['DeviceManagementServiceConfig.ReadWrite.All'],
    });
    expect((writeClaims.exp ?? 0) - (writeClaims.iat ?? 0)).toBe(3600);

    const readClaims = (await jwtVerify(read.stdout.trim(), key)).payload;
    expect(readClaims).toMatchObject({ tid: 'tenant-b', roles: ['DeviceManagementServiceConfig.Read.All'] });
    expect((readClaims.exp ?? 0) - (readClaims.iat ?? 0)).toBe(1800);

    const body = JSON.parse(json.stdout) as { accessToken: string; tokenType: string; expiresOn: string };
    expect(body).toMatchObject({ tokenType: 'Bearer', tenantId: 'tenant-c' });
    const jsonClaims = (await jwtVerify(body.accessToken, key)).payload;
    expect(new Date(body.expiresOn).getTime()).toBe((jsonClaims.exp ?? 0) * 1000);
  });

  it('usage errors exit 2 with one line naming the problem', async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['auth', 'token', '--tenant', 't'], { VPPD_JWT_SECRET: '' }, /^vppd: VPPD_JWT_SECRET: required/],
      [
        ['auth', 'token', '--tenant', 't'],
        { VPPD_JWT_SECRET: 'short' },
        /^vppd: VPPD_JWT_SECRET: must be at least 32 bytes/,
      ],
      [['auth', 'token'], env, /^vppd: --tenant: required/],
      [
        ['auth', 'token', '--tenant', 't', '--role', 'admin'],
        env,
        /^vppd: --role: must be read or write, got 'admin'/,
      ],
      [
        ['auth', 'token', '--tenant', 't', '--expires-in', 'soon'],
        env,
        /^vppd: --expires-in: must be a duration/,
      ],
      [['auth', 'token', '--tenant', 't', '--bogus'], env, /unknown option '--bogus'/],
    ];
    const results = await Promise.all(cases.map(([args, e]) => runVppd(args, e)));
    results.forEach((result, i) => {
      expect(result.code, cases[i]?.[0].join(' ')).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(cases[i]?.[2] as RegExp);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).not.toContain(testJwtSecret);
    });
  });
});
