import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';

// The simulator's license operations over real HTTP: associate/disassociate events answered by
// `GET assets/eventStatus`, Apple's limits and quirks, deltas by sinceVersionId, scripted event faults.

type Json = Record<string, unknown>;

let sim: AppleSim;
let now = new Date('2026-03-01T12:00:00Z');

async function call(
  path: string,
  body?: unknown,
  location = 'alpha',
): Promise<{ status: number; body: Json }> {
  const response = await fetch(`${sim.baseUrl}/${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      authorization: `Bearer ${sim.tokenFor(location)}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Json };
}

async function admin(path: string, body: unknown): Promise<number> {
  const response = await fetch(`${sim.url}/_sim/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await response.text();
  return response.status;
}

interface Asset {
  adamId: string;
  pricingParam: string;
  assignedCount: number;
  availableCount: number;
  totalCount: number;
  deviceAssignable: boolean;
}

async function deviceAsset(minAvailable: number): Promise<Asset> {
  const assets = (await call('assets')).body.assets as Asset[];
  const asset = assets.find(
    (a) => a.deviceAssignable && a.availableCount >= minAvailable && a.totalCount < 2147483647,
  );
  if (asset === undefined) throw new Error('no device-assignable asset with licenses left');
  return asset;
}

async function assetNow(ref: Asset): Promise<Asset> {
  const assets = (await call(`assets?adamId=${ref.adamId}&pricingParam=${ref.pricingParam}`)).body
    .assets as Asset[];
  return assets[0]!;
}

/** Polls eventStatus until the event is no longer PENDING. */
async function settle(eventId: string): Promise<Json> {
  for (let i = 0; i < 10; i++) {
    const status = await call(`assets/eventStatus?eventId=${eventId}`);
    expect(status.status).toBe(200);
    if (status.body.eventStatus !== 'PENDING') return status.body;
  }
  throw new Error('event still PENDING after 10 polls');
}

beforeAll(async () => {
  sim = await startAppleSim({
    seed: 'ops',
    rateLimit: false,
    clock: () => now,
    eventDelayMs: 60_000,
    locations: [
      {
        id: 'alpha',
        name: 'Alpha',
        orgName: 'Alpha Org',
        countryCode: 'US',
        assets: 20,
        assignments: 60,
        users: 30,
      },
    ],
  });
});

afterAll(async () => {
  await sim.close();
});

beforeEach(async () => {
  await sim.reset();
  now = new Date('2026-03-01T12:00:00Z');
});

describe('apple-sim license operations', () => {
  it('associates asynchronously: PENDING first, then COMPLETE with counts and versionId moved', async () => {
    const asset = await deviceAsset(3);
    const before = await call('assignments');
    const posted = await call('assets/associate', {
      assets: [{ adamId: asset.adamId, pricingParam: asset.pricingParam }],
      serialNumbers: ['NEVER-SEEN-1', 'NEVER-SEEN-2'],
    });
    expect(posted.status).toBe(200);
    const eventId = posted.body.eventId as string;
    const first = await call(`assets/eventStatus?eventId=${eventId}`);
    expect(first.body).toMatchObject({ eventStatus: 'PENDING', eventType: 'ASSOCIATE', numRequested: 2 });
    // Nothing changed while pending.
    expect((await assetNow(asset)).assignedCount).toBe(asset.assignedCount);
    // Apple's quirk: serial numbers it never saw are accepted and complete.
    const done = await settle(eventId);
    expect(done).toMatchObject({ eventStatus: 'COMPLETE', numCompleted: 2, failures: [] });
    const after = await assetNow(asset);
    expect(after.assignedCount).toBe(asset.assignedCount + 2);
    expect(after.availableCount).toBe(asset.availableCount - 2);
    expect((await call('assignments')).body.versionId).not.toBe(before.body.versionId);
    // The older path answers the same event.
    expect((await call(`status?eventId=${eventId}`)).body.eventStatus).toBe('COMPLETE');
  });

  it('completes an event after eventDelayMs of the clock without any poll', async () => {
    const asset = await deviceAsset(1);
    const posted = await call('assets/associate', {
      assets: [{ adamId: asset.adamId, pricingParam: asset.pricingParam }],
      serialNumbers: ['DELAYED-1'],
    });
    now = new Date(now.getTime() + 60_000);
    expect((await assetNow(asset)).assignedCount).toBe(asset.assignedCount + 1);
    const status = await call(`assets/eventStatus?eventId=${posted.body.eventId as string}`);
    expect(status.body.eventStatus).toBe('COMPLETE');
  });

  it('disassociates; a license that does not exist fails with 9610 per item', async () => {
    const asset = await deviceAsset(1);
    const ref = { adamId: asset.adamId, pricingParam: asset.pricingParam };
    await settle(
      (await call('assets/associate', { assets: [ref], serialNumbers: ['D-1'] })).body.eventId as string,
    );
    const posted = await call('assets/disassociate', { assets: [ref], serialNumbers: ['D-1', 'NOT-HELD'] });
    const done = await settle(posted.body.eventId as string);
    expect(done).toMatchObject({
      eventStatus: 'COMPLETE',
      eventType: 'DISASSOCIATE',
      numRequested: 2,
      numCompleted: 1,
    });
    expect(done.failures).toEqual([
      { ...ref, serialNumber: 'NOT-HELD', errorNumber: 9610, errorMessage: 'License not found' },
    ]);
    expect((await assetNow(asset)).assignedCount).toBe(asset.assignedCount);
  });

  it('refuses requests over the service/config limits or naming both holder kinds, changing nothing', async () => {
    const config = (await (await fetch(`${sim.baseUrl}/service/config`)).json()) as { limits: Json };
    expect(config.limits).toMatchObject({ maxAssets: 25, maxSerialNumbers: 1000, maxClientUserIds: 1000 });
    const asset = await deviceAsset(1);
    const ref = { adamId: asset.adamId, pricingParam: asset.pricingParam };
    const serials = Array.from({ length: 1001 }, (_, i) => `L${i}`);
    const cases: Json[] = [
      {
        assets: Array.from({ length: 26 }, (_, i) => ({ adamId: String(i + 1), pricingParam: 'STDQ' })),
        serialNumbers: ['A'],
      },
      { assets: [ref], serialNumbers: serials },
      { assets: [ref], clientUserIds: serials },
      { assets: [ref], serialNumbers: ['A'], clientUserIds: ['B'] },
      { assets: [], serialNumbers: ['A'] },
      { assets: [ref] },
    ];
    const version = (await call('assignments')).body.versionId;
    for (const body of cases) {
      const answer = await call('assets/associate', body);
      expect(answer.status).toBe(400);
      expect(answer.body.errorNumber).toBe(9602);
    }
    expect((await call('assignments')).body.versionId).toBe(version);
    expect((await assetNow(asset)).assignedCount).toBe(asset.assignedCount);
    const unknown = await call('assets/eventStatus?eventId=00000000-0000-4000-8000-000000000000');
    expect(unknown.status).toBe(400);
    expect(unknown.body.errorNumber).toBe(9708);
  });

  it('answers deltas by sinceVersionId: zero records when nothing changed, 9721 for an unknown version', async () => {
    const version = (await call('assignments')).body.versionId as string;
    const empty = await call(`assignments?sinceVersionId=${version}`);
    expect(empty.body).toMatchObject({ size: 0, totalPages: 0, assignments: [] });
    const asset = await deviceAsset(2);
    const ref = { adamId: asset.adamId, pricingParam: asset.pricingParam };
    await settle(
      (await call('assets/associate', { assets: [ref], serialNumbers: ['V-1', 'V-2'] })).body
        .eventId as string,
    );
    const delta = await call(`assignments?sinceVersionId=${version}`);
    expect(delta.body.assignments).toEqual([
      { ...ref, serialNumber: 'V-1' },
      { ...ref, serialNumber: 'V-2' },
    ]);
    expect(delta.body.versionId).not.toBe(version);
    const bad = await call('assignments?sinceVersionId=not-a-version');
    expect(bad.status).toBe(400);
    expect(bad.body.errorNumber).toBe(9721);
  });

  it('scripts per-item failures with Apple error numbers through the fault API', async () => {
    const asset = await deviceAsset(2);
    const ref = { adamId: asset.adamId, pricingParam: asset.pricingParam };
    expect(
      await admin('locations/alpha/faults', {
        type: 'eventFailure',
        count: 1,
        errorNumber: 9716,
        errorMessage: 'Device not eligible',
        serialNumbers: ['F-2'],
        endpoint: 'assets/associate',
      }),
    ).toBe(200);
    const done = await settle(
      (await call('assets/associate', { assets: [ref], serialNumbers: ['F-1', 'F-2'] })).body
        .eventId as string,
    );
    expect(done).toMatchObject({ eventStatus: 'COMPLETE', numCompleted: 1 });
    expect(done.failures).toEqual([
      { ...ref, serialNumber: 'F-2', errorNumber: 9716, errorMessage: 'Device not eligible' },
    ]);
    expect((await assetNow(asset)).assignedCount).toBe(asset.assignedCount + 1);
    // Used up: the next event is not affected. Every item failing makes the event FAILED.
    sim.faults.add('alpha', { type: 'eventFailure', count: 1, errorNumber: 9603 });
    const failed = await settle(
      (await call('assets/associate', { assets: [ref], serialNumbers: ['F-3'] })).body.eventId as string,
    );
    expect(failed).toMatchObject({ eventStatus: 'FAILED', numCompleted: 0 });
    expect(await admin('locations/alpha/faults', { type: 'eventFailure', count: 1 })).toBe(400);
  });

  it('scripts an event that stays PENDING (eventPending) until the client retries', async () => {
    const asset = await deviceAsset(1);
    const ref = { adamId: asset.adamId, pricingParam: asset.pricingParam };
    sim.faults.add('alpha', { type: 'eventPending', count: 1, endpoint: 'assets/associate' });
    const stuck = (await call('assets/associate', { assets: [ref], serialNumbers: ['P-1'] })).body
      .eventId as string;
    for (let i = 0; i < 4; i++) {
      expect((await call(`assets/eventStatus?eventId=${stuck}`)).body.eventStatus).toBe('PENDING');
    }
    now = new Date(now.getTime() + 11 * 60_000);
    expect((await call(`assets/eventStatus?eventId=${stuck}`)).body.eventStatus).toBe('PENDING');
    const retried = await settle(
      (await call('assets/associate', { assets: [ref], serialNumbers: ['P-1'] })).body.eventId as string,
    );
    expect(retried.eventStatus).toBe('COMPLETE');
    expect((await assetNow(asset)).assignedCount).toBe(asset.assignedCount + 1);
  });
});
