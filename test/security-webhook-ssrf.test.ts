import type { LookupAddress } from 'node:dns';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertsDatabaseOf } from '../src/alerts/alert-tables.js';
import { createWebhookAddressPolicy, parseWebhookAllow } from '../src/alerts/webhook-address-policy.js';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import { alertWebhooksPath } from '../src/vppd-api/alerts-routes.js';
import { tenantA, testConfig } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';

// Issue 17, webhook SSRF: over a real socket, a tenant cannot register a webhook that points at
// loopback, private, link-local, unique-local or metadata addresses in any spelling, and a name that
// resolved to a public address at creation but to loopback at delivery (DNS rebinding) is refused
// at connect time: the internal service never sees a connection.

/** DNS answers the test controls: name -> addresses, changeable between creation and delivery. */
const dns = new Map<string, string[]>();
const lookup = async (hostname: string): Promise<LookupAddress[]> => {
  const found = dns.get(hostname.toLowerCase());
  if (!found) throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
  return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

let server: RunningServer;
let internal: Server;
let internalPort: number;
const internalConnections: string[] = [];
let auth: string;

beforeAll(async () => {
  // The "internal service" vppd must never reach: counts every TCP connection it gets.
  internal = createServer((socket) => {
    internalConnections.push(socket.remoteAddress ?? '?');
    socket.destroy();
  });
  await new Promise<void>((resolve) => internal.listen(0, '127.0.0.1', resolve));
  internalPort = (internal.address() as AddressInfo).port;
  server = await startServer(testConfig({ port: '0' }), {
    logger: pino({ level: 'silent' }),
    webhookLookup: lookup,
  });
  auth = `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite] })}`;
});

afterAll(async () => {
  await server.close();
  await new Promise<void>((resolve) => internal.close(() => resolve()));
});

async function create(url: string) {
  const response = await fetch(`${server.url}${alertWebhooksPath}`, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify({ url }),
  });
  const body = (await response.json()) as { id?: string; error?: { code: string; message: string } };
  return { status: response.status, body };
}

describe('webhook SSRF (issue 17)', () => {
  it('refuses every internal address form at creation with a Graph 400', async () => {
    const p = internalPort;
    const refused = [
      `http://127.0.0.1:${p}/hook`,
      `http://127.1:${p}/hook`,
      `http://2130706433:${p}/hook`,
      `http://0x7f.1:${p}/hook`,
      `http://localhost:${p}/hook`,
      `https://127.0.0.1:${p}/hook`,
      `https://localhost/hook`,
      'https://169.254.169.254/latest/meta-data/',
      'https://10.0.0.1/hook',
      'https://192.168.1.1/hook',
      'https://100.64.0.1/hook',
      'https://[fd00::1]/hook',
      'https://[::1]/hook',
      'https://[fe80::1]/hook',
      'https://[::ffff:169.254.169.254]/hook',
      'https://[::ffff:127.0.0.1]/hook',
      'https://0.0.0.0/hook',
      'https://224.0.0.1/hook',
      'https://metadata.google.internal/computeMetadata/v1/',
    ];
    for (const url of refused) {
      const { status, body } = await create(url);
      expect(status, url).toBe(400);
      expect(body.error?.code, url).toBe('BadRequest');
      expect(body.error?.message, url).toMatch(/public address|https/);
    }
    // A name resolving to loopback now is refused too.
    dns.set('loopback.example.com', ['127.0.0.1']);
    const named = await create('https://loopback.example.com/hook');
    expect(named.status).toBe(400);
    expect(named.body.error?.message).toMatch(/resolves to 127\.0\.0\.1/);
    // A public host is fine (also when the name does not resolve right now).
    dns.set('hooks.example.com', ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946']);
    expect((await create('https://hooks.example.com/hook')).status).toBe(201);
    expect((await create('https://unresolvable.example.net/hook')).status).toBe(201);
    expect(internalConnections).toEqual([]);
  });

  it('refuses at connect time a name rebound to loopback, and a stored internal URL', async () => {
    dns.set('rebind.example.com', ['93.184.216.34']);
    const created = await create(`https://rebind.example.com:${internalPort}/hook`);
    expect(created.status).toBe(201);
    const webhookId = created.body.id ?? '';
    // DNS now answers loopback (rebinding); a stored URL from before the rules is a literal.
    dns.set('rebind.example.com', ['127.0.0.1']);
    const db = alertsDatabaseOf(server.context.db);
    const now = new Date().toISOString();
    const outbox = (id: string, webhook: string) => ({
      id,
      event_id: `event-${id}`,
      tenant_id: tenantA,
      webhook_id: webhook,
      event_type: 'syncFailed',
      token_id: null,
      payload: '{}',
      status: 'pending' as const,
      attempts: 0,
      created_at: now,
      next_attempt_at: now,
      lease_owner: null,
      lease_expires_at: null,
      delivered_at: null,
      last_status: null,
      last_error: null,
    });
    await db.insertInto('alert_outbox').values(outbox('o-1', webhookId)).execute();
    const other = await create('https://hooks.example.com/other');
    await db
      .updateTable('alert_webhooks')
      .set({ url: `http://127.0.0.1:${internalPort}/hook` })
      .where('id', '=', other.body.id ?? '')
      .execute();
    await db
      .insertInto('alert_outbox')
      .values(outbox('o-2', other.body.id ?? ''))
      .execute();
    expect(await server.context.alerts.deliverDue()).toBe(2);
    const rows = await db
      .selectFrom('alert_outbox')
      .select(['id', 'status', 'last_error'])
      .where('id', 'in', ['o-1', 'o-2'])
      .orderBy('id')
      .execute();
    expect(rows).toEqual([
      { id: 'o-1', status: 'failed', last_error: 'refused: the webhook host is not a public address' },
      { id: 'o-2', status: 'failed', last_error: 'refused: the webhook host is not a public address' },
    ]);
    expect(internalConnections).toEqual([]);
  });

  it('VPPD_WEBHOOK_ALLOW opens exceptions by host, address and CIDR', () => {
    const policy = createWebhookAddressPolicy(parseWebhookAllow('hooks.corp.internal, 10.1.0.0/16 ::1'));
    expect(policy.checkHost('hooks.corp.internal')).toBeUndefined();
    expect(policy.checkAddress('hooks.corp.internal', '10.9.9.9')).toBeUndefined();
    expect(policy.checkHost('10.1.2.3')).toBeUndefined();
    expect(policy.checkHost('[::1]')).toBeUndefined();
    expect(policy.checkHost('10.2.0.1')).toMatch(/not a public address/);
    expect(policy.checkAddress('x.example.com', '10.1.0.7')).toBeUndefined();
    expect(policy.checkAddress('x.example.com', '10.2.0.7')).toMatch(/not a public address/);
    expect(policy.checkAddress('x.example.com', '8.8.8.8')).toBeUndefined();
    expect(() => parseWebhookAllow('10.0.0.0/33')).toThrow(/prefix/);
    expect(() => parseWebhookAllow('http://x')).toThrow(/not a host name/);
  });
});
