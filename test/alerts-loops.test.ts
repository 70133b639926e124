import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AlertPayload } from '../src/alerts/alert-events.js';
import { alertsSinceKey } from '../src/alerts/alert-scanner.js';
import { alertsDatabaseOf } from '../src/alerts/alert-tables.js';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import { alertWebhooksPath } from '../src/vppd-api/alerts-routes.js';
import { tenantA, testConfig } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { tokensPath } from './helpers/sync-harness.js';

// The background loops as `vppd serve` runs them (startServer with runSync): a receiver that never
// answers does not hold up syncs; deliveries time out and are retried; once the receiver answers,
// each alert arrives once. Real timers, short periods; the test waits for conditions it can observe
// (in the database, at the receiver), never for a fixed time.

let sim: AppleSim;
let server: RunningServer;
let auth: string;
let mode: 'hang' | 'ok' = 'hang';
const hanging: ServerResponse[] = [];
const received: AlertPayload[] = [];
const receiver = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (c: Buffer) => chunks.push(c));
  request.on('end', () => {
    if (mode === 'hang') {
      hanging.push(response);
      return;
    }
    received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as AlertPayload);
    response.end();
  });
});

/** Polls `probe` until it returns a value; fails naming `what` after `timeoutMs`. */
function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  return vi.waitFor(
    async () => {
      const value = await probe();
      if (value === undefined) throw new Error(`timed out waiting for ${what}`);
      return value;
    },
    { timeout: timeoutMs, interval: 20 },
  );
}

beforeAll(async () => {
  sim = await startAppleSim({ seed: 'alerts-loops', rateLimit: false, pageSize: 100 });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  server = await startServer(testConfig({ appleUrl: sim.baseUrl, port: '0', webhookAllow: '127.0.0.1' }), {
    runSync: true,
    syncOnTokenWrite: true,
    logger: pino({ level: 'silent' }),
    sync: { pollMs: 20, heartbeatMs: 50 },
    alerts: { scanMs: 30, deliverMs: 20, delivery: { timeoutMs: 250, baseDelayMs: 50, maxDelayMs: 200 } },
  });
  auth = `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite] })}`;
});

afterAll(async () => {
  await server.close();
  for (const response of hanging) response.destroy();
  receiver.closeAllConnections();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  await sim.close();
});

async function api(method: string, path: string, body?: unknown) {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return (await response.json()) as Record<string, unknown>;
}

describe('alert loops in a serving process', () => {
  it('a receiver that never answers does not block syncs; alerts arrive once it answers', async () => {
    const port = (receiver.address() as AddressInfo).port;
    await api('POST', alertWebhooksPath, { url: `http://127.0.0.1:${port}/hook`, events: ['syncFailed'] });
    const outbox = alertsDatabaseOf(server.context.db);
    // The scanner's first pass records when alerting started; runs that finished before it never
    // alert, so the syncs start only once it is recorded.
    await until('the scanner to record when alerting started', () =>
      outbox.selectFrom('vppd_settings').select('value').where('key', '=', alertsSinceKey).executeTakeFirst(),
    );
    const revoked = await api('POST', tokensPath, { token: sim.tokenFor('revoked') });
    const small = await api('POST', tokensPath, { token: sim.tokenFor('small') });

    await until('the revoked token to fail', async () =>
      (await api('GET', `${tokensPath}/${revoked.id}`)).lastSyncStatus === 'failed' ? true : undefined,
    );
    const timedOut = await until('a delivery to time out', async () => {
      const row = await outbox.selectFrom('alert_outbox').selectAll().executeTakeFirst();
      return row !== undefined && row.attempts >= 1 ? row : undefined;
    });
    expect(timedOut.last_error).toBe('timed out after 250 ms');
    // Meanwhile syncs go on: the healthy token completes while deliveries hang.
    await until('the small token to complete', async () =>
      (await api('GET', `${tokensPath}/${small.id}`)).lastSyncStatus === 'completed' ? true : undefined,
    );

    mode = 'ok';
    await until('the alert to be delivered', async () => {
      const row = await outbox.selectFrom('alert_outbox').selectAll().executeTakeFirst();
      return row?.status === 'delivered' ? row : undefined;
    });
    // A second failure is scanned, queued and delivered by later passes of both loops: by the time it
    // arrives, a duplicate of the first alert would have arrived too.
    const expired = await api('POST', tokensPath, { token: sim.tokenFor('expired') });
    await until('the second alert to be delivered', async () => {
      const rows = await outbox.selectFrom('alert_outbox').select('status').execute();
      return rows.length === 2 && rows.every((row) => row.status === 'delivered') ? rows : undefined;
    });
    expect(received.map((p) => [p.type, p.tokenId])).toEqual([
      ['syncFailed', revoked.id],
      ['syncFailed', expired.id],
    ]);
  });
});
