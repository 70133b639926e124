import { afterAll, describe, expect, it } from 'vitest';
import { startAppleSim } from '../src/apple-sim/apple-sim.js';
import { assetManagementVerdict } from '../src/notifications/notification-processor.js';
import type { RunningServer } from '../src/server/start-server.js';
import type { NotificationRegistration } from '../src/storage/apple-notification-store.js';
import { createOperationClaims } from '../src/storage/license-operations/operation-claims.js';
import { tenantA } from './helpers/graph-test-app.js';
import { apiCaller, freePort, type Json, readWriteBearer, startServing, until } from './helpers/serving.js';
import { storageEngines, testDatabaseUrl } from './helpers/storage-engines.js';

// Apple's ASSET_MANAGEMENT notifications end license operations, on both engines, in a serving process
// (startServer with runSync) whose operation worker would first poll an event only after a minute: an
// operation that ends within the test ended by the notification, and the batch's poll count (0) and the
// simulator's request counts (no eventStatus call) prove it. A duplicate, an unknown eventId and a
// REVOKE change nothing; a poll racing the notification (and the notification's duplicate) ends the
// batch once.

const running: { close(): Promise<void> }[] = [];
afterAll(async () => {
  for (const r of running.reverse()) await r.close();
});

async function setUp(kind: (typeof storageEngines)[number], seed: string, withNotifications: boolean) {
  const sim = await startAppleSim({
    seed,
    locations: [
      { id: 'loc', name: 'Loc', orgName: 'Org', countryCode: 'US', assets: 12, assignments: 60, users: 20 },
    ],
    rateLimit: false,
    eventDelayMs: 50,
    notifications: { allowHttp: true, retryDelaysMs: [10, 10], duplicateEvery: 0 },
  });
  running.push(sim);
  const port = await freePort();
  const server = await startServing({
    sim,
    database: await testDatabaseUrl(kind),
    settings: {
      port: String(port),
      ...(withNotifications ? { publicUrl: `http://127.0.0.1:${port}` } : {}),
    },
    options: {
      notifications: { registrationTickMs: 30, processorPollMs: 30 },
      // The first poll of an event would come after a minute: anything sooner is the notification.
      licenseOperations: { firstPollMs: 60_000, pollIntervalMs: 60_000, idleMs: 50 },
    },
  });
  running.push(server);
  const call = apiCaller(() => server.url, await readWriteBearer());
  const created = await call('POST', '/beta/deviceAppManagement/vppTokens', { token: sim.tokenFor('loc') });
  expect(created.status).toBe(201);
  const tokenId = created.body.id as string;
  await until('the first sync', async () => {
    const t = await call('GET', `/beta/deviceAppManagement/vppTokens/${tokenId}`);
    return t.body.lastSyncStatus === 'completed' ? t : undefined;
  });
  const assets = (
    (await (
      await fetch(`${sim.baseUrl}/assets`, { headers: { authorization: `Bearer ${sim.tokenFor('loc')}` } })
    ).json()) as {
      assets: { adamId: string; pricingParam: string; deviceAssignable: boolean; availableCount: number }[];
    }
  ).assets;
  const app = assets.find((a) => a.deviceAssignable && a.availableCount >= 20)!;
  expect(app).toBeDefined();
  return { sim, server, call, tokenId, app };
}

async function batchesOf(server: RunningServer, operationId: string) {
  return server.context.db
    .withTables<{
      license_operation_batches: { operation_id: string; polls: number; status: string; event_id: string };
    }>()
    .selectFrom('license_operation_batches')
    .select(['polls', 'status', 'event_id'])
    .where('operation_id', '=', operationId)
    .execute();
}

async function outcomeOf(server: RunningServer, notificationId: string) {
  const row = await server.context.db
    .withTables<{ apple_notifications: { notification_id: string; outcome: string | null } }>()
    .selectFrom('apple_notifications')
    .select('outcome')
    .where('notification_id', '=', notificationId)
    .executeTakeFirst();
  return row?.outcome ?? undefined;
}

