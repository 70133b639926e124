import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppleSim, defaultSimLocations, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { type AppContext, createContext } from '../src/context.js';
import { createLogger, scrubCredentials } from '../src/ops/logging.js';
import { buildApp } from '../src/server/app.js';
import { alertWebhooksPath } from '../src/vppd-api/alerts-routes.js';
import { createFakeClock } from './helpers/fake-clock.js';
import { tenantA, testConfig } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { buildSToken } from './helpers/stoken-builder.js';
import { createPostgresDatabase } from './helpers/storage-engines.js';
import { tokensPath } from './helpers/sync-harness.js';

// Issue 6, item 5: a full flow with the production logger (its redaction) at `trace`, every line
// captured: token uploads with real sTokens, a renewal, syncs against the simulator including a
// failure, a webhook created and an alert delivered, requests with bad sTokens and bad JWTs. No sToken
// (file content or the inner token), no JWT and no webhook secret may appear anywhere in the output.

const lines: string[] = [];
const clock = createFakeClock();
let sim: AppleSim;
let context: AppContext;
let app: FastifyInstance;
let url: string;
let receiver: Server;
let hookUrl: string;
const received: string[] = [];
const secrets: { name: string; value: string }[] = [];

/** The inner token of a `.vpptoken` file (base64 of `{token, expDate, orgName}`). */
function innerTokenOf(file: string): string {
  return (JSON.parse(Buffer.from(file, 'base64').toString('utf8')) as { token: string }).token;
}

function remember(name: string, value: string) {
  secrets.push({ name, value });
}

async function call(method: string, path: string, auth: string | undefined, body?: unknown) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(auth === undefined ? {} : { authorization: auth }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, text: await response.text() };
}

