import { type ClientRequest, type IncomingMessage, request } from 'node:http';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import { tenantA, tenantB, testConfig } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';

// Issue 17: each `/vppd/v1/events` stream holds a socket and a feed subscription, so a tenant may
// keep at most VPPD_MAX_STREAMS_PER_TENANT of them open; one more is a Graph 429, other tenants are
// unaffected, and a closed stream frees its place.

let server: RunningServer;
const open: ClientRequest[] = [];
beforeAll(async () => {
  server = await startServer(testConfig({ port: '0', maxStreamsPerTenant: '3' }), {
    logger: pino({ level: 'silent' }),
  });
});
afterAll(async () => {
  for (const r of open) r.destroy();
  await server.close();
});

/** Opens the event stream; resolves with the response (its body left flowing for streams). */
function stream(
  tenantId: string,
): Promise<{ response: IncomingMessage; req: ClientRequest; body: Promise<string> }> {
  return mintToken({ tenantId, roles: [roles.read] }).then(
    (jwt) =>
      new Promise((resolve, reject) => {
        const req = request(`${server.url}/vppd/v1/events`, { headers: { authorization: `Bearer ${jwt}` } });
        req.on('response', (response) => {
          let text = '';
          const body = new Promise<string>((done) => {
            response.on('data', (c: Buffer) => {
              text += c.toString('utf8');
            });
            response.on('end', () => done(text));
            response.on('close', () => done(text));
          });
          resolve({ response, req, body });
        });
        req.on('error', reject);
        req.end();
        open.push(req);
      }),
  );
}

describe('event streams per tenant (issue 17)', () => {
  it('refuses the stream over the cap with a Graph 429 and frees places on close', async () => {
    const first = await Promise.all([stream(tenantA), stream(tenantA), stream(tenantA)]);
    for (const s of first) expect(s.response.statusCode).toBe(200);
    const over = await stream(tenantA);
    expect(over.response.statusCode).toBe(429);
    expect(over.response.headers['retry-after']).toBe('30');
    const error = JSON.parse(await over.body) as { error: { code: string; message: string } };
    expect(error.error.code).toBe('TooManyRequests');
    expect(error.error.message).toMatch(/at most 3 .*VPPD_MAX_STREAMS_PER_TENANT/);
    // Another tenant is not affected.
    expect((await stream(tenantB)).response.statusCode).toBe(200);
    // Closing one stream frees its place (the server sees the close asynchronously).
    first[0]?.req.destroy();
    let again = 0;
    for (let i = 0; i < 50 && again !== 200; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const s = await stream(tenantA);
      again = s.response.statusCode ?? 0;
      if (again !== 200) await s.body;
    }
    expect(again).toBe(200);
  });
});
