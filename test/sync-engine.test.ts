import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { formatGraphDateTime } from '../src/domain/graph-date-time.js';
import { loadInstallationId } from '../src/storage/sync-installation.js';
import { tenantA } from './helpers/graph-test-app.js';
import {
  countRunRows,
  currentSnapshot,
  listAssets,
  listAssignments,
} from './helpers/license-snapshot-sql.js';
import { storageEngines, testDatabaseUrl } from './helpers/storage-engines.js';
import { assignmentKey, createSyncHarness, readAllPages, type SyncHarness } from './helpers/sync-harness.js';

// The sync lifecycle end to end: Graph API → durable job → worker → Apple simulator over HTTP →
// one transaction. Every transition and every failure class of the issue, checked in the database.

// On each storage engine (a new PostgreSQL database per test).
describe.each(storageEngines)('sync engine on %s', (engine) => {
  let sim: AppleSim;
  let h: SyncHarness;

  beforeAll(async () => {
    sim = await startAppleSim({ seed: 'sync-engine', rateLimit: false, pageSize: 100 });
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

  const id = (token: Record<string, unknown>) => token.id as string;

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

  async function expectSnapshotEqualsApple(tokenId: string, locationId: string): Promise<void> {
    const assets = await readAllPages(sim, locationId, 'assets');
    const assignments = await readAllPages(sim, locationId, 'assignments');
    const storedAssets = await listAssets(h.context.db, tenantA, tokenId);
    expect(
      storedAssets
        .map((a) => `${a.adamId}|${a.pricingParam}|${a.totalCount}|${a.assignedCount}|${a.availableCount}`)
        .sort(),
    ).toEqual(
      assets.records
        .map((a) => `${a.adamId}|${a.pricingParam}|${a.totalCount}|${a.assignedCount}|${a.availableCount}`)
        .sort(),
    );
    expect((await storedAssignments(tokenId)).sort()).toEqual(assignments.records.map(assignmentKey).sort());
    const snapshot = await currentSnapshot(h.context.db, tenantA, tokenId);
    expect(assignments.versionIds.size).toBe(1);
    expect(snapshot?.versionId).toBe([...assignments.versionIds][0]);
    expect(snapshot?.assignmentCount).toBe(assignments.records.length);
    expect(snapshot?.usedLicenseCount).toBe(assets.records.reduce((n, a) => n + Number(a.assignedCount), 0));
  }

  describe('a successful sync', () => {
    it('uploading a token starts a sync; the worker commits one Apple snapshot and completes', async () => {
      const created = await h.upload('small');
      expect(created.lastSyncStatus).toBe('inProgress');
      expect(created.lastSyncDateTime).toBe('0001-01-01T00:00:00Z');
      const pending = created.tokenActionResults as Record<string, unknown>[];
      expect(pending).toEqual([
        expect.objectContaining({ actionName: 'syncLicenses', actionState: 'pending' }),
      ]);

      h.clock.advance(5000);
      await h.syncNow();
      const token = await h.token(id(created));
      expect(token).toMatchObject({
        lastSyncStatus: 'completed',
        state: 'valid',
        locationName: 'Springfield Elementary',
        countryOrRegion: 'us',
        lastSyncDateTime: formatGraphDateTime(h.clock.now()),
        tokenActionResults: [
          expect.objectContaining({
            actionName: 'syncLicenses',
            actionState: 'done',
            startDateTime: created.lastModifiedDateTime,
            lastUpdatedDateTime: formatGraphDateTime(h.clock.now()),
          }),
        ],
      });
      await expectSnapshotEqualsApple(id(created), 'small');

      // vppd claimed the location with its own stable installation id.
      const location = sim.locations.find((l) => l.id === 'small');
      const installationId = await loadInstallationId(h.context.db, () => 'unused');
      expect(location?.mdmInfo).toMatchObject({ id: installationId, name: 'vppd' });

      // History: one completed run with the counts.
      const runs = await h.context.sync.jobs.listRuns(tenantA, id(created));
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ outcome: 'completed', attempt: 1, trigger: 'created', failure: null });
      expect(runs[0]?.assignmentCount).toBe(600);
      expect(runs[0]?.assetCount).toBe(40);
      // Metadata was fetched for the adamIds: names come from the lookup.
      const assets = await listAssets(h.context.db, tenantA, id(created));
      expect(assets.every((a) => a.metadata?.name !== undefined)).toBe(true);
    });

    it('a second sync replaces the snapshot in one swap and deletes the old rows', async () => {
      const created = await h.upload('small');
      await h.syncNow();
      const first = await currentSnapshot(h.context.db, tenantA, id(created));
      await fetch(`${sim.adminUrl}/locations/small/change-data`, { method: 'POST' });
      h.clock.advance(60_000);
      const requested = await h.requestSync(id(created));
      expect(requested.statusCode).toBe(200);
      expect(requested.body.lastSyncStatus).toBe('inProgress');
      expect(requested.body['@odata.context']).toMatch(/\$metadata#microsoft\.graph\.vppToken$/);
      await h.syncNow();
      const second = await currentSnapshot(h.context.db, tenantA, id(created));
      expect(second?.runId).not.toBe(first?.runId);
      expect(second?.versionId).not.toBe(first?.versionId);
      await expectSnapshotEqualsApple(id(created), 'small');
      expect(await countRunRows(h.context.db, first?.runId as string)).toEqual({
        assets: 0,
        assignments: 0,
      });
      expect((await h.token(id(created))).lastSyncDateTime).toBe(formatGraphDateTime(h.clock.now()));
      // The metadata of adamIds seen before is not fetched again.
      expect(sim.requestCounts()['*']?.['GET lookup']).toBe(1);
    });

    it('two syncLicenses calls at once make one job and Apple sees one sync', async () => {
      const created = await h.upload('small');
      await h.syncNow();
      sim.resetRequestCounts();
      const [a, b, c] = await Promise.all([
        h.requestSync(id(created)),
        h.requestSync(id(created)),
        h.requestSync(id(created)),
      ]);
      expect([a.statusCode, b.statusCode, c.statusCode]).toEqual([200, 200, 200]);
      expect([a, b, c].every((r) => r.body.lastSyncStatus === 'inProgress')).toBe(true);
      await h.syncNow();
      await h.syncNow();
      expect(sim.requestCounts().small?.['GET client/config']).toBe(1);
      expect(await h.context.sync.jobs.listRuns(tenantA, id(created))).toHaveLength(2);
    });

    it('syncLicenses: 404 for an unknown token, 400 with parameters, 405 for GET', async () => {
      expect((await h.requestSync('00000000-0000-4000-8000-00000000dead')).statusCode).toBe(404);
      const created = await h.upload('small');
      const withBody = await h.app.inject({
        method: 'POST',
        url: `/beta/deviceAppManagement/vppTokens/${id(created)}/syncLicenses`,
        headers: { authorization: h.auth },
        payload: { force: true },
      });
      expect(withBody.statusCode).toBe(400);
      const get = await h.app.inject({
        method: 'GET',
        url: `/v1.0/deviceAppManagement/vppTokens/${id(created)}/syncLicenses`,
        headers: { authorization: h.auth },
      });
      expect(get.statusCode).toBe(405);
    });
  });

  describe('failures leave the previous snapshot intact', () => {
    async function syncedSmall() {
      const created = await h.upload('small');
      await h.syncNow();
      const snapshot = await currentSnapshot(h.context.db, tenantA, id(created));
      const completedAt = (await h.token(id(created))).lastSyncDateTime;
      h.clock.advance(60_000);
      return { tokenId: id(created), snapshot, completedAt };
    }

    async function expectFailed(
      tokenId: string,
      previous: Awaited<ReturnType<typeof syncedSmall>> | undefined,
      expected: { state: string; kind: string; reason: string; appleErrorNumber?: number },
    ) {
      const token = await h.token(tokenId);
      expect(token.lastSyncStatus).toBe('failed');
      expect(token.state).toBe(expected.state);
      expect(token.tokenActionResults).toEqual([
        expect.objectContaining({ actionName: 'syncLicenses', actionState: 'failed' }),
      ]);
      const [run] = await h.context.sync.jobs.listRuns(tenantA, tokenId, 1);
      expect(run?.outcome).toBe('failed');
      expect(run?.failure).toMatchObject({ kind: expected.kind, reason: expected.reason });
      if (expected.appleErrorNumber !== undefined) {
        expect(run?.failure?.appleErrorNumber).toBe(expected.appleErrorNumber);
        expect(run?.failure?.message).toContain(String(expected.appleErrorNumber));
      }
      expect(run?.failure?.message).not.toContain(sim.tokenFor('small'));
      // Staging rows of the failed run are gone; the job is gone.
      expect(await countRunRows(h.context.db, run?.id as string)).toEqual({
        assets: 0,
        assignments: 0,
      });
      expect(await h.context.sync.jobs.jobOf(tenantA, tokenId)).toBeUndefined();
      if (previous) {
        expect(token.lastSyncDateTime).toBe(previous.completedAt);
        expect(await currentSnapshot(h.context.db, tenantA, tokenId)).toEqual(previous.snapshot);
        await expectSnapshotEqualsApple(tokenId, 'small');
      } else {
        expect(token.lastSyncDateTime).toBe('0001-01-01T00:00:00Z');
      }
    }

    it('expired token (9621): state expired, reason expiredVppToken', async () => {
      const before = await syncedSmall();
      sim.faults.setTokenState('small', 'expired');
      await h.requestSync(before.tokenId);
      await h.syncNow();
      sim.faults.setTokenState('small', 'active');
      await expectFailed(before.tokenId, before, {
        state: 'expired',
        kind: 'expired',
        reason: 'expiredVppToken',
        appleErrorNumber: 9621,
      });
    });

    it('an asset page that fails to stage while the assignments are paged fails the sync; nothing of it remains', async () => {
      // Asset pages are written behind the fetch (sync-engine.ts): the write fails only once the
      // assignments are being read, and the failure still reaches the run before anything commits.
      const before = await syncedSmall();
      const { licenses } = h.context.sync;
      const insertAssets = licenses.insertAssets.bind(licenses);
      let calls = 0;
      (licenses as { insertAssets: typeof licenses.insertAssets }).insertAssets = async (run, assets) => {
        if (++calls > 1) return insertAssets(run, assets);
        while ((sim.requestCounts().small?.['GET assignments'] ?? 0) < 2) {
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        throw new Error('the asset write failed');
      };
      try {
        await h.requestSync(before.tokenId);
        await h.syncNow();
      } finally {
        (licenses as { insertAssets: typeof licenses.insertAssets }).insertAssets = insertAssets;
      }
      expect(calls).toBeGreaterThanOrEqual(1);
      await expectFailed(before.tokenId, before, {
        state: 'valid',
        kind: 'internal',
        reason: 'internalError',
      });
    });

    it('revoked token (9625): state invalid, reason appleFailure', async () => {
      const created = await h.upload('revoked');
      await h.syncNow();
      const token = await h.token(id(created));
      expect(token).toMatchObject({ lastSyncStatus: 'failed', state: 'invalid' });
      const [run] = await h.context.sync.jobs.listRuns(tenantA, id(created));
      expect(run?.failure).toMatchObject({ kind: 'revoked', reason: 'appleFailure', appleErrorNumber: 9625 });
    });

    it('invalid token reported inside an HTTP 200 body (9622): state invalid', async () => {
      const before = await syncedSmall();
      sim.faults.errorInBody('small', 9622, 1, 'assignments');
      await h.requestSync(before.tokenId);
      await h.syncNow();
      await expectFailed(before.tokenId, before, {
        state: 'invalid',
        kind: 'invalidToken',
        reason: 'appleFailure',
        appleErrorNumber: 9622,
      });
    });

    it('rate limiting that recovers (429/9646 burst) completes', async () => {
      const before = await syncedSmall();
      sim.faults.rateLimitBurst('small', 3, { endpoint: 'assignments' });
      await h.requestSync(before.tokenId);
      await h.syncNow();
      expect((await h.token(before.tokenId)).lastSyncStatus).toBe('completed');
      await expectSnapshotEqualsApple(before.tokenId, 'small');
    });

    it('5xx that recovers completes; 5xx that does not fails with Apple unavailable, state unchanged', async () => {
      const before = await syncedSmall();
      sim.faults.serverError('small', 2, { endpoint: 'assets', status: 503 });
      await h.requestSync(before.tokenId);
      await h.syncNow();
      expect((await h.token(before.tokenId)).lastSyncStatus).toBe('completed');

      const again = await currentSnapshot(h.context.db, tenantA, before.tokenId);
      const completedAt = (await h.token(before.tokenId)).lastSyncDateTime;
      h.clock.advance(60_000);
      sim.faults.serverError('small', 50, { endpoint: 'assignments', status: 500 });
      await h.requestSync(before.tokenId);
      await h.syncNow();
      sim.faults.clear('small');
      await expectFailed(
        before.tokenId,
        { ...before, snapshot: again, completedAt },
        { state: 'valid', kind: 'appleUnavailable', reason: 'appleFailure', appleErrorNumber: 9603 },
      );
    });

    it('another MDM without consent: assignedToExternalMDM and vppd never writes mdmInfo', async () => {
      const created = await h.upload('external-mdm');
      await h.syncNow();
      await expectFailed(id(created), undefined, {
        state: 'assignedToExternalMDM',
        kind: 'externalMdm',
        reason: 'appleFailure',
      });
      const [run] = await h.context.sync.jobs.listRuns(tenantA, id(created));
      expect(run?.failure?.message).toMatch(/OtherMDM.*claimTokenManagementFromExternalMdm/);
      expect(sim.requestCounts()['external-mdm']?.['POST client/config']).toBeUndefined();
      expect(sim.requestCounts()['external-mdm']?.['GET assets']).toBeUndefined();
      expect(sim.locations.find((l) => l.id === 'external-mdm')?.mdmInfo).toMatchObject({ name: 'OtherMDM' });
    });

    it('another MDM with consent: vppd writes its own mdmInfo and completes', async () => {
      const created = await h.upload('external-mdm', { claimTokenManagementFromExternalMdm: true });
      await h.syncNow();
      expect(await h.token(id(created))).toMatchObject({ lastSyncStatus: 'completed', state: 'valid' });
      expect(sim.locations.find((l) => l.id === 'external-mdm')?.mdmInfo).toMatchObject({ name: 'vppd' });
    });

    it('the same location under a second token of the tenant: duplicateLocationId', async () => {
      const first = await h.upload('duplicate', {}, 0);
      await h.syncNow();
      const second = await h.upload('duplicate', {}, 1);
      await h.syncNow();
      expect((await h.token(id(first))).lastSyncStatus).toBe('completed');
      await expectFailed(id(second), undefined, {
        state: 'duplicateLocationId',
        kind: 'duplicateLocation',
        reason: 'appleFailure',
      });
      const [run] = await h.context.sync.jobs.listRuns(tenantA, id(second));
      expect(run?.failure?.message).toContain(id(first));
    });

    it('data changing mid-sync is re-read, never committed as a mix', async () => {
      const before = await syncedSmall();
      sim.faults.changeDataAfterPage('small', 2, { endpoint: 'assignments' });
      await h.requestSync(before.tokenId);
      await h.syncNow();
      expect((await h.token(before.tokenId)).lastSyncStatus).toBe('completed');
      // The committed snapshot is Apple's data after the change, whole.
      await expectSnapshotEqualsApple(before.tokenId, 'small');
    });

    it('data that keeps changing fails with snapshotMoved and keeps the previous snapshot', async () => {
      const before = await syncedSmall();
      sim.faults.changeDataAfterPage('small', 1, { endpoint: 'assignments', times: 10 });
      await h.requestSync(before.tokenId);
      await h.syncNow();
      const token = await h.token(before.tokenId);
      expect(token).toMatchObject({
        lastSyncStatus: 'failed',
        state: 'valid',
        lastSyncDateTime: before.completedAt,
      });
      expect(await currentSnapshot(h.context.db, tenantA, before.tokenId)).toEqual(before.snapshot);
      const [run] = await h.context.sync.jobs.listRuns(tenantA, before.tokenId, 1);
      expect(run?.failure).toMatchObject({ kind: 'snapshotMoved', reason: 'appleFailure' });
      // Three reads of page 0 of assignments: the first and two restarts.
      expect(sim.requestCounts().small?.['GET assignments']).toBeGreaterThanOrEqual(3);
    });

    it('a large read that keeps moving: batches staged before each restart are cleared, none lands after', async () => {
      // 50,000 licenses in pages of 100: past page 164 the writer has ~16,000 licenses in chunks and starts a
      // batch while it goes on fetching; the data moves after page 200, each of the three reads.
      const created = await h.upload('large');
      sim.faults.changeDataAfterPage('large', 200, { endpoint: 'assignments', times: 10 });
      await h.syncNow();
      const [run] = await h.context.sync.jobs.listRuns(tenantA, id(created), 1);
      expect(run?.failure).toMatchObject({ kind: 'snapshotMoved' });
      expect(sim.requestCounts().large?.['GET assignments']).toBeGreaterThanOrEqual(3 * 201);
      expect(await countRunRows(h.context.db, run?.id as string)).toEqual({ assets: 0, assignments: 0 });
      const left = await h.context.db
        .selectFrom('license_assignment_chunks')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(left.n)).toBe(0);
      expect(await h.context.db.selectFrom('license_runs').selectAll().execute()).toEqual([]);
    });

    it('deleting a token during its sync: the sync stops, nothing of it remains', async () => {
      const created = await h.upload('large');
      sim.faults.latency('large', 30);
      const worker = await h.worker();
      await worker.poll();
      // Wait until the run has staged some assignments, then delete the token through the API.
      const job = await h.context.sync.jobs.jobOf(tenantA, id(created));
      for (let i = 0; i < 200; i++) {
        const rows = await countRunRows(h.context.db, job?.runId as string);
        if (rows.assignments > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const deleted = await h.app.inject({
        method: 'DELETE',
        url: `/beta/deviceAppManagement/vppTokens/${id(created)}`,
        headers: { authorization: h.auth },
      });
      expect(deleted.statusCode).toBe(204);
      await worker.idle();
      expect(await countRunRows(h.context.db, job?.runId as string)).toEqual({
        assets: 0,
        assignments: 0,
      });
      expect(await h.context.sync.jobs.listRuns(tenantA, id(created))).toEqual([]);
      const left = await h.context.db
        .selectFrom('license_assignment_chunks')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(left.n)).toBe(0);
    });
  });
});