beforeAll(async () => {
  // Two token files for `small`: the second is the renewal.
  const locations = defaultSimLocations()
    .filter((l) => l.id === 'small' || l.id === 'revoked')
    .map((l) => (l.id === 'small' ? { ...l, tokens: 2, assignments: 100 } : l));
  sim = await startAppleSim({ seed: 'logs-secrets', rateLimit: false, pageSize: 50, locations });
  receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      received.push(Buffer.concat(chunks).toString('utf8'));
      response.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  // The path of a chat webhook URL is itself a credential: vppd must not log it either.
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/services/T0001/B0002/hookpathsecret0123456789`;
  remember('webhook URL path', 'hookpathsecret0123456789');

  // On PostgreSQL, with a password in the database URL: it must never be logged either. (The test
  // server trusts local connections, so any password connects.)
  const databasePassword = 'db-pass-secret-0123456789';
  remember('database password', databasePassword);
  const database = new URL(await createPostgresDatabase());
  database.password = databasePassword;
  // The receiver listens on loopback: deliveries reach it only through the operator's allow-list.
  const config = testConfig({
    appleUrl: sim.baseUrl,
    logLevel: 'trace',
    database: database.toString(),
    webhookAllow: '127.0.0.1',
  });
  const logger = createLogger(config, { write: (line: string) => void lines.push(line) });
  context = await createContext(config, {
    clock: clock.now,
    logger,
    random: () => 0.5,
    syncOnTokenWrite: true,
    sync: { pollMs: 20, heartbeatMs: 50 },
  });
  app = buildApp(context);
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await app.close();
  await context.dispose();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  await sim.close();
});

describe('logs', () => {
  it('never contain an sToken, a JWT or a webhook secret, at trace level through a full flow', async () => {
    const jwt = await mintToken({
      tenantId: tenantA,
      roles: [roles.readWrite],
      now: clock.now(),
      expiresIn: 86_400,
    });
    const auth = `Bearer ${jwt}`;
    remember('JWT', jwt);
    const expiredJwt = await mintToken({
      tenantId: tenantA,
      roles: [roles.readWrite],
      now: clock.now(),
      expiresIn: -60,
    });
    remember('expired JWT', expiredJwt);
    const forgedJwt = await mintToken({
      tenantId: tenantA,
      roles: [roles.readWrite],
      now: clock.now(),
      secret: 'some-other-secret-that-is-at-least-32-bytes',
    });
    remember('forged JWT', forgedJwt);
    for (const location of ['small', 'revoked']) {
      remember(`${location} sToken`, sim.tokenFor(location));
      remember(`${location} inner token`, innerTokenOf(sim.tokenFor(location)));
    }
    const renewal = sim.tokenFor('small', 1);
    remember('renewal sToken', renewal);
    remember('renewal inner token', innerTokenOf(renewal));
    const unsynced = buildSToken({ orgName: 'Never Synced' });
    remember('unsynced sToken', unsynced);
    remember('unsynced inner token', innerTokenOf(unsynced));

    // A webhook (its secret only in this response) and the first scan.
    const hook = await call('POST', alertWebhooksPath, auth, { url: hookUrl });
    expect(hook.status).toBe(201);
    const secret = (JSON.parse(hook.text) as { secret: string }).secret;
    remember('webhook secret', secret);
    await context.alerts.scanOnce();

    // Uploads (each requests a sync), a renewal, and the syncs: small completes, revoked fails.
    const created: Record<string, string> = {};
    for (const [name, token] of [
      ['small', sim.tokenFor('small')],
      ['revoked', sim.tokenFor('revoked')],
      ['unsynced', unsynced],
    ] as const) {
      const response = await call('POST', tokensPath, auth, { token });
      expect(response.status, response.text).toBe(201);
      created[name] = (JSON.parse(response.text) as { id: string }).id;
    }
    const worker = await context.sync.createWorker();
    await worker.poll();
    await worker.idle();
    const renewed = await call('PATCH', `${tokensPath}/${created.small}`, auth, { token: renewal });
    expect(renewed.status).toBe(204);
    await worker.poll();
    await worker.idle();
    await context.alerts.scanOnce();
    expect(await context.alerts.deliverDue()).toBeGreaterThan(0);
    expect(received.some((body) => body.includes('"syncFailed"'))).toBe(true);

    // Bad input: malformed and duplicate sTokens, bad and missing JWTs, a JWT in odd places.
    expect((await call('POST', tokensPath, auth, { token: `${sim.tokenFor('small')}!!` })).status).toBe(400);
    expect((await call('POST', tokensPath, auth, { token: sim.tokenFor('revoked') })).status).toBe(409);
    expect(
      (await call('POST', tokensPath, auth, { token: unsynced, bogus: sim.tokenFor('small') })).status,
    ).toBe(400);
    expect((await call('GET', tokensPath, `Bearer ${expiredJwt}`)).status).toBe(401);
    expect((await call('GET', tokensPath, `Bearer ${forgedJwt}`)).status).toBe(401);
    expect((await call('GET', tokensPath, `Basic ${jwt}`)).status).toBe(401);
    expect((await call('GET', `${tokensPath}?$filter=displayName eq '${jwt}'`, auth)).status).toBe(200);
    expect(
      (await call('POST', alertWebhooksPath, auth, { url: `http://example.com/${secret}` })).status,
    ).toBe(400);
    expect((await call('GET', '/metrics', undefined)).status).toBe(200);

    const output = lines.join('');
    expect(lines.length).toBeGreaterThan(30);
    // On failure, name the secret and show the line (test secrets only) so the leak is easy to find.
    const leaks = secrets
      .filter(({ value }) => output.includes(value))
      .map(({ name, value }) => `${name}: ${lines.find((l) => l.includes(value))?.slice(0, 400)}`);
    expect(leaks).toEqual([]);
    // Every JWT, whatever its claims, starts with the base64url of `{"alg":`: none is logged.
    expect(output).not.toMatch(/eyJhbGciOi[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\./);

    // The bindings are there: request id on request lines, tenant and token ids once authorized.
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed.some((l) => typeof l.reqId === 'string' && l.tenantId === tenantA)).toBe(true);
    expect(parsed.some((l) => typeof l.reqId === 'string' && l.tokenId === created.small)).toBe(true);
    expect(parsed.some((l) => l.tokenId === created.revoked && l.msg === 'sync failed')).toBe(true);
    expect(parsed.some((l) => l.msg === 'alert delivered' && l.tenantId === tenantA)).toBe(true);
  });

  it('scrubs JWT- and sToken-shaped values inside any line (a URL query, a message)', async () => {
    const jwt = await mintToken({ tenantId: tenantA, roles: [roles.read] });
    const sToken = buildSToken();
    const line = JSON.stringify({
      url: `/x?access_token=${jwt}&t=${encodeURIComponent(sToken)}`,
      msg: `token ${sToken} refused`,
    });
    const scrubbed = scrubCredentials(line);
    expect(scrubbed).not.toContain(jwt.split('.')[1]);
    expect(scrubbed).not.toContain(sToken.slice(0, 40));
    expect(scrubbed).not.toContain(encodeURIComponent(sToken).slice(0, 40));
    expect(JSON.parse(scrubbed)).toEqual({
      url: '/x?access_token=[redacted]&t=[redacted]',
      msg: 'token [redacted] refused',
    });
    const plain = '{"msg":"sync completed","tokenId":"1d000000-0000-4000-8000-000000000001"}';
    expect(scrubCredentials(plain)).toBe(plain);
  });
});
