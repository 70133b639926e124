import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type AppleSim, type LocationSeed, startAppleSim } from '../src/apple-sim/apple-sim.js';

// The simulator's notifications over real HTTP: a test receiver stands in for an MDM's notification URL.
// Registration with a TEST_NOTIFICATION (9728 when it fails), ASSET_COUNT on purchases, refunds and
// transfers, ASSET_MANAGEMENT when an associate event completes on its own, Apple's retries and
// duplicates, and `GET assets?unlimited=true`.

const locations: LocationSeed[] = [
  {
    id: 'north',
    name: 'North School',
    orgName: 'District',
    countryCode: 'US',
    assets: 200,
    assignments: 200,
    users: 40,
  },
  {
    id: 'south',
    name: 'South School',
    orgName: 'District',
    countryCode: 'US',
    assets: 200,
    assignments: 150,
    users: 30,
  },
];

interface Delivery {
  readonly headers: IncomingHttpHeaders;
  readonly body: {
    notificationId: string;
    notificationType: string;
    uId: string;
    notification: Record<string, unknown>;
  };
}

/** A notification URL: records every POST; `failNext` answers 503 to that many requests first. */
class Receiver {
  readonly deliveries: Delivery[] = [];
  failNext = 0;
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.deliveries.push({
          headers: req.headers,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
        });
        if (this.failNext > 0) {
          this.failNext -= 1;
          res.writeHead(503).end();
        } else {
          res.writeHead(204).end();
        }
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/apple/notifications`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server?.close(() => resolve());
      this.server?.closeAllConnections();
    });
  }
}

async function apple(sim: AppleSim, id: string, path: string, body?: unknown) {
  const response = await fetch(`${sim.baseUrl}/${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${sim.tokenFor(id)}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function admin(sim: AppleSim, method: string, path: string, body?: unknown) {
  const response = await fetch(`${sim.adminUrl}/${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const mdmInfo = { id: 'mdm-1', name: 'vppd' };
// A seed whose two locations share some assets (transfers need the asset on both sides).
const simSeed = 'notify-6';

describe('apple-sim notifications', () => {
  let sim: AppleSim;
  const receiver = new Receiver();

  beforeAll(async () => {
    await receiver.start();
    sim = await startAppleSim({
      seed: simSeed,
      locations,
      rateLimit: false,
      notifications: { allowHttp: true, retryDelaysMs: [5, 5], duplicateEvery: 0 },
    });
  });
  afterAll(async () => {
    await sim.close();
    await receiver.stop();
  });
  afterEach(() => {
    sim.reset();
    receiver.deliveries.length = 0;
    receiver.failNext = 0;
  });

  async function subscribe(id: string, token = `auth-${id}`) {
    return apple(sim, id, 'client/config', {
      mdmInfo,
      notificationUrl: receiver.url,
      notificationAuthToken: token,
      notificationTypes: ['ASSET_MANAGEMENT', 'ASSET_COUNT'],
    });
  }

  it('sends a TEST_NOTIFICATION with the auth token and reports subscribedNotificationTypes', async () => {
    const posted = await subscribe('north', 'secret-north');
    expect(posted.status).toBe(200);
    expect(receiver.deliveries).toHaveLength(1);
    const test = receiver.deliveries[0]!;
    expect(test.headers.authorization).toBe('Bearer secret-north');
    expect(test.body).toMatchObject({ notificationType: 'TEST_NOTIFICATION', uId: posted.body.uId });
    expect(test.body.notificationId).toMatch(/^[0-9a-f-]{36}$/);

    const config = (await apple(sim, 'north', 'client/config')).body;
    expect(config.subscribedNotificationTypes).toEqual(['ASSET_MANAGEMENT', 'ASSET_COUNT']);
    expect(config.notificationTypes).toBeUndefined();
    expect(config.notificationUrl).toBe(receiver.url);
    expect(config.mdmInfo).toEqual(mdmInfo);
  });

  it('sends ASSET_MANAGEMENT when an associate event completes, without any poll', async () => {
    await subscribe('north');
    const assets = (await apple(sim, 'north', 'assets')).body.assets as {
      adamId: string;
      pricingParam: string;
      deviceAssignable: boolean;
      availableCount: number;
    }[];
    const asset = assets.find((a) => a.deviceAssignable && a.availableCount > 2)!;
    const ref = { adamId: asset.adamId, pricingParam: asset.pricingParam };
    const ok = await apple(sim, 'north', 'assets/associate', { assets: [ref], serialNumbers: ['SIMAM1'] });
    sim.faults.add('north', { type: 'eventFailure', count: 1, errorNumber: 9616, serialNumbers: ['SIMAM3'] });
    const partly = await apple(sim, 'north', 'assets/associate', {
      assets: [ref],
      serialNumbers: ['SIMAM2', 'SIMAM3'],
    });
    const managed = () => receiver.deliveries.filter((d) => d.body.notificationType === 'ASSET_MANAGEMENT');
    await sim.notificationsIdle();
    await vi.waitFor(() => expect(managed()).toHaveLength(2), { timeout: 10_000, interval: 20 });
    expect(managed().map((d) => d.body.notification)).toEqual([
      { eventId: ok.body.eventId, type: 'ASSOCIATE', result: 'SUCCESS' },
      {
        eventId: partly.body.eventId,
        type: 'ASSOCIATE',
        result: 'FAILURE',
        error: { errorNumber: 9616, errorMessage: 'Error 9616' },
        assignments: [{ ...ref, serialNumber: 'SIMAM3', errorNumber: 9616, errorMessage: 'Error 9616' }],
      },
    ]);
    expect(sim.requestCounts().north?.['GET assets/eventStatus']).toBeUndefined();
  });

  it('refuses the config with 9728 when the test notification fails, and changes nothing', async () => {
    receiver.failNext = 1;
    const before = (await apple(sim, 'north', 'client/config')).body;
    const posted = await subscribe('north');
    expect(posted.status).toBe(400);
    expect(posted.body.errorNumber).toBe(9728);
    expect(receiver.deliveries).toHaveLength(1); // one try only: the config call waits for it
    expect((await apple(sim, 'north', 'client/config')).body).toEqual(before);
  });

  it('refuses a URL without its token (9710) and a non-HTTPS URL where Apple would (9712)', async () => {
    const alone = await apple(sim, 'north', 'client/config', { mdmInfo, notificationUrl: receiver.url });
    expect(alone.body.errorNumber).toBe(9710);
    const strict = await startAppleSim({ seed: simSeed, locations, rateLimit: false });
    try {
      const http = await apple(strict, 'north', 'client/config', {
        mdmInfo,
        notificationUrl: receiver.url,
        notificationAuthToken: 'x',
      });
      expect(http.body.errorNumber).toBe(9712);
    } finally {
      await strict.close();
    }
    expect(receiver.deliveries).toHaveLength(0);
  });

  it('announces a purchase, a refund and a transfer with ASSET_COUNT and moves totalCount', async () => {
    await subscribe('north');
    await subscribe('south');
    const northAssets = (await apple(sim, 'north', 'assets')).body.assets as Record<
      string,
      number | string
    >[];
    const southAssets = (await apple(sim, 'south', 'assets')).body.assets as Record<
      string,
      number | string
    >[];
    const shared = northAssets.find(
      (a) =>
        a.totalCount !== 2147483647 &&
        southAssets.some(
          (b) => b.adamId === a.adamId && b.pricingParam === a.pricingParam && b.totalCount !== 2147483647,
        ),
    );
    expect(shared).toBeDefined();
    const ref = { adamId: shared!.adamId as string, pricingParam: shared!.pricingParam as string };
    receiver.deliveries.length = 0;

    const bought = await admin(sim, 'POST', 'locations/north/purchases', { ...ref, count: 7 });
    expect(bought.status).toBe(200);
    expect(bought.body.totalCount).toBe((shared!.totalCount as number) + 7);
    sim.refund('north', { ...ref, count: 2 });
    sim.transfer('north', { ...ref, count: 1, to: 'south' });
    await sim.notificationsIdle();

    const counts = receiver.deliveries.map((d) => [
      d.headers.authorization,
      d.body.notificationType,
      d.body.notification,
    ]);
    expect(counts).toEqual([
      ['Bearer auth-north', 'ASSET_COUNT', { ...ref, countDelta: 7 }],
      ['Bearer auth-north', 'ASSET_COUNT', { ...ref, countDelta: -2 }],
      ['Bearer auth-north', 'ASSET_COUNT', { ...ref, countDelta: -1 }],
      ['Bearer auth-south', 'ASSET_COUNT', { ...ref, countDelta: 1 }],
    ]);
    const after = (
      (await apple(sim, 'north', 'assets')).body.assets as Record<string, number | string>[]
    ).find((a) => a.adamId === ref.adamId && a.pricingParam === ref.pricingParam)!;
    expect(after.totalCount).toBe((shared!.totalCount as number) + 4);
    expect(after.availableCount).toBe((after.totalCount as number) - (after.assignedCount as number));

    // More than is unassigned cannot be refunded; nothing changes and nothing is sent.
    const tooMany = await admin(sim, 'POST', 'locations/north/refunds', { ...ref, count: 1_000_000 });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error).toMatch(/unassigned/);
    const unknown = await admin(sim, 'POST', 'locations/north/purchases', { adamId: '1', count: 1 });
    expect(unknown.status).toBe(400);
    await sim.notificationsIdle();
    expect(receiver.deliveries).toHaveLength(4);
  });

  it('sends nothing to a location that did not subscribe to ASSET_COUNT', async () => {
    const asset = (
      (await apple(sim, 'north', 'assets')).body.assets as Record<string, string | number>[]
    ).find((a) => a.totalCount !== 2147483647)!;
    const result = sim.purchase('north', {
      adamId: asset.adamId as string,
      pricingParam: asset.pricingParam as string,
      count: 1,
    });
    expect(result.notificationId).toBeUndefined();
    await sim.notificationsIdle();
    expect(receiver.deliveries).toHaveLength(0);
  });

  it('retries a failed delivery up to three tries, then gives up', async () => {
    await subscribe('north');
    const asset = (
      (await apple(sim, 'north', 'assets')).body.assets as Record<string, string | number>[]
    ).find((a) => a.totalCount !== 2147483647)!;
    const ref = { adamId: asset.adamId as string, pricingParam: asset.pricingParam as string };
    receiver.deliveries.length = 0;

    receiver.failNext = 2;
    const first = sim.purchase('north', { ...ref, count: 1 }).notificationId!;
    await sim.notificationsIdle();
    expect(receiver.deliveries.map((d) => d.body.notificationId)).toEqual([first, first, first]);
    expect(sim.notifications().find((n) => n.notificationId === first)).toMatchObject({
      attempts: 3,
      status: 'delivered',
    });

    receiver.failNext = 3;
    const second = sim.purchase('north', { ...ref, count: 1 }).notificationId!;
    await sim.notificationsIdle();
    expect(sim.notifications().find((n) => n.notificationId === second)).toMatchObject({
      attempts: 3,
      status: 'failed',
      lastResult: '503',
    });
    const listed = await admin(sim, 'GET', 'notifications');
    expect((listed.body as unknown as { notificationId: string }[]).map((n) => n.notificationId)).toContain(
      second,
    );
  });

  it('sends every n-th notification twice with the same notificationId', async () => {
    const dup = await startAppleSim({
      seed: simSeed,
      locations,
      rateLimit: false,
      notifications: { allowHttp: true, retryDelaysMs: [5, 5], duplicateEvery: 1 },
    });
    try {
      await apple(dup, 'north', 'client/config', {
        mdmInfo,
        notificationUrl: receiver.url,
        notificationAuthToken: 't',
        notificationTypes: ['ASSET_COUNT'],
      });
      const asset = (
        (await apple(dup, 'north', 'assets')).body.assets as Record<string, string | number>[]
      ).find((a) => a.totalCount !== 2147483647)!;
      receiver.deliveries.length = 0;
      const id = dup.purchase('north', {
        adamId: asset.adamId as string,
        pricingParam: asset.pricingParam as string,
        count: 3,
      }).notificationId;
      await dup.notificationsIdle();
      expect(receiver.deliveries.map((d) => d.body.notificationId)).toEqual([id, id]);
      expect(receiver.deliveries[1]!.body).toEqual(receiver.deliveries[0]!.body);
    } finally {
      await dup.close();
    }
  });

  it('answers unlimited=true with unlimitedAssets that carry no counts', async () => {
    const plain = (await apple(sim, 'north', 'assets')).body;
    const split = (await apple(sim, 'north', 'assets?unlimited=true')).body;
    const plainAssets = plain.assets as Record<string, unknown>[];
    const unlimited = split.unlimitedAssets as Record<string, unknown>[];
    const limited = split.assets as Record<string, unknown>[];
    expect(unlimited.length).toBeGreaterThan(0);
    expect(unlimited.length + limited.length).toBe(plainAssets.length);
    expect(plainAssets.filter((a) => a.totalCount === 2147483647)).toHaveLength(unlimited.length);
    for (const asset of unlimited) {
      expect(asset).not.toHaveProperty('totalCount');
      expect(asset).not.toHaveProperty('availableCount');
      expect(asset).not.toHaveProperty('retiredCount');
      expect(asset).toHaveProperty('assignedCount');
      expect(asset).toHaveProperty('adamId');
    }
    expect(limited.every((a) => typeof a.totalCount === 'number' && a.totalCount !== 2147483647)).toBe(true);
    expect(split).toMatchObject({ currentPageIndex: 0, totalPages: 1, versionId: plain.versionId });
  });
});
