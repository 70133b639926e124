import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './helpers/graph-test-app.js';

// An error answered before the request's body arrived (401 from the bearer check, 413 from the
// declared Content-Length) closes the connection, so node does not go on reading a body sent slowly.
// Raw sockets over real TCP: what the server writes, and whether it closes.

interface Exchange {
  readonly head: string;
  /** Whether the server closed the socket (within the wait) while the client still held it open. */
  readonly closed: boolean;
}

/** Writes `request` on a fresh socket, reads the response head, then waits up to 2 s for a close. */
function exchange(port: number, request: string): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    let closed = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(timer);
      const head = received.split('\r\n\r\n')[0] ?? '';
      socket.destroy();
      resolve({ head, closed });
    };
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (received.includes('\r\n\r\n') && timer === undefined) timer = setTimeout(finish, 2_000);
    });
    socket.on('end', () => {
      closed = true;
      finish();
    });
    socket.on('error', reject);
    socket.write(request);
  });
}

describe('connections after error answers', () => {
  let t: TestApp;
  let port: number;

  beforeAll(async () => {
    t = await createTestApp();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const address = t.app.server.address();
    if (typeof address !== 'object' || address === null) throw new Error('no port');
    port = address.port;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('closes after a 401 answered before the body arrived', async () => {
    const { head, closed } = await exchange(
      port,
      'POST /beta/deviceAppManagement/vppTokens HTTP/1.1\r\nHost: x\r\n' +
        'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"tok',
    );
    expect(head).toMatch(/^HTTP\/1\.1 401 /);
    expect(head.toLowerCase()).toContain('connection: close');
    expect(closed).toBe(true);
  });

  it('closes after a 413 answered from Content-Length alone', async () => {
    const { head, closed } = await exchange(
      port,
      `POST /beta/deviceAppManagement/vppTokens HTTP/1.1\r\nHost: x\r\nAuthorization: ${t.auth.a}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{',
    );
    expect(head).toMatch(/^HTTP\/1\.1 413 /);
    expect(head.toLowerCase()).toContain('connection: close');
    expect(closed).toBe(true);
  });
});
