import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueAccessToken } from '../src/http/auth/issue-access-token.js';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import { tenantA, testConfig } from './helpers/graph-test-app.js';
import { roles, testJwtSecret } from './helpers/jwt.js';
import { runVppd } from './helpers/run-cli.js';

// Issue 17, item 6: a bearer token without `exp`, or minted to live longer than
// VPPD_JWT_MAX_LIFETIME (default 90 days, from `iat` or `nbf`), is refused with 401, in HS256 and
// JWKS mode, over a real socket. vppd's own tokens (the demo's, `vppd auth token`) fit.

const tokensPath = '/beta/deviceAppManagement/vppTokens';
const day = 86_400;
const now = () => Math.floor(Date.now() / 1000);
const claims = { tid: tenantA, roles: [roles.readWrite] };

async function get(server: RunningServer, jwt: string) {
  const response = await fetch(`${server.url}${tokensPath}`, { headers: { authorization: `Bearer ${jwt}` } });
  const body = (await response.json()) as { error?: { code: string; message: string } };
  return { status: response.status, message: body.error?.message ?? '' };
}

describe('bearer token lifetime (HS256)', () => {
  let server: RunningServer;
  let short: RunningServer;
  const secret = new TextEncoder().encode(testJwtSecret);
  const hs256 = (payload: Record<string, unknown>) =>
    new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(secret);
  beforeAll(async () => {
    server = await startServer(testConfig({ port: '0' }), { logger: pino({ level: 'silent' }) });
    short = await startServer(testConfig({ port: '0', jwtMaxLifetime: '1h' }), {
      logger: pino({ level: 'silent' }),
    });
  });
  afterAll(async () => {
    await server.close();
    await short.close();
  });

  it('refuses a token without exp and one minted to live longer than 90 days', async () => {
    const t = now();
    const noExp = await get(server, await hs256({ ...claims, iat: t }));
    expect(noExp.status).toBe(401);
    expect(noExp.message).toMatch(/'exp' claim is missing/);
    const bare = await get(server, await hs256(claims));
    expect(bare.status).toBe(401);
    const tooLong = await get(server, await hs256({ ...claims, iat: t, exp: t + 91 * day }));
    expect(tooLong.status).toBe(401);
    expect(tooLong.message).toMatch(/longer than the maximum of 90 days/);
    // Measured from nbf when there is no iat; from now when there is neither.
    expect((await get(server, await hs256({ ...claims, nbf: t - 10 * day, exp: t + 85 * day }))).status).toBe(
      401,
    );
    expect((await get(server, await hs256({ ...claims, exp: t + 91 * day }))).status).toBe(401);
    expect((await get(server, await hs256({ ...claims, iat: t, exp: t + 89 * day }))).status).toBe(200);
    expect((await get(server, await hs256({ ...claims, exp: t + 3600 }))).status).toBe(200);
  });

  it('takes VPPD_JWT_MAX_LIFETIME, and vppd’s own tokens fit the default', async () => {
    const t = now();
    expect((await get(short, await hs256({ ...claims, iat: t, exp: t + 7200 }))).status).toBe(401);
    expect((await get(short, await hs256({ ...claims, iat: t, exp: t + 3000 }))).status).toBe(200);
    // The demo's printed token (30 days) and its dashboard session (12 h).
    const demo = await issueAccessToken({ secret, tenantId: tenantA });
    expect((await get(server, demo)).status).toBe(200);
    const session = await issueAccessToken({ secret, tenantId: tenantA, ttlSeconds: 12 * 3600 });
    expect((await get(server, session)).status).toBe(200);
    // `vppd auth token` mints up to the limit and refuses beyond it.
    const env = { VPPD_JWT_SECRET: testJwtSecret };
    const minted = await runVppd(['auth', 'token', '--tenant', tenantA, '--expires-in', '90d'], env);
    expect(minted.code).toBe(0);
    expect((await get(server, minted.stdout.trim())).status).toBe(200);
    const refused = await runVppd(['auth', 'token', '--tenant', tenantA, '--expires-in', '91d'], env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/--expires-in: must be a duration from 1s to 90d/);
    const longer = await runVppd(['auth', 'token', '--tenant', tenantA, '--expires-in', '1h'], {
      ...env,
      VPPD_JWT_MAX_LIFETIME: '30m',
    });
    expect(longer.stderr).toMatch(/from 1s to 30m/);
  });
});

describe('bearer token lifetime (JWKS)', () => {
  let server: RunningServer;
  let jwks: Server;
  let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    privateKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = createServer((_request, response) => {
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const port = (jwks.address() as AddressInfo).port;
    server = await startServer(
      testConfig({
        port: '0',
        jwtSecret: undefined,
        jwksUrl: `http://127.0.0.1:${port}/keys`,
        jwtIssuer: 'https://issuer.test/',
        jwtAudience: 'api://vppd',
      }),
      { logger: pino({ level: 'silent' }) },
    );
  });
  afterAll(async () => {
    await server.close();
    await new Promise<void>((resolve) => jwks.close(() => resolve()));
  });

  const rs256 = (payload: Record<string, unknown>) =>
    new SignJWT({ ...payload, iss: 'https://issuer.test/', aud: 'api://vppd' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .sign(privateKey);

  it('refuses a token without exp and one living longer than 90 days', async () => {
    const t = now();
    const noExp = await get(server, await rs256({ ...claims, iat: t }));
    expect(noExp.status).toBe(401);
    expect(noExp.message).toMatch(/'exp' claim is missing/);
    const tooLong = await get(server, await rs256({ ...claims, iat: t, exp: t + 365 * day }));
    expect(tooLong.status).toBe(401);
    expect(tooLong.message).toMatch(/longer than the maximum/);
    expect((await get(server, await rs256({ ...claims, iat: t, exp: t + 3600 }))).status).toBe(200);
  });
});
