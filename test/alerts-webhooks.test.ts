import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AlertPayload, verifyAlertSignature } from '../src/alerts/alert-events.js';
import { alertsDatabaseOf } from '../src/alerts/alert-tables.js';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { alertWebhooksPath } from '../src/vppd-api/alerts-routes.js';
import { createFakeClock } from './helpers/fake-clock.js';
import { tenantA } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { buildSToken } from './helpers/stoken-builder.js';
import { storageEngines, testDatabaseUrl } from './helpers/storage-engines.js';
import { createSyncHarness, type SyncHarness, tokensPath } from './helpers/sync-harness.js';

// Alerts end to end: webhook endpoints over the API, events derived from real syncs against the Apple
// simulator, delivered over real HTTP to a local receiver that checks the signature; then the receiver
// down, vppd "restarted" (a new context on the same database file), and delivery exactly once.

interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** A local webhook receiver: records every POST, answers `status()`. */
class Receiver {
  readonly received: Received[] = [];
  status = 200;
  #server: Server | undefined;

  async listen(port = 0): Promise<number> {
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => {
        this.received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
        response.statusCode = this.status;
        response.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.#server = server;
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  payloads(): AlertPayload[] {
    return this.received.map((r) => JSON.parse(r.body) as AlertPayload);
  }
}

/** Deliveries reach public addresses only; these tests' receivers listen on loopback. */
const localReceivers = { webhookAllow: '127.0.0.0/8, ::1, localhost' };

let sim: AppleSim;
beforeAll(async () => {
  sim = await startAppleSim({ seed: 'alerts', rateLimit: false, pageSize: 100 });
});
afterAll(async () => {
  await sim.close();
});

async function createWebhook(h: SyncHarness, url: string, events?: string[], auth = h.auth) {
  return h.app.inject({
    method: 'POST',
    url: alertWebhooksPath,
    headers: { authorization: auth },
    payload: { url, ...(events ? { events } : {}) },
  });
}

// On each storage engine (the alert tables and the outbox's leases are the database's).
describe.each(storageEngines)('alerts on %s', (engine) => {
  describe('webhook endpoints API', () => {
    let h: SyncHarness;
    beforeEach(async () => {
      h = await createSyncHarness({
        sharedSim: sim,
        database: await testDatabaseUrl(engine),
        config: localReceivers,
      });
    });
    afterEach(async () => {
      await h.close();
    });

    it('creates (secret once), lists and gets without the secret, deletes; tenant-scoped', async () => {
      const created = await createWebhook(h, 'https://hooks.example.com/vppd', [
        'syncFailed',
        'tokenExpired',
      ]);
      expect(created.statusCode).toBe(201);
      const body = created.json();
      expect(body).toMatchObject({
        url: 'https://hooks.example.com/vppd',
        events: ['syncFailed', 'tokenExpired'],
      });
      expect(body.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
      expect(created.headers.location).toBe(`http://localhost${alertWebhooksPath}/${body.id}`);

      const list = await h.app.inject({
        method: 'GET',
        url: alertWebhooksPath,
        headers: { authorization: h.auth },
      });
      expect(list.statusCode).toBe(200);
      expect(list.json().value).toEqual([
        { id: body.id, url: body.url, events: body.events, createdDateTime: body.createdDateTime },
      ]);
      expect(list.body).not.toContain(body.secret);
      const one = await h.app.inject({
        method: 'GET',
        url: `${alertWebhooksPath}/${body.id}`,
        headers: { authorization: h.auth },
      });
      expect(one.json()).not.toHaveProperty('secret');
      // The secret is sealed at rest: the stored row does not contain it.
      const row = await alertsDatabaseOf(h.context.db)
        .selectFrom('alert_webhooks')
        .selectAll()
        .where('id', '=', body.id)
        .executeTakeFirstOrThrow();
      expect(JSON.stringify(row)).not.toContain(body.secret.slice(6));

      const otherTenant = `Bearer ${await mintToken({ tenantId: 'bbbbbbbb-2222-4222-8222-222222222222', roles: [roles.readWrite], now: h.clock.now() })}`;
      const foreign = await h.app.inject({
        method: 'GET',
        url: `${alertWebhooksPath}/${body.id}`,
        headers: { authorization: otherTenant },
      });
      expect(foreign.statusCode).toBe(404);
      expect(foreign.json().error.code).toBe('ResourceNotFound');
      const foreignList = await h.app.inject({
        method: 'GET',
        url: alertWebhooksPath,
        headers: { authorization: otherTenant },
      });
      expect(foreignList.json().value).toEqual([]);
      const foreignDelete = await h.app.inject({
        method: 'DELETE',
        url: `${alertWebhooksPath}/${body.id}`,
        headers: { authorization: otherTenant },
      });
      expect(foreignDelete.statusCode).toBe(404);

      const deleted = await h.app.inject({
        method: 'DELETE',
        url: `${alertWebhooksPath}/${body.id}`,
        headers: { authorization: h.auth },
      });
      expect(deleted.statusCode).toBe(204);
      const again = await h.app.inject({
        method: 'DELETE',
        url: `${alertWebhooksPath}/${body.id}`,
        headers: { authorization: h.auth },
      });
      expect(again.statusCode).toBe(404);
    });

    it('holds the per-tenant limit of 20 when creations race', async () => {
      const responses = await Promise.all(
        Array.from({ length: 26 }, (_, i) => createWebhook(h, `https://hooks.example.com/race-${i}`)),
      );
      expect(responses.filter((r) => r.statusCode === 201)).toHaveLength(20);
      expect(responses.filter((r) => r.statusCode === 409)).toHaveLength(6);
    });

    it('requires https outside loopback, known events, write permission and a bearer token', async () => {
      for (const url of [
        'http://hooks.example.com/x',
        'http://10.0.0.1/x',
        'ftp://127.0.0.1/x',
        'not a url',
        'https://u:p@example.com/',
      ]) {
        const response = await createWebhook(h, url);
        expect(response.statusCode, url).toBe(400);
        expect(response.json().error.code).toBe('BadRequest');
      }
      for (const url of [
        'http://127.0.0.1:9/x',
        'http://localhost:9/x',
        'http://[::1]:9/x',
        'https://example.com/x',
      ]) {
        expect((await createWebhook(h, url)).statusCode, url).toBe(201);
      }
      expect((await createWebhook(h, 'https://example.com/x', ['nope'])).statusCode).toBe(400);
      expect((await createWebhook(h, 'https://example.com/x', [])).statusCode).toBe(400);
      const readOnly = `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.read], now: h.clock.now() })}`;
      const forbidden = await createWebhook(h, 'https://example.com/x', undefined, readOnly);
      expect(forbidden.statusCode).toBe(403);
      const listed = await h.app.inject({
        method: 'GET',
        url: alertWebhooksPath,
        headers: { authorization: readOnly },
      });
      expect(listed.statusCode).toBe(200);
      const anonymous = await h.app.inject({ method: 'GET', url: alertWebhooksPath });
      expect(anonymous.statusCode).toBe(401);
      const put = await h.app.inject({
        method: 'PUT',
        url: alertWebhooksPath,
        headers: { authorization: h.auth },
      });
      expect(put.statusCode).toBe(405);
    });
  });

  describe('alert delivery', () => {
    let h: SyncHarness;
    const receiver = new Receiver();
    let hookUrl: string;
    beforeEach(async () => {
      sim.reset();
      h = await createSyncHarness({
        sharedSim: sim,
        database: await testDatabaseUrl(engine),
        config: localReceivers,
      });
      hookUrl = `http://127.0.0.1:${await receiver.listen()}/hook`;
    });
    afterEach(async () => {
      await h.close();
      await receiver.close();
      receiver.received.length = 0;
      receiver.status = 200;
    });

    it('syncFailed (with reason), stateChanged and syncRecovered reach the receiver, signed, once each', async () => {
      const { secret } = (await createWebhook(h, hookUrl)).json();
      const token = await h.upload('small');
      await h.context.alerts.scanOnce(); // first sight of the token: nothing to say yet

      // A transient failure: Apple keeps answering 500 (the harness client retries 4 times).
      sim.faults.serverError('small', 50, { endpoint: 'assignments', status: 500, retryAfter: 0 });
      await h.syncNow();
      await h.context.alerts.scanOnce();
      await h.context.alerts.deliverDue();
      sim.faults.clear('small');
      await h.requestSync(token.id as string);
      await h.syncNow();
      expect((await h.token(token.id as string)).lastSyncStatus).toBe('completed');
      await h.context.alerts.scanOnce();
      await h.context.alerts.deliverDue();

      const payloads = receiver.payloads();
      expect(payloads.map((p) => p.type)).toEqual(['syncFailed', 'syncRecovered']);
      const [failed, recovered] = payloads;
      expect(failed).toMatchObject({
        tenantId: tenantA,
        tokenId: token.id,
        data: { reason: 'appleUnavailable', failureReason: 'appleFailure', httpStatus: 500 },
      });
      expect(failed?.eventId).toMatch(/^syncFailed:/);
      expect(failed?.text).toContain('failed to sync');
      const failedRunId = (failed?.data as { runId?: string } | undefined)?.runId;
      expect(failedRunId).toEqual(expect.any(String));
      expect(recovered?.data).toMatchObject({ failedRunId });
      for (const r of receiver.received) {
        const signature = r.headers['x-vppd-signature'] as string;
        expect(verifyAlertSignature(r.body, secret, signature)).toBe(true);
        expect(r.headers['x-vppd-event-id']).toBe((JSON.parse(r.body) as AlertPayload).eventId);
        expect(r.headers['content-type']).toBe('application/json');
        expect(typeof r.headers['x-vppd-timestamp']).toBe('string');
      }

      // A revoked token: syncFailed with Apple's error number and a stateChanged to invalid.
      const revoked = await h.upload('revoked');
      await h.context.alerts.scanOnce();
      await h.syncNow();
      await h.context.alerts.scanOnce();
      await h.context.alerts.deliverDue();
      const more = receiver.payloads().slice(2);
      expect(more.map((p) => p.type).sort()).toEqual(['stateChanged', 'syncFailed']);
      expect(more.find((p) => p.type === 'syncFailed')).toMatchObject({
        tokenId: revoked.id,
        data: { reason: 'revoked', appleErrorNumber: 9625 },
      });
      expect(more.find((p) => p.type === 'stateChanged')).toMatchObject({
        tokenId: revoked.id,
        data: { from: 'unknown', to: 'invalid' },
      });

      // Scanning and delivering again changes nothing: one delivery per event id.
      await h.context.alerts.scanOnce();
      await h.context.alerts.deliverDue();
      const ids = receiver.received.map((r) => r.headers['x-vppd-event-id']);
      expect(ids).toHaveLength(4);
      expect(new Set(ids).size).toBe(4);

      // Housekeeping 91 days later deletes the delivered rows and old scan marks; nothing alerts again.
      h.clock.advance(91 * 86_400_000);
      expect(await h.context.alerts.prune()).toBeGreaterThanOrEqual(4);
      await h.context.alerts.scanOnce();
      await h.context.alerts.deliverDue();
      expect(receiver.received.map((r) => r.headers['x-vppd-event-id'])).toEqual(ids);
    });

    it('tokenExpiring at 30, 14 and 5 days (once each) and tokenExpired, to subscribed endpoints only', async () => {
      await createWebhook(h, hookUrl, ['tokenExpiring', 'tokenExpired']);
      const other = new Receiver();
      const otherUrl = `http://127.0.0.1:${await other.listen()}/hook`;
      await createWebhook(h, otherUrl, ['syncFailed']);
      try {
        const expDate = new Date(h.clock.now().getTime() + 40 * 86_400_000);
        const created = await h.app.inject({
          method: 'POST',
          url: tokensPath,
          headers: { authorization: h.auth },
          payload: { token: buildSToken({ expDate, orgName: 'Expiring School' }) },
        });
        expect(created.statusCode).toBe(201);
        const tokenId = created.json().id as string;
        const step = async (days: number) => {
          h.clock.advance(days * 86_400_000);
          await h.context.alerts.scanOnce();
          await h.context.alerts.scanOnce();
          await h.context.alerts.deliverDue();
        };
        await step(0); // 40 days left
        expect(receiver.received).toHaveLength(0);
        await step(11); // 29 days left
        await step(1);
        await step(16); // 12 days left
        await step(8); // 4 days left
        await step(4.5); // expired
        await step(1);
        const payloads = receiver.payloads();
        expect(
          payloads.map((p) => `${p.type}:${(p.data as { thresholdDays?: number }).thresholdDays ?? ''}`),
        ).toEqual(['tokenExpiring:30', 'tokenExpiring:14', 'tokenExpiring:5', 'tokenExpired:']);
        expect(payloads.every((p) => p.tokenId === tokenId)).toBe(true);
        expect(payloads[0]?.text).toContain('"Expiring School"');
        expect(payloads[0]?.text).toContain('expires in 29 days');
        expect(other.received).toHaveLength(0);
      } finally {
        await other.close();
      }
    });

    it('a receiver that answers 500 is retried with backoff; a 4xx other than 408/429 is not', async () => {
      await createWebhook(h, hookUrl, ['tokenExpired']);
      receiver.status = 500;
      await h.app.inject({
        method: 'POST',
        url: tokensPath,
        headers: { authorization: h.auth },
        payload: { token: buildSToken({ expDate: new Date(h.clock.now().getTime() - 1000) }) },
      });
      await h.context.alerts.scanOnce();
      await h.context.alerts.deliverDue();
      expect(receiver.received).toHaveLength(1);
      await h.context.alerts.deliverDue(); // not due yet: backoff
      expect(receiver.received).toHaveLength(1);
      h.clock.advance(60_000);
      await h.context.alerts.deliverDue();
      expect(receiver.received).toHaveLength(2);
      const outbox = alertsDatabaseOf(h.context.db);
      const row = await outbox.selectFrom('alert_outbox').selectAll().executeTakeFirstOrThrow();
      expect(row).toMatchObject({ status: 'pending', attempts: 2, last_status: 500, last_error: 'HTTP 500' });
      receiver.status = 410;
      h.clock.advance(120_000);
      await h.context.alerts.deliverDue();
      const gone = await outbox.selectFrom('alert_outbox').selectAll().executeTakeFirstOrThrow();
      expect(gone).toMatchObject({ status: 'failed', attempts: 3, last_status: 410 });
      h.clock.advance(3_600_000);
      await h.context.alerts.deliverDue();
      expect(receiver.received).toHaveLength(3);
    });
  });

  describe('outbox leases', () => {
    it('a row leased by a process that died is delivered by another once the lease ends, once', async () => {
      sim.reset();
      const h = await createSyncHarness({
        sharedSim: sim,
        database: await testDatabaseUrl(engine),
        config: localReceivers,
      });
      const receiver = new Receiver();
      try {
        const hookUrl = `http://127.0.0.1:${await receiver.listen()}/hook`;
        await createWebhook(h, hookUrl, ['tokenExpired']);
        await h.app.inject({
          method: 'POST',
          url: tokensPath,
          headers: { authorization: h.auth },
          payload: { token: buildSToken({ expDate: new Date(h.clock.now().getTime() - 1000) }) },
        });
        await h.context.alerts.scanOnce();
        // Another process claimed the row and died mid-delivery: its lease (60 s) is still running.
        const outbox = alertsDatabaseOf(h.context.db);
        const leaseEnd = new Date(h.clock.now().getTime() + 60_000).toISOString();
        await outbox
          .updateTable('alert_outbox')
          .set({ lease_owner: 'dead-process', lease_expires_at: leaseEnd })
          .execute();
        expect(await h.context.alerts.deliverDue()).toBe(0);
        h.clock.advance(60_000);
        expect(await h.context.alerts.deliverDue()).toBe(1);
        expect(await h.context.alerts.deliverDue()).toBe(0);
        expect(receiver.received).toHaveLength(1);
        const row = await outbox.selectFrom('alert_outbox').selectAll().executeTakeFirstOrThrow();
        expect(row).toMatchObject({ status: 'delivered', attempts: 1, lease_owner: null });
      } finally {
        await h.close();
        await receiver.close();
      }
    });
  });

  describe('durable outbox across a restart', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'vppd-alerts-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('receiver down, vppd restarted: each alert is delivered once the receiver is back, exactly once', async () => {
      sim.reset();
      const database = await testDatabaseUrl(engine, `sqlite:${join(dir, 'vppd.db')}`);
      const clock = createFakeClock();
      const receiver = new Receiver();
      // Reserve a port, then close it: the receiver is down.
      const port = await receiver.listen();
      await receiver.close();
      const hookUrl = `http://127.0.0.1:${port}/hook`;

      const first = await createSyncHarness({ sharedSim: sim, database, clock, config: localReceivers });
      let secret: string;
      let tokenId: string;
      try {
        secret = (await createWebhook(first, hookUrl)).json().secret;
        tokenId = (await first.upload('revoked')).id as string;
        await first.context.alerts.scanOnce();
        await first.syncNow(); // fails: revoked
        await first.context.alerts.scanOnce();
        // The sync is not held up by the dead receiver: it finished before any delivery was tried.
        expect((await first.token(tokenId)).lastSyncStatus).toBe('failed');
        await first.context.alerts.deliverDue();
        clock.advance(60_000);
        await first.context.alerts.deliverDue();
        const rows = await alertsDatabaseOf(first.context.db)
          .selectFrom('alert_outbox')
          .select(['event_type', 'status', 'attempts', 'last_error'])
          .orderBy('event_type')
          .execute();
        expect(rows.map((r) => [r.event_type, r.status])).toEqual([
          ['stateChanged', 'pending'],
          ['syncFailed', 'pending'],
        ]);
        expect(rows.every((r) => r.attempts >= 1 && /ECONNREFUSED/.test(r.last_error ?? ''))).toBe(true);
      } finally {
        await first.close();
      }

      await receiver.listen(port);
      const second = await createSyncHarness({ sharedSim: sim, database, clock, config: localReceivers });
      try {
        clock.advance(10 * 60_000);
        await second.context.alerts.scanOnce();
        await second.context.alerts.deliverDue();
        await second.context.alerts.scanOnce();
        await second.context.alerts.deliverDue();
        clock.advance(3_600_000);
        await second.context.alerts.deliverDue();
        const ids = receiver.received.map((r) => r.headers['x-vppd-event-id']);
        expect(ids.sort()).toEqual([
          expect.stringMatching(/^stateChanged:/),
          expect.stringMatching(/^syncFailed:/),
        ]);
        for (const r of receiver.received) {
          expect(verifyAlertSignature(r.body, secret, r.headers['x-vppd-signature'] as string)).toBe(true);
          expect((JSON.parse(r.body) as AlertPayload).tokenId).toBe(tokenId);
        }
      } finally {
        await second.close();
        await receiver.close();
      }
    });
  });
});
