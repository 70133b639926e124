import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import { testConfig } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { buildSToken } from './helpers/stoken-builder.js';

// startServer on real sockets: the in-process entry point later conformance tests and benchmarks use,
// and RS256 bearer tokens verified against a JWKS fetched over HTTP (the Entra ID set-up).

const issuer = 'https://login.example.test/tenant/v2.0';
const audience = 'api://vppd-tests';

let jwksServer: Server;
let jwksUrl: string;
let jwksRequests = 0;
type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
let signingKey: PrivateKey;
let strangerKey: PrivateKey;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  signingKey = pair.privateKey;
  strangerKey = (await generateKeyPair('RS256')).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'key-1', alg: 'RS256', use: 'sig' };
  jwksServer = createServer((_request, response) => {
    jwksRequests += 1;
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/keys`;
});
afterAll(async () => {
  await new Promise((resolve) => jwksServer.close(resolve));
});

async function rs256(
  claims: Record<string, unknown>,
  options: { key?: PrivateKey; iss?: string; aud?: string } = {},
) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: 'key-1' })
    .setIssuer(options.iss ?? issuer)
    .setAudience(options.aud ?? audience)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(options.key ?? signingKey);
}

describe('startServer with HS256', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer(testConfig({ port: '0' }));
  });
  afterAll(async () => {
    await server.close();
  });

  it('listens on a real port and serves health and Graph routes', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const bearer = `Bearer ${await mintToken({ tenantId: 't1', roles: [roles.readWrite] })}`;
    const created = await fetch(`${server.url}/beta/deviceAppManagement/vppTokens`, {
      method: 'POST',
      headers: { authorization: bearer, 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ token: buildSToken() }),
    });
    expect(created.status).toBe(201);
    const body = (await created.json()) as Record<string, unknown>;
    expect(body['@odata.context']).toBe(`${server.url}/beta/$metadata#deviceAppManagement/vppTokens/$entity`);
    expect(created.headers.get('request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const list = await fetch(`${server.url}/beta/deviceAppManagement/vppTokens?$top=1`, {
      headers: { authorization: bearer },
    });
    expect(((await list.json()) as { value: unknown[] }).value).toHaveLength(1);
  });

  it('close() is idempotent and stops accepting connections', async () => {
    const other = await startServer(testConfig({ port: '0' }));
    await Promise.all([other.close(), other.close()]);
    await expect(fetch(`${other.url}/healthz`)).rejects.toThrow();
  });
});

describe('startServer with RS256 via JWKS', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer(
      testConfig({ port: '0', jwtSecret: undefined, jwksUrl, jwtIssuer: issuer, jwtAudience: audience }),
    );
  });
  afterAll(async () => {
    await server.close();
  });

  const get = (token: string) =>
    fetch(`${server.url}/beta/deviceAppManagement/vppTokens/$count`, {
      headers: { authorization: `Bearer ${token}` },
    });

  it('accepts a token signed by a JWKS key with the right issuer and audience', async () => {
    const response = await get(await rs256({ tid: 'entra-tenant', roles: [roles.read] }));
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('0');
    expect(jwksRequests).toBeGreaterThan(0);
  });

  it('rejects another issuer, another audience, an unknown key and an HS256 token', async () => {
    const cases = [
      await rs256({ tid: 't', roles: [roles.read] }, { iss: 'https://evil.example/' }),
      await rs256({ tid: 't', roles: [roles.read] }, { aud: 'api://other' }),
      await rs256({ tid: 't', roles: [roles.read] }, { key: strangerKey }),
      await mintToken({ tenantId: 't', roles: [roles.read] }),
    ];
    for (const token of cases) {
      const response = await get(token);
      expect(response.status).toBe(401);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('InvalidAuthenticationToken');
      expect(body.error.message).not.toContain(token);
    }
  });

  it('answers 403 for a valid token without a VPP permission', async () => {
    const response = await get(await rs256({ tid: 't', scp: 'User.Read' }));
    expect(response.status).toBe(403);
  });
});
