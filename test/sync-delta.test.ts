import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AppleAsset } from '../src/apple/apple-types.js';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { formatGraphDateTime } from '../src/domain/graph-date-time.js';
import { createSnapshotReads } from '../src/storage/snapshot-reads.js';
import { tenantA } from './helpers/graph-test-app.js';
import { currentSnapshot, listAssets, listAssignments } from './helpers/license-snapshot-sql.js';
import { storageEngines, testDatabaseUrl } from './helpers/storage-engines.js';
import { assignmentKey, createSyncHarness, readAllPages, type SyncHarness } from './helpers/sync-harness.js';

// Delta syncs end to end: a `delta` job → the worker → Apple's assignments delta, assets and, where the
// counts do not add up, one app's assignments → one transaction patching the current snapshot. Apple's
// data is changed through Apple's own API (associate / disassociate on the simulator), as another MDM
// would; every outcome is compared with a full read of the simulator.

describe.each(storageEngines)('delta syncs on %s', (engine) => {
  let sim: AppleSim;
  let h: SyncHarness;

  beforeAll(async () => {
    sim = await startAppleSim({ seed: 'sync-delta', rateLimit: false, pageSize: 100, eventPolls: 0 });
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(async () => {
    sim.reset();
    h = await createSyncHarness({ sharedSim: sim, database: await testDatabaseUrl(engine) });
  });
  afterEach(async () => {
    await h.close();
  });

  const sToken = () => sim.tokenFor('small');

  async function storedAssignments(tokenId: string): Promise<string[]> {
    const out: string[] = [];
    let afterSeq: number | undefined;
    for (;;) {
      const page = await listAssignments(h.context.db, tenantA, tokenId, {
        limit: 1000,
        ...(afterSeq === undefined ? {} : { afterSeq }),
      });
      if (page.length === 0) return out;
      for (const a of page) out.push(assignmentKey(a));
      afterSeq = page[page.length - 1]?.seq;
    }
  }

  async function expectSnapshotEqualsApple(tokenId: string): Promise<void> {
    const assets = await readAllPages(sim, 'small', 'assets');
    const assignments = await readAllPages(sim, 'small', 'assignments');
    const storedAssets = await listAssets(h.context.db, tenantA, tokenId);
    const line = (a: Record<string, unknown> | AppleAsset) =>
      `${a.adamId}|${a.pricingParam}|${a.totalCount}|${a.assignedCount}|${a.availableCount}`;
    expect(storedAssets.map(line).sort()).toEqual(assets.records.map(line).sort());
    expect((await storedAssignments(tokenId)).sort()).toEqual(assignments.records.map(assignmentKey).sort());
    const snapshot = await currentSnapshot(h.context.db, tenantA, tokenId);
    expect(assignments.versionIds.size).toBe(1);
    expect(snapshot?.versionId).toBe([...assignments.versionIds][0]);
    expect(snapshot?.assignmentCount).toBe(assignments.records.length);
    expect(snapshot?.usedLicenseCount).toBe(assets.records.reduce((n, a) => n + Number(a.assignedCount), 0));
  }

  /** A token of location `small` after its first (full) sync. */
  async function syncedSmall() {
    const created = await h.upload('small');
    const tokenId = created.id as string;
    await h.syncNow();
    expect((await h.token(tokenId)).lastSyncStatus).toBe('completed');
    h.clock.advance(60_000);
    return { tokenId, snapshot: await currentSnapshot(h.context.db, tenantA, tokenId) };
  }

  /** A device-assignable asset of `small` with at least `free` licenses available. */
  async function assignableAsset(free: number): Promise<AppleAsset> {
    for await (const page of h.apple.assets(sToken())) {
      const asset = page.records.find((a) => a.deviceAssignable === true && a.availableCount >= free);
      if (asset) return asset;
    }
    throw new Error('no assignable asset');
  }

  /** Another MDM changes licenses at Apple: associate or disassociate, waited for until Apple completed it. */
  async function changeAtApple(
    kind: 'associate' | 'disassociate',
    asset: { adamId: string; pricingParam: string },
    serialNumbers: string[],
  ): Promise<void> {
    const input = { assets: [{ adamId: asset.adamId, pricingParam: asset.pricingParam }], serialNumbers };
    const { eventId } =
      kind === 'associate'
        ? await h.apple.associateAssets(sToken(), input)
        : await h.apple.disassociateAssets(sToken(), input);
    for (let i = 0; i < 20; i++) {
      const status = await h.apple.getAssetEventStatus(sToken(), eventId);
      if (status.eventStatus !== 'PENDING') {
        expect(status.eventStatus).toBe('COMPLETE');
        return;
      }
    }
    throw new Error('the event stayed PENDING');
  }

  const requestDelta = (tokenId: string) => h.context.sync.requestSync(tenantA, tokenId, 'api', 'delta');
  const runs = (tokenId: string) => h.context.sync.jobs.listRuns(tenantA, tokenId);
  const assignmentPages = () => sim.requestCounts().small?.['GET assignments'] ?? 0;
  const events = async (tokenId: string) =>
    (
      await h.context.db
        .selectFrom('events')
        .select(['type', 'payload'])
        .where('token_id', '=', tokenId)
        .orderBy('seq')
        .execute()
    ).map((e) => ({ type: e.type, payload: JSON.parse(e.payload) as Record<string, unknown> }));

  it('adds what Apple added, counts follow, the snapshot is patched in place with a new version', async () => {
    const { tokenId, snapshot: before } = await syncedSmall();
    const asset = await assignableAsset(5);
    const serials = ['DELTA0001', 'DELTA0002', 'DELTA0003'];
    await changeAtApple('associate', asset, serials);
    sim.resetRequestCounts();

    expect((await requestDelta(tokenId)).effect).toBe('started');
    expect((await h.token(tokenId)).lastSyncStatus).toBe('inProgress');
    h.clock.advance(5_000);
    await h.syncNow();
    // One page of delta, no full read of the 600 assignments (6 pages).
    expect(assignmentPages()).toBe(1);

    const token = await h.token(tokenId);
    expect(token).toMatchObject({
      lastSyncStatus: 'completed',
      state: 'valid',
      lastSyncDateTime: formatGraphDateTime(h.clock.now()),
    });
    expect(token.tokenActionResults).toEqual([
      expect.objectContaining({ actionName: 'syncLicenses', actionState: 'done' }),
    ]);
    await expectSnapshotEqualsApple(tokenId);
    const after = await currentSnapshot(h.context.db, tenantA, tokenId);
    expect(after?.runId).toBe(before?.runId);
    expect(after?.versionId).not.toBe(before?.versionId);
    expect(after?.assignmentCount).toBe((before?.assignmentCount ?? 0) + 3);
    const [run] = await runs(tokenId);
    expect(run).toMatchObject({ kind: 'delta', outcome: 'completed', versionId: after?.versionId });
    expect(run?.assignmentCount).toBe(after?.assignmentCount);
    const stored = await listAssets(h.context.db, tenantA, tokenId);
    const mine = stored.find((a) => a.adamId === asset.adamId && a.pricingParam === asset.pricingParam);
    expect(mine?.assignedCount).toBe(asset.assignedCount + 3);

    // The history API shows the kind.
    const history = await h.app.inject({
      method: 'GET',
      url: `/vppd/v1/tokens/${tokenId}/syncs`,
      headers: { authorization: h.auth },
    });
    expect(history.statusCode).toBe(200);
    const body = history.json() as { value?: { kind: string }[] };
    const kinds = (body.value ?? (history.json() as { kind: string }[])).map((r) => r.kind);
    expect(kinds.slice(0, 2)).toEqual(['delta', 'full']);
  });

  it('a zero-record delta completes with no change but a new lastSyncDateTime', async () => {
    const { tokenId, snapshot: before } = await syncedSmall();
    const keysBefore = await storedAssignments(tokenId);
    await requestDelta(tokenId);
    h.clock.advance(7_000);
    await h.syncNow();
    const token = await h.token(tokenId);
    expect(token.lastSyncStatus).toBe('completed');
    expect(token.lastSyncDateTime).toBe(formatGraphDateTime(h.clock.now()));
    expect(await storedAssignments(tokenId)).toEqual(keysBefore);
    const after = await currentSnapshot(h.context.db, tenantA, tokenId);
    expect(after).toMatchObject({
      runId: before?.runId,
      versionId: before?.versionId,
      assignmentCount: before?.assignmentCount,
    });
    expect((await runs(tokenId))[0]).toMatchObject({ kind: 'delta', outcome: 'completed' });
  });

  it('a license taken back shows only in the counts: that app is re-read alone and replaced', async () => {
    const { tokenId } = await syncedSmall();
    const asset = await assignableAsset(3);
    await changeAtApple('associate', asset, ['GONE0001', 'KEPT0001']);
    await requestDelta(tokenId);
    await h.syncNow();
    await changeAtApple('disassociate', asset, ['GONE0001']);
    const other = (await readAllPages(sim, 'small', 'assignments')).records.find(
      (a) => a.adamId !== asset.adamId && typeof a.serialNumber === 'string',
    );
    await changeAtApple(
      'disassociate',
      { adamId: String(other?.adamId), pricingParam: String(other?.pricingParam) },
      [String(other?.serialNumber)],
    );
    sim.resetRequestCounts();
    await requestDelta(tokenId);
    h.clock.advance(1_000);
    await h.syncNow();
    // The delta page, then one read per app whose counts did not add up: never the whole location.
    expect(assignmentPages()).toBe(3);

    await expectSnapshotEqualsApple(tokenId);
    const keys = await storedAssignments(tokenId);
    expect(keys).toContain(assignmentKey({ ...asset, serialNumber: 'KEPT0001' }));
    expect(keys).not.toContain(assignmentKey({ ...asset, serialNumber: 'GONE0001' }));
    expect((await runs(tokenId))[0]).toMatchObject({ kind: 'delta', outcome: 'completed' });
  });

  it("a license taken back after a counts refresh wrote Apple's lower count: the chunks still hold it, so the app is re-read", async () => {
    const { tokenId } = await syncedSmall();
    const holder = (await readAllPages(sim, 'small', 'assignments')).records.find(
      (a) => typeof a.serialNumber === 'string',
    );
    const asset = { adamId: String(holder?.adamId), pricingParam: String(holder?.pricingParam) };
    await changeAtApple('disassociate', asset, [String(holder?.serialNumber)]);
    // syncLicenseCounts: the asset row takes Apple's assignedCount, the chunks keep the holder.
    await h.context.sync.requestLicenseCounts(tenantA, tokenId);
    await h.syncNow();
    const base = await createSnapshotReads({ storage: h.context.storage }).base(tenantA, tokenId);
    if (base === undefined) throw new Error('no snapshot');
    const row = await h.context.db
      .selectFrom('license_assets')
      .select('assigned_count')
      .where('run_id', '=', base.runId)
      .where('adam_id', '=', asset.adamId)
      .where('pricing_param', '=', asset.pricingParam)
      .executeTakeFirstOrThrow();
    const apple = (await readAllPages(sim, 'small', 'assets')).records.find(
      (a) => a.adamId === asset.adamId && a.pricingParam === asset.pricingParam,
    );
    expect(Number(row.assigned_count)).toBe(Number(apple?.assignedCount));
    const gone = assignmentKey({ ...asset, serialNumber: String(holder?.serialNumber) });
    expect(await storedAssignments(tokenId)).toContain(gone);

    sim.resetRequestCounts();
    await requestDelta(tokenId);
    h.clock.advance(1_000);
    await h.syncNow();
    // Row and Apple agree, the chunks do not: the app is re-read (the delta page, then the app's page).
    expect(assignmentPages()).toBe(2);
    expect((await runs(tokenId))[0]).toMatchObject({ kind: 'delta', outcome: 'completed' });
    await expectSnapshotEqualsApple(tokenId);
    expect(await storedAssignments(tokenId)).not.toContain(gone);
  });

  it("asset rows read with the base are read again at the commit when the snapshot's sums moved meanwhile", async () => {
    const { tokenId, snapshot } = await syncedSmall();
    const { db } = h.context;
    const snapshots = createSnapshotReads({ storage: h.context.storage });
    await requestDelta(tokenId);
    const [claimed] = await h.context.sync.jobs.claimMany(
      {
        workerId: 'delta-test',
        now: h.clock.now(),
        leaseMs: 60_000,
        maxActive: 4,
        maxAttempts: 2,
        newRunId: () => 'delta-test-run',
      },
      1,
    );
    if (claimed?.kind !== 'claimed') throw new Error('no delta job to claim');
    // What the delta engine reads before asking Apple: the base and the snapshot's asset rows.
    const base = await snapshots.base(tenantA, tokenId);
    if (base === undefined) throw new Error('no snapshot');
    const storedAssets = await snapshots.assets(base.runId);
    const assets: AppleAsset[] = [];
    for await (const page of h.apple.assets(sToken())) assets.push(...page.records);
    // Meanwhile 5 licenses are bought for one app and applied to the snapshot, rows and sums, as an
    // ASSET_COUNT notification is: the rows read above no longer say what is stored.
    const bought = storedAssets[0];
    if (bought === undefined) throw new Error('no asset');
    await db
      .updateTable('license_assets')
      .set({
        total_count: Number(bought.total_count) + 5,
        available_count: Number(bought.available_count) + 5,
      })
      .where('run_id', '=', base.runId)
      .where('adam_id', '=', bought.adam_id)
      .where('pricing_param', '=', bought.pricing_param)
      .execute();
    await db
      .updateTable('license_snapshots')
      .set({
        total_license_count: (snapshot?.totalLicenseCount ?? 0) + 5,
        available_license_count: (snapshot?.availableLicenseCount ?? 0) + 5,
      })
      .where('token_id', '=', tokenId)
      .execute();

    // The delta read Apple's list before the purchase: the commit must not trust the rows read before,
    // or the stored app would keep counts Apple's list (which the snapshot now claims to be) does not have.
    await h.context.sync.jobs.commitDelta(
      claimed.claim,
      {
        base,
        locationUid: snapshot?.locationUid ?? '',
        locationName: 'small',
        countryOrRegion: null,
        expirationDateTime: undefined,
        versionId: base.versionId,
        assets,
        added: [],
        replaced: new Map(),
        pageCount: 1,
        storedAssets,
      },
      h.clock.now(),
      null,
    );
    await expectSnapshotEqualsApple(tokenId);
    expect(await currentSnapshot(db, tenantA, tokenId)).toMatchObject({
      totalLicenseCount: snapshot?.totalLicenseCount,
      availableLicenseCount: snapshot?.availableLicenseCount,
    });
  });

  it('another MDM claimed the location meanwhile: the delta read alongside client/config fails, nothing commits', async () => {
    const { tokenId, snapshot: before } = await syncedSmall();
    const keysBefore = await storedAssignments(tokenId);
    await changeAtApple('associate', await assignableAsset(2), ['DELTAMDM01', 'DELTAMDM02']);
    sim.faults.setMdmInfo('small', { id: 'rival-mdm', name: 'Rival MDM' });
    sim.resetRequestCounts();
    await requestDelta(tokenId);
    await h.syncNow();
    sim.faults.setMdmInfo('small', null);
    expect(await h.token(tokenId)).toMatchObject({
      lastSyncStatus: 'failed',
      state: 'assignedToExternalMDM',
    });
    const [run] = await runs(tokenId);
    expect(run).toMatchObject({ kind: 'delta', outcome: 'failed' });
    expect(run?.failure?.message).toMatch(/Rival MDM.*claimTokenManagementFromExternalMdm/);
    // vppd never wrote its mdmInfo, and the additions read alongside did not reach the snapshot.
    expect(sim.requestCounts().small?.['POST client/config']).toBeUndefined();
    expect(await storedAssignments(tokenId)).toEqual(keysBefore);
    expect(await currentSnapshot(h.context.db, tenantA, tokenId)).toMatchObject({
      runId: before?.runId,
      versionId: before?.versionId,
      assignmentCount: before?.assignmentCount,
    });
  });

  it('9721 (Apple no longer knows the version): the same run reads everything', async () => {
    const { tokenId, snapshot: before } = await syncedSmall();
    await changeAtApple('associate', await assignableAsset(1), ['NEWVER001']);
    sim.faults.errorInBody('small', 9721, 1, 'assignments');
    sim.resetRequestCounts();
    await requestDelta(tokenId);
    await h.syncNow();
    const pages = assignmentPages();

    const token = await h.token(tokenId);
    expect(token.lastSyncStatus).toBe('completed');
    await expectSnapshotEqualsApple(tokenId);
    const after = await currentSnapshot(h.context.db, tenantA, tokenId);
    expect(after?.runId).not.toBe(before?.runId);
    const [run] = await runs(tokenId);
    // One history row: the run of the delta job, recorded as the full sync it became.
    expect(run).toMatchObject({ kind: 'licenses', outcome: 'completed', trigger: 'api' });
    expect(after?.runId).toBe(run?.id);
    expect(sim.requestCounts().small?.['GET client/config']).toBe(1);
    // The refused delta, then all 7 pages of the 601 assignments.
    expect(pages).toBe(8);
  });

  it('no snapshot yet: a delta job runs as a full sync', async () => {
    const created = await h.upload('small', {}, 0);
    const tokenId = created.id as string;
    // The upload's own sync is still queued: a delta request coalesces with it.
    expect((await requestDelta(tokenId)).effect).toBe('coalesced');
    await h.syncNow();
    expect((await runs(tokenId))[0]).toMatchObject({ kind: 'licenses', outcome: 'completed' });
    await expectSnapshotEqualsApple(tokenId);
  });

  it("Apple's data moving mid-delta is read again, never committed as a mix", async () => {
    const { tokenId } = await syncedSmall();
    await changeAtApple('associate', await assignableAsset(2), ['MOVE0001']);
    // After the delta's only page the data changes (a license moves, one is added): the assets then
    // carry another versionId, so the delta is read again.
    sim.faults.changeDataAfterPage('small', 0, { endpoint: 'assignments' });
    await requestDelta(tokenId);
    await h.syncNow();
    expect((await h.token(tokenId)).lastSyncStatus).toBe('completed');
    await expectSnapshotEqualsApple(tokenId);
  });

  it('data that keeps moving: the delta gives up, the full read fails, the previous snapshot stays', async () => {
    const { tokenId, snapshot: before } = await syncedSmall();
    const completedAt = (await h.token(tokenId)).lastSyncDateTime;
    sim.faults.changeDataAfterPage('small', 0, { endpoint: 'assignments', times: 20 });
    await requestDelta(tokenId);
    await h.syncNow();
    sim.faults.clear('small');
    const token = await h.token(tokenId);
    expect(token.lastSyncStatus).toBe('failed');
    expect(token.lastSyncDateTime).toBe(completedAt);
    expect(await currentSnapshot(h.context.db, tenantA, tokenId)).toEqual(before);
    const [run] = await runs(tokenId);
    expect(run).toMatchObject({ kind: 'delta', outcome: 'failed' });
    expect(run?.failure?.kind).toBe('snapshotMoved');
  });

  it('lastSyncStatus and events follow a delta exactly as a full sync; a failed delta keeps the full schedule', async () => {
    const { tokenId } = await syncedSmall();
    const schedule = async () =>
      h.context.db.selectFrom('sync_schedule').selectAll().where('token_id', '=', tokenId).executeTakeFirst();
    const planned = await schedule();
    expect(planned?.next_delta_at).not.toBeNull();
    const seen = (await events(tokenId)).length;

    await requestDelta(tokenId);
    expect((await h.token(tokenId)).lastSyncStatus).toBe('inProgress');
    await h.syncNow();
    expect((await h.token(tokenId)).lastSyncStatus).toBe('completed');
    const delta = (await events(tokenId)).slice(seen).filter((e) => e.type !== 'syncProgressed');
    expect(delta.map((e) => e.type)).toEqual(['syncRequested', 'syncStarted', 'syncCompleted']);
    expect(delta.every((e) => e.payload.kind === 'delta')).toBe(true);

    h.clock.advance(60_000);
    sim.faults.setTokenState('small', 'revoked');
    await requestDelta(tokenId);
    expect((await h.token(tokenId)).lastSyncStatus).toBe('inProgress');
    await h.syncNow();
    sim.faults.setTokenState('small', 'active');
    const failed = await h.token(tokenId);
    expect(failed).toMatchObject({ lastSyncStatus: 'failed', state: 'invalid' });
    expect((await runs(tokenId))[0]).toMatchObject({ kind: 'delta', outcome: 'failed' });
    expect((await events(tokenId)).some((e) => e.type === 'syncFailed' && e.payload.kind === 'delta')).toBe(
      true,
    );
    const after = await schedule();
    expect(after?.next_sync_at).toBe(planned?.next_sync_at);
    expect(after?.next_delta_at).not.toBe(planned?.next_delta_at);
  });

  it('the scheduler asks for deltas between full syncs and a full sync when one is due', async () => {
    const { tokenId } = await syncedSmall();
    const scheduler = h.context.sync.createScheduler();
    const job = () => h.context.sync.jobs.jobOf(tenantA, tokenId);
    // Full syncs every 12 h, deltas every 15 min (minus up to 10 % jitter; the harness's random is 0.5).
    expect(await scheduler.tick()).toBe(0);
    h.clock.advance(10 * 60_000);
    expect(await scheduler.tick()).toBe(0);
    h.clock.advance(5 * 60_000);
    expect(await scheduler.tick()).toBe(1);
    expect((await job())?.kind).toBe('delta');
    expect(await scheduler.tick()).toBe(0); // in progress: never requested twice
    await h.syncNow();
    expect((await runs(tokenId))[0]).toMatchObject({
      kind: 'delta',
      outcome: 'completed',
      trigger: 'scheduled',
    });
    h.clock.advance(12 * 3_600_000);
    expect(await scheduler.tick()).toBe(1);
    expect((await job())?.kind).toBe('licenses');
    await h.syncNow();
    expect((await runs(tokenId))[0]).toMatchObject({ kind: 'licenses', outcome: 'completed' });
  });

  it('coalescing: a full request turns a queued delta full; a delta request joins a queued full', async () => {
    const { tokenId } = await syncedSmall();
    await requestDelta(tokenId);
    expect((await h.requestSync(tokenId)).body.lastSyncStatus).toBe('inProgress');
    expect((await h.context.sync.jobs.jobOf(tenantA, tokenId))?.kind).toBe('licenses');
    await h.syncNow();
    expect((await runs(tokenId))[0]).toMatchObject({ kind: 'licenses', outcome: 'completed' });

    await h.requestSync(tokenId);
    expect((await requestDelta(tokenId)).effect).toBe('coalesced');
    expect((await h.context.sync.jobs.jobOf(tenantA, tokenId))?.kind).toBe('licenses');
    await h.syncNow();
    expect((await runs(tokenId))[0]).toMatchObject({ kind: 'licenses', outcome: 'completed' });
    expect(await runs(tokenId)).toHaveLength(3);
  });

  it('a full request while a delta runs: the same run reads everything before it commits', async () => {
    const { tokenId, snapshot: before } = await syncedSmall();
    await changeAtApple('associate', await assignableAsset(1), ['RUNNING01']);
    sim.faults.latency('small', 200);
    await requestDelta(tokenId);
    const worker = await h.worker();
    await worker.poll();
    expect(worker.active).toBe(1);
    // syncLicenses while the delta is in flight coalesces, and the job becomes a full one.
    const requested = await h.requestSync(tokenId);
    expect(requested.body.lastSyncStatus).toBe('inProgress');
    await worker.idle();
    sim.faults.latency('small', 0);
    const [run] = await runs(tokenId);
    expect(run).toMatchObject({ kind: 'licenses', outcome: 'completed' });
    expect((await currentSnapshot(h.context.db, tenantA, tokenId))?.runId).toBe(run?.id);
    expect(run?.id).not.toBe(before?.runId);
    await expectSnapshotEqualsApple(tokenId);
  });

  it('POST /vppd/v1/tokens/{id}/sync asks for a delta or a full sync; bad input changes nothing', async () => {
    const { tokenId } = await syncedSmall();
    const post = (payload?: unknown, id = tokenId) =>
      h.app.inject({
        method: 'POST',
        url: `/vppd/v1/tokens/${id}/sync`,
        headers: {
          authorization: h.auth,
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
      });
    for (const bad of [{ kind: 'partial' }, { kind: 'delta', force: true }, [1]]) {
      const refused = await post(bad);
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error.message).toMatch(/kind|Unknown property|JSON object/);
    }
    expect(await h.context.sync.jobs.jobOf(tenantA, tokenId)).toBeUndefined();
    expect((await h.token(tokenId)).lastSyncStatus).toBe('completed');
    expect((await post({ kind: 'delta' }, '00000000-0000-4000-8000-00000000dead')).statusCode).toBe(404);

    const started = await post({ kind: 'delta' });
    expect(started.statusCode).toBe(202);
    expect(started.json()).toMatchObject({ effect: 'started', lastSyncStatus: 'inProgress', job: 'queued' });
    expect((await post({ kind: 'delta' })).json().effect).toBe('coalesced');
    expect((await h.context.sync.jobs.jobOf(tenantA, tokenId))?.kind).toBe('delta');
    await h.syncNow();
    expect((await runs(tokenId))[0]).toMatchObject({ kind: 'delta', outcome: 'completed' });

    expect((await post()).json()).toMatchObject({ effect: 'started' });
    expect((await h.context.sync.jobs.jobOf(tenantA, tokenId))?.kind).toBe('licenses');
    await h.syncNow();
    expect((await runs(tokenId))[0]).toMatchObject({ kind: 'licenses', outcome: 'completed' });
  });
});

describe('delta syncs: the asset list', () => {
  it("asks for every page of the asset list at once, as many as the token's last delta read", async () => {
    // 40 assets in pages of 10: 4 asset pages. Every request to Apple and its answer, in order.
    const log: string[] = [];
    const h = await createSyncHarness({
      sim: { pageSize: 10, eventPolls: 0 },
      appleHttp: (http) => ({
        async request(request) {
          const what = `${request.url.pathname.replace(/^.*\//, '')}${request.url.search}`;
          log.push(`ask ${what}`);
          const answer = await http.request(request);
          log.push(`got ${what}`);
          return answer;
        },
        close: () => http.close(),
      }),
    });
    try {
      const created = await h.upload('small');
      const tokenId = created.id as string;
      await h.syncNow();
      const assetRequests = async () => {
        log.length = 0;
        expect((await h.context.sync.requestSync(tenantA, tokenId, 'api', 'delta')).effect).toBe('started');
        await h.syncNow();
        expect((await h.context.sync.jobs.listRuns(tenantA, tokenId, 1))[0]).toMatchObject({
          kind: 'delta',
          outcome: 'completed',
        });
        return log.filter((line) => line.includes('assets?'));
      };
      // The first delta of this process learns the page count from page 0: page 1 waits for it.
      const first = await assetRequests();
      expect(first.indexOf('ask assets?pageIndex=1')).toBeGreaterThan(
        first.indexOf('got assets?pageIndex=0'),
      );
      // The next asks for pages 0-2 together (3 in flight for the assets), page 3 as one of them answers.
      const second = await assetRequests();
      expect(second.slice(0, 3)).toEqual([
        'ask assets?pageIndex=0',
        'ask assets?pageIndex=1',
        'ask assets?pageIndex=2',
      ]);
      expect(second.filter((line) => line.startsWith('ask')).length).toBe(4);
    } finally {
      await h.close();
    }
  });
});
