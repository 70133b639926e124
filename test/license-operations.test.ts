import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppleAsset } from '../src/apple/apple-types.js';
import type { LocationSeed } from '../src/apple-sim/apple-sim.js';
import { createLicenseOperationService } from '../src/sync/license-operations.js';
import { storageEngines, testDatabaseUrl } from './helpers/storage-engines.js';
import {
  allRecords,
  type SurfaceFixture,
  startSurfaceFixture,
  surfaceTenantA,
} from './helpers/vpp-surface-fixture.js';

// License operations end to end: vppd over HTTP, the real worker, the Apple simulator over HTTP, on both
// storage engines. The fixture's clock is driven by hand, so Apple's poll spacing (30 s) costs nothing.

type Json = Record<string, unknown>;

const fleet: LocationSeed = {
  id: 'fleet',
  name: 'Fleet',
  orgName: 'Fleet Org',
  countryCode: 'US',
  assets: 40,
  assignments: 400,
  users: 50,
};
const spare: LocationSeed = { ...fleet, id: 'spare', name: 'Spare', assets: 6, assignments: 20, users: 10 };

const serials = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(6, '0')}`);

describe.each(storageEngines)('license operations on %s', (engine) => {
  let f: SurfaceFixture;
  let tokenId: string;
  let apps: AppleAsset[];
  const hooks: string[] = [];

  const opsPath = '/vppd/v1/operations';
  const assocPath = (id: string) => `/vppd/v1/tokens/${id}/associations`;
  const disassocPath = (id: string) => `/vppd/v1/tokens/${id}/disassociations`;

  /** Runs the worker, moving the clock by Apple's poll spacing, until the operation has ended. */
  const runToEnd = async (operationId: string, service = f.context.licenseOperations): Promise<Json> => {
    for (let round = 0; round < 40; round++) {
      while (await service.runOnce()) {
        // every due step done
      }
      const got = await f.call('GET', `${opsPath}/${operationId}`, f.auth.a);
      const op = got.body as Json;
      if (!['pending', 'running'].includes(op.status as string)) return op;
      f.clock.advance(30_000);
    }
    throw new Error(`operation ${operationId} did not end`);
  };

  const graphApp = async (asset: AppleAsset): Promise<Json> => {
    const list = await f.call(
      'GET',
      `/beta/deviceAppManagement/mobileApps?$filter=vppTokenId eq '${tokenId}'&$top=999`,
      f.auth.a,
    );
    const found = (list.body as { value: Json[] }).value.find(
      (a) => a.appStoreUrl === `https://apps.apple.com/us/app/id${asset.adamId}`,
    );
    if (found === undefined) throw new Error(`no app ${asset.adamId}`);
    return found;
  };

  const appleAsset = async (asset: AppleAsset): Promise<AppleAsset> => {
    const records = await allRecords(
      f.appleTruth.assets(f.sim.tokenFor('fleet'), {
        adamId: asset.adamId,
        pricingParam: asset.pricingParam,
      }),
    );
    return records[0]!;
  };

  /** Every (asset, holder) of the token's snapshot against Apple's truth, as sorted keys. */
  const snapshotMatchesApple = async () => {
    const snapshot = await f.context.licenseReads.snapshotHolders(surfaceTenantA, tokenId);
    const truth = await allRecords(f.appleTruth.assignments(f.sim.tokenFor('fleet')));
    const appleSerials = new Map<string, number>();
    for (const a of truth) {
      if (a.serialNumber !== undefined)
        appleSerials.set(a.serialNumber, (appleSerials.get(a.serialNumber) ?? 0) + 1);
    }
    const ours = new Map([...(snapshot?.serialNumbers ?? new Map<string, number>())].map(([k]) => [k, 0]));
    for (const k of appleSerials.keys()) expect(ours.has(k), `snapshot lacks ${k}`).toBe(true);
    for (const k of ours.keys()) expect(appleSerials.has(k), `snapshot has extra ${k}`).toBe(true);
    return snapshot;
  };

  beforeAll(async () => {
    f = await startSurfaceFixture({
      database: await testDatabaseUrl(engine),
      sim: { seed: 'licops', locations: [fleet, spare] },
    });
    tokenId = await f.upload(f.auth.a, 'fleet');
    await f.syncFromSim(surfaceTenantA, tokenId);
    const assets = await allRecords(f.appleTruth.assets(f.sim.tokenFor('fleet'), { deviceAssignable: true }));
    apps = assets.filter((a) => a.productType === 'App' && a.availableCount >= 5000).slice(0, 3);
    expect(apps).toHaveLength(3);
    // Two alert endpoints: one with the default events, one that opted in to operation alerts.
    for (const events of [undefined, ['operationFailed', 'operationCompleted']]) {
      const hook = await f.call('POST', '/vppd/v1/alerts/webhooks', f.auth.a, {
        url: 'https://93.184.215.14/vppd-alerts',
        ...(events === undefined ? {} : { events }),
      });
      expect(hook.status, hook.text).toBe(201);
      hooks.push((hook.body as Json).id as string);
    }
  });

  /** The operation alerts queued for an endpoint: `type:operationId`. */
  const queuedAlerts = async (webhookId: string) => {
    const rows = await f.context.db
      .withTables<{ alert_outbox: { webhook_id: string; event_id: string; payload: string } }>()
      .selectFrom('alert_outbox')
      .select(['event_id', 'payload'])
      .where('webhook_id', '=', webhookId)
      .execute();
    return rows.filter((r) => r.event_id.startsWith('operation'));
  };

  afterAll(async () => {
    await f?.close();
  });

  it('associates 2,500 serials across 3 apps in Apple-sized batches, once, even when retried', async () => {
    const before = await f.context.tokens.get(surfaceTenantA, tokenId);
    const graphBefore = await Promise.all(apps.map(graphApp));
    const body = {
      assets: apps.map((a) => ({ adamId: a.adamId, pricingParam: a.pricingParam })),
      serialNumbers: serials('BULK', 2500),
    };
    const headers = { 'idempotency-key': 'bulk-2500-a' };
    const post = () =>
      fetch(`${f.origin}${assocPath(tokenId)}`, {
        method: 'POST',
        headers: { authorization: f.auth.a, 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
    const first = await post();
    expect(first.status).toBe(202);
    const op = (await first.json()) as Json;
    expect(op).toMatchObject({
      status: 'pending',
      kind: 'associate',
      requestedCount: 7500,
      completedCount: 0,
    });
    expect(first.headers.get('location')).toBe(`${f.origin}${opsPath}/${op.id as string}`);
    // A retry with the same key answers the same operation and records nothing new.
    const retry = await post();
    expect(retry.status).toBe(202);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(((await retry.json()) as Json).id).toBe(op.id);
    // The same key for another request is refused.
    const reused = await f.call('POST', assocPath(tokenId), f.auth.a, { ...body, serialNumbers: ['OTHER'] });
    expect(reused.status).toBe(202); // no key: a new operation is fine
    const conflict = await fetch(`${f.origin}${assocPath(tokenId)}`, {
      method: 'POST',
      headers: { authorization: f.auth.a, 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ ...body, serialNumbers: ['OTHER'] }),
    });
    expect(conflict.status).toBe(409);

    f.sim.resetRequestCounts();
    const done = await runToEnd(op.id as string);
    await runToEnd((reused.body as Json).id as string);
    expect(done).toMatchObject({
      status: 'completed',
      requestedCount: 7500,
      completedCount: 7500,
      failedCount: 0,
      failures: [],
      snapshotUpdate: 'incremental',
    });
    // 3 assets ≤ maxAssets 25, 2,500 serials in batches of ≤ 1,000: 3 calls, plus 1 for the other operation.
    expect(f.sim.requestCounts().fleet?.['POST assets/associate']).toBe(4);
    for (const [i, asset] of apps.entries()) {
      const truth = await appleAsset(asset);
      expect(truth.assignedCount).toBe(asset.assignedCount + 2501);
      // Graph's iosVppApp follows without a sync.
      const app = await graphApp(asset);
      expect(app.usedLicenseCount).toBe(truth.assignedCount);
      expect(app.usedLicenseCount).toBe((graphBefore[i]!.usedLicenseCount as number) + 2501);
      expect(app.totalLicenseCount).toBe(truth.totalCount);
    }
    const snapshot = await snapshotMatchesApple();
    expect(snapshot?.serialNumbers.has('BULK002499')).toBe(true);
    // An operation is not a sync.
    const after = await f.context.tokens.get(surfaceTenantA, tokenId);
    expect(after?.lastSyncStatus).toBe('completed');
    expect(after?.lastSyncDateTime).toEqual(before?.lastSyncDateTime);
  });

  it('surfaces per-item failures with Apple’s numbers and keeps the snapshot exact', async () => {
    const asset = apps[0]!;
    const ref = { adamId: asset.adamId, pricingParam: asset.pricingParam };
    f.sim.faults.add('fleet', {
      type: 'eventFailure',
      count: 1,
      errorNumber: 9716,
      errorMessage: 'Device not eligible',
      serialNumbers: ['BULK000001'],
      endpoint: 'assets/disassociate',
    });
    const post = await f.call('POST', disassocPath(tokenId), f.auth.a, {
      assets: [ref],
      serialNumbers: ['BULK000000', 'BULK000001', 'NEVER-HELD'],
    });
    expect(post.status).toBe(202);
    const done = await runToEnd((post.body as Json).id as string);
    expect(done).toMatchObject({
      status: 'partiallyFailed',
      requestedCount: 3,
      completedCount: 1,
      failedCount: 2,
    });
    const failures = done.failures as Json[];
    expect(failures).toEqual(
      expect.arrayContaining([
        { ...ref, serialNumber: 'BULK000001', errorNumber: 9716, errorMessage: 'Device not eligible' },
        { ...ref, serialNumber: 'NEVER-HELD', errorNumber: 9610, errorMessage: 'License not found' },
      ]),
    );
    const truth = await appleAsset(asset);
    expect((await graphApp(asset)).usedLicenseCount).toBe(truth.assignedCount);
    // Metrics by outcome and Apple error number.
    const metrics = await f.context.metrics.registry.metrics();
    expect(metrics).toContain(
      'vppd_license_operations_total{kind="disassociate",outcome="partiallyFailed"} 1',
    );
    expect(metrics).toContain(
      'vppd_license_operation_failures_total{kind="disassociate",error_number="9716"} 1',
    );
    expect(metrics).toContain(
      'vppd_license_operation_failures_total{kind="disassociate",error_number="9610"} 1',
    );
    expect(metrics).toMatch(/vppd_license_operation_items_total\{kind="associate",result="completed"\} \d+/);
    // The opted-in endpoint got operationFailed with Apple's numbers; the default one got no operation alert.
    const queued = await queuedAlerts(hooks[1]!);
    const failedAlert = queued.find((r) => r.event_id === `operationFailed:${done.id as string}`);
    expect(JSON.parse(failedAlert!.payload)).toMatchObject({
      type: 'operationFailed',
      tokenId,
      data: { status: 'partiallyFailed', failedCount: 2, errorNumbers: { '9716': 1, '9610': 1 } },
    });
    expect(queued.some((r) => r.event_id.startsWith('operationCompleted:'))).toBe(true);
    expect(await queuedAlerts(hooks[0]!)).toEqual([]);
    const snapshot = await snapshotMatchesApple();
    // BULK000000 still holds the two other apps' licenses; the disassociated one is gone from this app.
    const held = await allRecords(
      f.appleTruth.assignments(f.sim.tokenFor('fleet'), { adamId: asset.adamId, serialNumber: 'BULK000000' }),
    );
    expect(held).toEqual([]);
    expect(snapshot?.serialNumbers.get('BULK000001')).toBeGreaterThan(0);
  });

  it('fails an operation Apple refuses, says why, and leaves the snapshot as Apple has it', async () => {
    const asset = apps[0]!;
    f.sim.faults.errorInBody('fleet', 9602, 1, 'assets/disassociate');
    const post = await f.call('POST', disassocPath(tokenId), f.auth.a, {
      assets: [{ adamId: asset.adamId, pricingParam: asset.pricingParam }],
      serialNumbers: ['BULK000002', 'BULK000003'],
    });
    const done = await runToEnd((post.body as Json).id as string);
    expect(done).toMatchObject({ status: 'failed', completedCount: 0, failedCount: 2, failures: [] });
    expect(done.errorMessage).toMatch(/Apple refused the disassociate call: .*9602/);
    const held = await allRecords(
      f.appleTruth.assignments(f.sim.tokenFor('fleet'), { adamId: asset.adamId, serialNumber: 'BULK000002' }),
    );
    expect(held).toHaveLength(1);
    await snapshotMatchesApple();
    // Per app: the snapshot still lists BULK000002 as a holder of this app.
    const listed: string[] = [];
    let next: string | undefined = `/vppd/v1/tokens/${tokenId}/licenses?adamId=${asset.adamId}&top=1000`;
    while (next !== undefined) {
      const body = (await f.call('GET', next, f.auth.a)).body as {
        value: { serialNumber?: string }[];
        nextLink?: string;
      };
      listed.push(...body.value.map((v) => v.serialNumber ?? ''));
      next = body.nextLink?.slice(f.origin.length);
    }
    expect(listed).toContain('BULK000002');
    expect(listed).not.toContain('BULK000000');
  });

  it('resubmits a batch Apple leaves PENDING for 10 minutes, polling no more often than every 30 s', async () => {
    const asset = apps[1]!;
    f.sim.faults.add('fleet', { type: 'eventPending', count: 1, endpoint: 'assets/associate' });
    f.sim.resetRequestCounts();
    const post = await f.call('POST', assocPath(tokenId), f.auth.a, {
      assets: [{ adamId: asset.adamId, pricingParam: asset.pricingParam }],
      serialNumbers: ['SLOW-1'],
    });
    const id = (post.body as Json).id as string;
    // 10 minutes of polls at Apple's 30 s spacing: about 20 polls, never more.
    for (let t = 0; t < 10 * 60_000; t += 10_000) {
      while (await f.context.licenseOperations.runOnce()) {
        // due steps
      }
      f.clock.advance(10_000);
    }
    const polls = f.sim.requestCounts().fleet?.['GET assets/eventStatus'] ?? 0;
    expect(polls).toBeGreaterThanOrEqual(18);
    expect(polls).toBeLessThanOrEqual(21);
    const done = await runToEnd(id);
    expect(done.status).toBe('completed');
    expect(f.sim.requestCounts().fleet?.['POST assets/associate']).toBe(2);
  });

  it('is finished exactly once by another worker when the first one dies mid-operation', async () => {
    const asset = apps[2]!;
    const real = f.context.apple;
    let calls = 0;
    // Worker A goes through the real client until its second Apple call, which never returns: the
    // process is gone while it holds the lease.
    const dying = createLicenseOperationService({
      storage: f.context.storage,
      tokens: f.context.tokens,
      apple: {
        associationLimits: (o) => real.associationLimits(o),
        associateAssets: (t, i, o) => (++calls === 2 ? new Promise(() => {}) : real.associateAssets(t, i, o)),
        disassociateAssets: (t, i, o) => real.disassociateAssets(t, i, o),
        getAssetEventStatus: (t, e, o) => real.getAssetEventStatus(t, e, o),
        assets: (t, fl, o) => real.assets(t, fl, o),
        assignments: (t, fl, o) => real.assignments(t, fl, o),
      },
      clock: f.clock.now,
      newId: f.context.newId,
      logger: pino({ level: 'silent' }),
      workerId: 'worker-a',
      requestFullSync: async () => {},
    });
    const before = await appleAsset(asset);
    f.sim.resetRequestCounts();
    const post = await f.call('POST', assocPath(tokenId), f.auth.a, {
      assets: [{ adamId: asset.adamId, pricingParam: asset.pricingParam }],
      serialNumbers: serials('KILL', 2500),
    });
    const id = (post.body as Json).id as string;
    void dying.runOnce();
    // Wait (on conditions, not time) until A has submitted its first batch and hangs in the second.
    for (let i = 0; i < 500 && calls < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(calls).toBe(2);
    expect((await f.call('GET', `${opsPath}/${id}`, f.auth.a)).body).toMatchObject({ status: 'running' });
    // B cannot take it while A's lease runs; after the lease expired it finishes the work.
    expect(await f.context.licenseOperations.runOnce()).toBe(false);
    f.clock.advance(31_000);
    const done = await runToEnd(id);
    expect(done).toMatchObject({ status: 'completed', completedCount: 2500, failedCount: 0 });
    // Batch 1 (A's) was polled, not sent again: 3 calls in all for 3 batches.
    expect(f.sim.requestCounts().fleet?.['POST assets/associate']).toBe(3);
    expect((await appleAsset(asset)).assignedCount).toBe(before.assignedCount + 2500);
    expect((await graphApp(asset)).usedLicenseCount).toBe(before.assignedCount + 2500);
  });

  it('reclaims: the dry run plans exactly what the real run releases', async () => {
    const asset = apps[2]!;
    const scope = [{ adamId: asset.adamId, pricingParam: asset.pricingParam }];
    const keep = serials('KILL', 2500).filter((_, i) => i % 10 === 0);
    const path = `/vppd/v1/tokens/${tokenId}/reclaim`;
    const dry = await f.call('POST', path, f.auth.a, { keepSerialNumbers: keep, apps: scope, dryRun: true });
    expect(dry.status).toBe(200);
    const plan = dry.body as { releaseCount: number; operations: Json[]; apps: Json[] };
    expect(plan.operations).toEqual([]);
    expect(plan.apps).toHaveLength(1);
    const before = await appleAsset(asset);
    expect(plan.apps[0]).toMatchObject({ heldCount: before.assignedCount, keptCount: 250 });
    expect(plan.releaseCount).toBe(before.assignedCount - 250);
    // The dry run changed nothing.
    expect((await appleAsset(asset)).assignedCount).toBe(before.assignedCount);

    const real = await f.call('POST', path, f.auth.a, { keepSerialNumbers: keep, apps: scope });
    expect(real.status).toBe(202);
    const run = real.body as { releaseCount: number; operations: Json[]; apps: Json[] };
    expect(run.apps).toEqual(plan.apps);
    let released = 0;
    for (const op of run.operations) {
      expect(op).toMatchObject({ kind: 'disassociate', source: 'reclaim', status: 'pending' });
      const done = await runToEnd(op.id as string);
      expect(done.status).toBe('completed');
      released += done.completedCount as number;
    }
    expect(released).toBe(plan.releaseCount);
    const after = await appleAsset(asset);
    expect(after.assignedCount).toBe(250);
    expect((await graphApp(asset)).usedLicenseCount).toBe(250);
    const holders = await allRecords(
      f.appleTruth.assignments(f.sim.tokenFor('fleet'), { adamId: asset.adamId }),
    );
    expect(new Set(holders.map((h) => h.serialNumber))).toEqual(new Set(keep));
    await snapshotMatchesApple();
    // The holders, paged, as vppd's licenses route lists them.
    const listed: string[] = [];
    let next: string | undefined = `/vppd/v1/tokens/${tokenId}/licenses?adamId=${asset.adamId}&top=100`;
    let pages = 0;
    while (next !== undefined) {
      const page = await f.call('GET', next, f.auth.aReadOnly);
      expect(page.status, page.text).toBe(200);
      const body = page.body as { count: number; value: { serialNumber?: string }[]; nextLink?: string };
      expect(body.count).toBe(250);
      listed.push(...body.value.map((v) => v.serialNumber ?? ''));
      next = body.nextLink?.slice(f.origin.length);
      pages += 1;
    }
    expect(pages).toBe(3);
    expect(new Set(listed)).toEqual(new Set(keep));
    expect(listed).toHaveLength(250);
    // The same holders by Graph's id of the app (what the dashboard has), which names the pricing param too.
    const appId = (await graphApp(asset)).id as string;
    const byAppId = await f.call(
      'GET',
      `/vppd/v1/tokens/${tokenId}/licenses?appId=${appId}&top=1000`,
      f.auth.aReadOnly,
    );
    expect(byAppId.status, byAppId.text).toBe(200);
    const byApp = byAppId.body as { adamId: string; pricingParam: string; count: number; value: Json[] };
    expect(byApp).toMatchObject({ adamId: asset.adamId, pricingParam: asset.pricingParam, count: 250 });
    expect(new Set(byApp.value.map((v) => v.serialNumber))).toEqual(new Set(keep));
    const unknownApp = await f.call(
      'GET',
      `/vppd/v1/tokens/${tokenId}/licenses?appId=00000000-0000-5000-8000-000000000000`,
      f.auth.a,
    );
    expect(unknownApp.status).toBe(404);
    const both = await f.call(
      'GET',
      `/vppd/v1/tokens/${tokenId}/licenses?appId=${appId}&adamId=${asset.adamId}`,
      f.auth.a,
    );
    expect(both.status).toBe(400);
    expect((both.body as { error: { message: string } }).error.message).toContain(
      "either 'appId' or 'adamId'",
    );
    expect(
      (await f.call('GET', `/vppd/v1/tokens/${tokenId}/licenses?adamId=${asset.adamId}`, f.auth.b)).status,
    ).toBe(404);
    expect((await f.call('GET', `/vppd/v1/tokens/${tokenId}/licenses`, f.auth.a)).status).toBe(400);
    // Nothing is left to release.
    const again = await f.call('POST', path, f.auth.a, {
      keepSerialNumbers: keep,
      apps: scope,
      dryRun: true,
    });
    expect((again.body as Json).releaseCount).toBe(0);
    // Bad input, other tenants and read-only callers change nothing.
    expect((await f.call('POST', path, f.auth.a, { apps: scope })).status).toBe(400);
    expect((await f.call('POST', path, f.auth.a, { keepSerialNumbers: 'A' })).status).toBe(400);
    expect((await f.call('POST', path, f.auth.a, { keepSerialNumbers: [], dryRun: 'yes' })).status).toBe(400);
    expect((await f.call('POST', path, f.auth.b, { keepSerialNumbers: [], dryRun: true })).status).toBe(404);
    expect(
      (await f.call('POST', path, f.auth.aReadOnly, { keepSerialNumbers: [], dryRun: true })).status,
    ).toBe(403);
    expect((await appleAsset(asset)).assignedCount).toBe(250);
  });

  it('refuses bad requests with a clear error and records nothing', async () => {
    const ref = { adamId: apps[0]!.adamId, pricingParam: 'STDQ' };
    const bad: [unknown, RegExp][] = [
      [[], /JSON object/],
      [{ assets: [ref] }, /exactly one of/],
      [{ assets: [ref], serialNumbers: ['A'], clientUserIds: ['B'] }, /exactly one of/],
      [{ assets: [], serialNumbers: ['A'] }, /non-empty list/],
      [{ assets: [{ adamId: 'abc' }], serialNumbers: ['A'] }, /numeric id/],
      [{ assets: [{ adamId: '1', pricingParam: 'FREE' }], serialNumbers: ['A'] }, /STDQ or PLUS/],
      [{ assets: [ref], serialNumbers: [''] }, /non-empty string/],
      [{ assets: [ref], serialNumbers: ['A'], extra: 1 }, /Unknown property 'extra'/],
    ];
    const listBefore = (await f.call('GET', `${opsPath}?top=200`, f.auth.a)).body as { value: Json[] };
    for (const [body, message] of bad) {
      const answer = await f.call('POST', assocPath(tokenId), f.auth.a, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect((answer.body as { error: { message: string } }).error.message).toMatch(message);
    }
    const badKey = await fetch(`${f.origin}${assocPath(tokenId)}`, {
      method: 'POST',
      headers: {
        authorization: f.auth.a,
        'content-type': 'application/json',
        'idempotency-key': 'has space',
      },
      body: JSON.stringify({ assets: [ref], serialNumbers: ['A'] }),
    });
    expect(badKey.status).toBe(400);
    // A token that is not valid (uploaded, never synced: state unknown) refuses with 409 and the reason.
    const unsynced = await f.upload(f.auth.a, 'spare');
    const refused = await f.call('POST', assocPath(unsynced), f.auth.a, {
      assets: [ref],
      serialNumbers: ['A'],
    });
    expect(refused.status).toBe(409);
    expect((refused.body as { error: { message: string } }).error.message).toMatch(/state is 'unknown'/);
    const listAfter = (await f.call('GET', `${opsPath}?top=200`, f.auth.a)).body as { value: Json[] };
    expect(listAfter.value.length).toBe(listBefore.value.length);
    expect((await f.call('GET', `${opsPath}/not-an-operation`, f.auth.a)).status).toBe(404);
    expect((await f.call('GET', `${opsPath}?top=0`, f.auth.a)).status).toBe(400);
  });

  it('keeps operations inside their tenant and needs the write permission to start one', async () => {
    const ref = { adamId: apps[0]!.adamId, pricingParam: 'STDQ' };
    const list = (await f.call('GET', `${opsPath}?tokenId=${tokenId}&top=2`, f.auth.a)).body as {
      value: Json[];
      nextLink?: string;
    };
    expect(list.value).toHaveLength(2);
    expect(list.nextLink).toBeDefined();
    const next = await f.call('GET', list.nextLink!.slice(f.origin.length), f.auth.a);
    const nextIds = (next.body as { value: Json[] }).value.map((o) => o.id);
    expect(nextIds).not.toContain(list.value[0]!.id);
    const someId = list.value[0]!.id as string;
    // Tenant B sees none of A's operations and cannot act on A's token.
    expect((await f.call('GET', `${opsPath}/${someId}`, f.auth.b)).status).toBe(404);
    expect(((await f.call('GET', opsPath, f.auth.b)).body as { value: Json[] }).value).toEqual([]);
    const cross = await f.call('POST', assocPath(tokenId), f.auth.b, { assets: [ref], serialNumbers: ['X'] });
    expect(cross.status).toBe(404);
    const crossOut = await f.call('POST', disassocPath(tokenId), f.auth.b, {
      assets: [ref],
      serialNumbers: ['X'],
    });
    expect(crossOut.status).toBe(404);
    // Read permission reads, but does not start operations.
    expect((await f.call('GET', `${opsPath}/${someId}`, f.auth.aReadOnly)).status).toBe(200);
    expect(
      (await f.call('POST', assocPath(tokenId), f.auth.aReadOnly, { assets: [ref], serialNumbers: ['X'] }))
        .status,
    ).toBe(403);
    expect(
      (await f.call('POST', disassocPath(tokenId), f.auth.aReadOnly, { assets: [ref], serialNumbers: ['X'] }))
        .status,
    ).toBe(403);
    expect((await f.call('GET', opsPath, '')).status).toBe(401);
  });
});
