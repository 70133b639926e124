import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAppleClient } from '../src/apple/index.js';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { isVppdError } from '../src/domain/errors.js';

// The client's license-operation calls against the simulator over HTTP: limits from service/config
// checked before Apple is asked, the event read back through assets/eventStatus, 5xx retried.

let sim: AppleSim;

beforeAll(async () => {
  sim = await startAppleSim({
    seed: 'client-ops',
    rateLimit: false,
    locations: [
      {
        id: 'alpha',
        name: 'Alpha',
        orgName: 'Alpha Org',
        countryCode: 'US',
        assets: 12,
        assignments: 30,
        users: 10,
      },
    ],
  });
});

afterAll(async () => {
  await sim.close();
});

beforeEach(async () => {
  await sim.reset();
});

function client() {
  const sleeps: number[] = [];
  const apple = createAppleClient({
    baseUrl: sim.baseUrl,
    metadataUrl: sim.metadataUrl,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
  });
  return { apple, sleeps };
}

describe('Apple client: associate, disassociate, event status', () => {
  it('associates, reads the event to COMPLETE and disassociates again', async () => {
    const { apple } = client();
    const token = sim.tokenFor('alpha');
    const assets = [];
    for await (const page of apple.assets(token, { deviceAssignable: true })) assets.push(...page.records);
    const asset = assets.find((a) => a.availableCount >= 2 && a.totalCount < 2147483647)!;
    const ref = { adamId: asset.adamId, pricingParam: asset.pricingParam };
    const { eventId } = await apple.associateAssets(token, { assets: [ref], serialNumbers: ['C-1', 'C-2'] });
    let status = await apple.getAssetEventStatus(token, eventId);
    while (status.eventStatus === 'PENDING') status = await apple.getAssetEventStatus(token, eventId);
    expect(status).toMatchObject({
      eventStatus: 'COMPLETE',
      eventType: 'ASSOCIATE',
      numRequested: 2,
      numCompleted: 2,
    });
    const back = await apple.disassociateAssets(token, { assets: [ref], serialNumbers: ['C-1', 'X-9'] });
    let undo = await apple.getAssetEventStatus(token, back.eventId);
    while (undo.eventStatus === 'PENDING') undo = await apple.getAssetEventStatus(token, back.eventId);
    expect(undo.numCompleted).toBe(1);
    expect(undo.failures).toEqual([
      { ...ref, serialNumber: 'X-9', errorNumber: 9610, errorMessage: 'License not found' },
    ]);
    await apple.close();
  });

  it('reads the limits from service/config and refuses larger calls without asking Apple', async () => {
    const { apple } = client();
    const token = sim.tokenFor('alpha');
    expect(await apple.associationLimits()).toEqual({
      maxAssets: 25,
      maxSerialNumbers: 1000,
      maxClientUserIds: 1000,
    });
    sim.resetRequestCounts();
    const ref = { adamId: '1', pricingParam: 'STDQ' };
    const bad = [
      { assets: [ref], serialNumbers: Array.from({ length: 1001 }, (_, i) => `S${i}`) },
      { assets: Array.from({ length: 26 }, () => ref), serialNumbers: ['S'] },
      { assets: [ref], serialNumbers: ['S'], clientUserIds: ['U'] },
      { assets: [ref] },
    ];
    for (const input of bad) {
      const error = await apple.associateAssets(token, input).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isVppdError(error) && error.code).toBe('badRequest');
    }
    expect(sim.requestCounts().alpha?.['POST assets/associate']).toBeUndefined();
    await apple.close();
  });

  it('retries a 503 on associate and on eventStatus, honouring Retry-After', async () => {
    const { apple, sleeps } = client();
    const token = sim.tokenFor('alpha');
    sim.faults.serverError('alpha', 1, { retryAfter: 2, endpoint: 'assets/associate' });
    sim.faults.serverError('alpha', 1, { retryAfter: 3, endpoint: 'assets/eventStatus' });
    const { eventId } = await apple.associateAssets(token, {
      assets: [{ adamId: 'unknown', pricingParam: 'STDQ' }],
      serialNumbers: ['R-1'],
    });
    let status = await apple.getAssetEventStatus(token, eventId);
    while (status.eventStatus === 'PENDING') status = await apple.getAssetEventStatus(token, eventId);
    expect(status.eventStatus).toBe('FAILED');
    expect(status.failures[0]).toMatchObject({ errorNumber: 9610, serialNumber: 'R-1' });
    expect(sleeps.filter((ms) => ms >= 2000).length).toBeGreaterThanOrEqual(2);
    expect(sim.requestCounts().alpha?.['POST assets/associate']).toBe(2);
    await apple.close();
  });
});
