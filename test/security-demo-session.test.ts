import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { isLoopbackAddress } from '../src/http/loopback.js';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import { testConfig } from './helpers/graph-test-app.js';
import { cleanEnv, type ServeProcess, startServeProcess } from './helpers/serve-process.js';

// Issue 17, item 3: `serve --demo --host 0.0.0.0` handed a 12 h read-write token to any remote
// client that sent `Host: localhost`. Now the session endpoint is off on a non-loopback listener
// (and start-up says so), and it also wants a loopback client socket, not just a loopback Host.

/** This machine's first non-loopback IPv4 address, the way another host would reach vppd. */
const external = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;

/** GET /dashboard/session with `Host: localhost`, from `localAddress` to `address:port`. */
function session(address: string, port: number, localAddress: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: address, port, path: '/dashboard/session', localAddress, headers: { host: 'localhost' } },
      (response) => {
        let body = '';
        response.on('data', (c: Buffer) => {
          body += c.toString('utf8');
        });
        response.on('end', () => resolve(JSON.parse(body) as Record<string, unknown>));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const cwd = mkdtempSync(join(tmpdir(), 'vppd-demo-session-'));
const running: (ServeProcess | RunningServer)[] = [];
afterAll(async () => {
  for (const r of running) await ('child' in r ? r.stop('SIGKILL') : r.close());
  rmSync(cwd, { recursive: true, force: true });
});

describe('demo /dashboard/session (issue 17)', () => {
  it.skipIf(external === undefined)(
    'serve --demo --host 0.0.0.0: a remote client sending Host: localhost gets no token, and start-up says the endpoint is off',
    async () => {
      const p = await startServeProcess(['--demo', '--host', '0.0.0.0', '--port', '0'], {
        env: cleanEnv({ VPPD_LOG_LEVEL: 'warn', VPPD_SHUTDOWN_GRACE: '0s' }),
        cwd,
      });
      running.push(p);
      const port = Number(new URL(p.url).port);
      expect(p.stdout()).toMatch(/\/dashboard\/session is off because vppd listens on 0\.0\.0\.0/);
      expect(await session(external as string, port, external as string)).toEqual({ demo: false });
      // Off for everyone on such a listener, loopback clients included.
      expect(await session('127.0.0.1', port, '127.0.0.1')).toEqual({ demo: false });
    },
  );

  it('a loopback listener still opens the demo signed in; loopback is checked on the socket address', async () => {
    const server = await startServer(testConfig({ port: '0', demo: true }), {
      logger: pino({ level: 'silent' }),
    });
    running.push(server);
    const port = Number(new URL(server.url).port);
    const answer = await session('127.0.0.1', port, '127.0.0.1');
    expect(answer.demo).toBe(true);
    expect(typeof answer.accessToken).toBe('string');
    expect(isLoopbackAddress('::ffff:127.0.0.1')).toBe(true);
    expect(isLoopbackAddress('::1')).toBe(true);
    expect(isLoopbackAddress('192.0.2.2')).toBe(false);
    expect(isLoopbackAddress('::ffff:10.0.0.1')).toBe(false);
    expect(isLoopbackAddress(undefined)).toBe(false);
  });
});