describe.each(storageEngines)('ASSET_MANAGEMENT ends license operations (%s)', (kind) => {
  it('ends an operation at once, without a poll, and applies duplicates and strangers not at all', async () => {
    const { sim, server, call, tokenId, app } = await setUp(kind, `am-${kind}`, true);
    await until('the registration at Apple', async () => {
      const s = await call('GET', `/vppd/v1/tokens/${tokenId}/notifications`);
      return s.body.status === 'registered' ? s : undefined;
    });
    sim.resetRequestCounts();
    const asset = { adamId: app.adamId, pricingParam: app.pricingParam };
    const posted = await call('POST', `/vppd/v1/tokens/${tokenId}/associations`, {
      assets: [asset],
      serialNumbers: ['NOTIFIED0001', 'NOTIFIED0002', 'NOTIFIED0003'],
    });
    expect(posted.status).toBe(202);
    const operationId = posted.body.id as string;
    const done = await until('the operation to end', async () => {
      const op = await call('GET', `/vppd/v1/operations/${operationId}`);
      return op.body.status === 'completed' ? op.body : undefined;
    });
    expect(done).toMatchObject({ completedCount: 3, failedCount: 0, snapshotUpdate: 'incremental' });
    const [batch] = await batchesOf(server, operationId);
    expect(batch).toMatchObject({ polls: 0, status: 'completed' });
    expect(sim.requestCounts().loc?.['GET assets/eventStatus']).toBeUndefined();
    const sent = sim.notifications().find((n) => n.notificationType === 'ASSET_MANAGEMENT')!;
    expect(sent.notification).toMatchObject({
      eventId: batch!.event_id,
      type: 'ASSOCIATE',
      result: 'SUCCESS',
    });
    expect(await outcomeOf(server, sent.notificationId)).toBe(
      `applied: ended batch 0 of operation ${operationId}`,
    );
    // The snapshot followed: the three serials hold the app now.
    const holders = await server.context.licenseReads.snapshotHolders(tenantA, tokenId);
    expect(holders?.serialNumbers.has('NOTIFIED0001')).toBe(true);

    // A FAILURE: Apple's error number reaches each failed item.
    sim.faults.add('loc', {
      type: 'eventFailure',
      count: 1,
      endpoint: 'assets/associate',
      errorNumber: 9616,
      errorMessage: 'Not enough licenses',
      serialNumbers: ['NOTIFIED0005'],
    });
    const failing = await call('POST', `/vppd/v1/tokens/${tokenId}/associations`, {
      assets: [asset],
      serialNumbers: ['NOTIFIED0004', 'NOTIFIED0005'],
    });
    const partly = await until('the partly failed operation', async () => {
      const op = await call('GET', `/vppd/v1/operations/${failing.body.id as string}`);
      return op.body.status === 'partiallyFailed' ? op.body : undefined;
    });
    expect(partly).toMatchObject({ completedCount: 1, failedCount: 1 });
    expect(partly.failures).toEqual([
      expect.objectContaining({ serialNumber: 'NOTIFIED0005', errorNumber: 9616 }),
    ]);
    expect((await batchesOf(server, failing.body.id as string))[0]?.polls).toBe(0);

    // The same notification again, an unknown eventId and a REVOKE: acknowledged, nothing moves.
    const config = (await (
      await fetch(`${sim.baseUrl}/client/config`, {
        headers: { authorization: `Bearer ${sim.tokenFor('loc')}` },
      })
    ).json()) as Json;
    const deliver = async (notificationId: string, notification: Json) =>
      (
        await fetch(config.notificationUrl as string, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${config.notificationAuthToken as string}`,
            'content-type': 'application/json',
          },
          body: JSON.stringify({
            notificationId,
            notificationType: 'ASSET_MANAGEMENT',
            uId: config.uId,
            notification,
          }),
        })
      ).status;
    expect(await deliver(sent.notificationId, { ...sent.notification, result: 'FAILURE' })).toBe(204);
    expect(await deliver('stranger', { eventId: 'not-ours', type: 'ASSOCIATE', result: 'SUCCESS' })).toBe(
      204,
    );
    expect(await deliver('revoke', { eventId: batch!.event_id, type: 'REVOKE', result: 'SUCCESS' })).toBe(
      204,
    );
    expect(await until('the stranger processed', () => outcomeOf(server, 'stranger'))).toBe(
      'ignored: no license operation of this token is waiting for event not-ours',
    );
    expect(await until('the revoke processed', () => outcomeOf(server, 'revoke'))).toBe(
      'ignored: REVOKE events are followed by the revoke action',
    );
    expect((await call('GET', `/vppd/v1/operations/${operationId}`)).body).toMatchObject({
      status: 'completed',
      completedCount: 3,
      failedCount: 0,
    });
  }, 60_000);

  it('ends a batch once when its poll, the notification and a duplicate of it race', async () => {
    // No public URL: nothing is delivered by the simulator; the test stores the notifications itself.
    const { server, call, tokenId, app } = await setUp(kind, `am-race-${kind}`, false);
    const store = server.context.notifications.store;
    const claims = createOperationClaims({ storage: server.context.storage });
    const registration: NotificationRegistration = {
      id: 'race',
      tenantId: tenantA,
      tokenId,
      locationUid: 'loc',
      authTokenHash: '',
      status: 'registered',
    };
    for (let round = 0; round < 3; round++) {
      const holders = [`RACE${round}A`, `RACE${round}B`];
      const posted = await call('POST', `/vppd/v1/tokens/${tokenId}/associations`, {
        assets: [{ adamId: app.adamId, pricingParam: app.pricingParam }],
        serialNumbers: holders,
      });
      const operationId = posted.body.id as string;
      const eventId = await until('the submitted batch', async () => {
        const [b] = await batchesOf(server, operationId);
        return b?.status === 'submitted' && b.event_id !== null ? b.event_id : undefined;
      });
      // This test takes the worker's place: it holds the lease, as a worker polling the event would.
      const later = new Date(Date.now() + 120_000);
      const claim = await until('the operation’s lease', async () =>
        claims.claimDue(`racer-${round}`, later, 60_000),
      );
      expect(claim.operation.id).toBe(operationId);
      const notification = { eventId, type: 'ASSOCIATE', result: 'SUCCESS' };
      for (const id of [`race-${round}`, `race-${round}-again`]) {
        await store.recordNotification(
          registration,
          { notificationId: id, notificationType: 'ASSET_MANAGEMENT', payload: notification },
          new Date(),
        );
      }
      const pending = (await store.pendingNotifications(100)).filter((p) =>
        p.notificationId.startsWith(`race-${round}`),
      );
      expect(pending).toHaveLength(2);
      const apply = (p: (typeof pending)[number]) =>
        store.applyAssetManagement(
          p,
          eventId,
          (batch) =>
            assetManagementVerdict(
              { eventId, type: 'ASSOCIATE', result: 'SUCCESS', error: undefined, assignments: undefined },
              batch,
            ),
          new Date(),
        );
      const [polled, first, again, firstTwice] = await Promise.all([
        claims.recordOutcome(claim, 0, { completed: 2, failures: [] }, new Date()),
        apply(pending[0]!),
        apply(pending[1]!),
        apply(pending[0]!),
      ]);
      expect(polled).toBe(true);
      // The server's own processor drains the same rows meanwhile (a second process, in effect): at
      // most one call processes each notification, and at most one of all ends the batch.
      const ended = [first, again, firstTwice].filter((r) => r.kind === 'ended').length;
      expect(ended).toBeLessThanOrEqual(1);
      expect([first, firstTwice].filter((r) => r.kind !== 'duplicate').length).toBeLessThanOrEqual(1);
      for (const p of pending) {
        expect(await until('the notification processed', () => outcomeOf(server, p.notificationId))).toMatch(
          /^(applied: ended batch 0|ignored: batch 0 of operation .* had already ended)/,
        );
      }
      await claims.release(claim, new Date(), new Date());
      const done = await until('the operation to end', async () => {
        const op = await call('GET', `/vppd/v1/operations/${operationId}`);
        return op.body.status === 'completed' ? op.body : undefined;
      });
      expect(done).toMatchObject({ requestedCount: 2, completedCount: 2, failedCount: 0 });
    }
  }, 60_000);
});
