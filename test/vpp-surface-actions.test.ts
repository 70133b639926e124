import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppleAsset } from '../src/apple/apple-types.js';
import { createContext } from '../src/context.js';
import { createRevokeActionStore } from '../src/sync/revoke-action-store.js';
import { testConfig } from './helpers/graph-test-app.js';
import { seedTokens } from './helpers/seed-tokens.js';
import { buildSToken } from './helpers/stoken-builder.js';
import { storageEngines, testDatabaseUrl } from './helpers/storage-engines.js';
import {
  allRecords,
  type SurfaceFixture,
  startSurfaceFixture,
  surfaceTenantA,
} from './helpers/vpp-surface-fixture.js';

type Json = Record<string, unknown>;
const tokensPath = '/beta/deviceAppManagement/vppTokens';
const appsPath = '/beta/deviceAppManagement/mobileApps';
const errorCode = (body: unknown) => (body as { error: { code: string; message: string } }).error.code;
const errorMessage = (body: unknown) => (body as { error: { code: string; message: string } }).error.message;

// On each storage engine (a new PostgreSQL database per fixture).
describe.each(storageEngines)('VPP actions on %s', (engine) => {
  describe('getLicensesForApp and getExpiringVppTokenCount', () => {
    let f: SurfaceFixture;
    let smallId: string;
    let duplicateId: string;

    beforeAll(async () => {
      f = await startSurfaceFixture({ database: await testDatabaseUrl(engine) });
      smallId = await f.upload(f.auth.a, 'small');
      duplicateId = await f.upload(f.auth.a, 'duplicate');
      await f.syncFromSim(surfaceTenantA, smallId);
      await f.syncFromSim(surfaceTenantA, duplicateId);
    });
    afterAll(async () => {
      await f?.close();
    });

    it('sums used and available licenses per token holding the bundle id', async () => {
      const smallAssets = await allRecords(f.appleTruth.assets(f.sim.tokenFor('small')));
      const apps = (
        (await f.call('GET', `${appsPath}?$top=999&$filter=vppTokenId eq '${smallId}'`, f.auth.a)).body as {
          value: Json[];
        }
      ).value;
      const app = apps.find((a) => typeof a.bundleId === 'string') as Json;
      const adamId = String(app.appStoreUrl).replace(/^.*\/id/, '');
      const held = smallAssets.filter((a: AppleAsset) => a.adamId === adamId);
      const response = await f.call(
        'GET',
        `${tokensPath}/getLicensesForApp(bundleId='${encodeURIComponent(String(app.bundleId))}')`,
        f.auth.aReadOnly,
      );
      expect(response.status, response.text).toBe(200);
      const body = response.body as { '@odata.context': string; value: Json[] };
      expect(body['@odata.context']).toBe(
        `${f.origin}/beta/$metadata#Collection(microsoft.graph.vppTokenLicenseSummary)`,
      );
      const small = body.value.find((s) => s.vppTokenId === smallId);
      expect(small).toEqual({
        vppTokenId: smallId,
        appleId: 'vpp-small@example.com',
        organizationName: f.sim.locations.find((l) => l.id === 'small')?.orgName,
        availableLicenseCount: Math.min(
          2147483647,
          held.reduce((n, a) => n + a.availableCount, 0),
        ),
        usedLicenseCount: held.reduce((n, a) => n + a.assignedCount, 0),
      });
      // Every token listed holds the app; percent-encoded quotes and parentheses parse the same.
      const encoded = await f.call(
        'GET',
        `${tokensPath}/getLicensesForApp%28bundleId%3D%27${encodeURIComponent(String(app.bundleId))}%27%29`,
        f.auth.a,
      );
      expect(encoded.body).toEqual(body);
      // The result is a collection like any other: $filter, $top, $skip and $count apply (as on Graph).
      const fn = `${tokensPath}/getLicensesForApp(bundleId='${encodeURIComponent(String(app.bundleId))}')`;
      const paged = (await f.call('GET', `${fn}?$count=true&$top=1`, f.auth.a)).body as Json;
      expect(paged['@odata.count']).toBe(body.value.length);
      expect(paged.value).toEqual(body.value.slice(0, 1));
      expect(paged['@odata.nextLink'] !== undefined).toBe(body.value.length > 1);
      const skipped = (await f.call('GET', `${fn}?$skip=1`, f.auth.a)).body as Json;
      expect(skipped.value).toEqual(body.value.slice(1));
      const filtered = (await f.call('GET', `${fn}?$filter=vppTokenId eq '${smallId}'`, f.auth.a))
        .body as Json;
      expect(filtered.value).toEqual([small]);
      const none = (await f.call('GET', `${fn}?$filter=usedLicenseCount gt 2147483647`, f.auth.a))
        .body as Json;
      expect(none.value).toEqual([]);
      expect(
        (
          await f.call(
            'GET',
            `/v1.0/deviceAppManagement/vppTokens/getLicensesForApp(bundleId='${app.bundleId}')`,
            f.auth.a,
          )
        ).status,
      ).toBe(200);
      // Another tenant holds nothing.
      const other = await f.call(
        'GET',
        `${tokensPath}/getLicensesForApp(bundleId='${app.bundleId}')`,
        f.auth.b,
      );
      expect((other.body as { value: unknown[] }).value).toEqual([]);
    });

    it("unescapes '' in the literal and answers an empty collection for an unknown bundle id", async () => {
      const response = await f.call(
        'GET',
        `${tokensPath}/getLicensesForApp(bundleId='it''s.unknown')`,
        f.auth.a,
      );
      expect(response.status).toBe(200);
      expect((response.body as { value: unknown[] }).value).toEqual([]);
    });

    it('rejects malformed calls with 400 (and an unknown function-like segment with 404)', async () => {
      for (const segment of [
        'getLicensesForApp',
        'getLicensesForApp()',
        'getLicensesForApp(bundleId=com.example)',
        "getLicensesForApp(bundle='com.example')",
        "getLicensesForApp(bundleId='open)",
        "getLicensesForApp(bundleId='a'b')",
        "getLicensesForApp(bundleId='')",
        'getLicensesForApp(bundleId=@b)',
      ]) {
        const response = await f.call('GET', `${tokensPath}/${segment}`, f.auth.a);
        expect(response.status, segment).toBe(400);
        expect(errorCode(response.body)).toBe('BadRequest');
      }
      const withOption = await f.call(
        'GET',
        `${tokensPath}/getLicensesForApp(bundleId='x')?$orderby=appleId`,
        f.auth.a,
      );
      expect(withOption.status).toBe(400);
      expect((await f.call('GET', `${tokensPath}/getLicensesForAppX`, f.auth.a)).status).toBe(404);
      expect(
        (await f.call('POST', `${tokensPath}/getLicensesForApp(bundleId='x')`, f.auth.a, {})).status,
      ).toBe(405);
      expect((await f.call('GET', `${tokensPath}/getLicensesForApp(bundleId='x')`, '')).status).toBe(401);
    });

    it('counts the tenant’s tokens expiring before an instant', async () => {
      const path = '/beta/deviceManagement/depOnboardingSettings/getExpiringVppTokenCount';
      const expiries = ['2026-04-01T00:00:00.000Z', '2026-05-01T00:00:00.000Z', '2026-06-01T00:00:00.000Z'];
      const idsB: string[] = [];
      for (const [i, expDate] of expiries.entries()) {
        const response = await f.call('POST', tokensPath, f.auth.b, {
          token: buildSToken({ expDate: new Date(expDate), orgName: `B ${i}` }),
        });
        expect(response.status).toBe(201);
        idsB.push((response.body as { id: string }).id);
      }
      const count = async (auth: string, instant: string) => {
        const response = await f.call(
          'GET',
          `${path}(expiringBeforeDateTime='${encodeURIComponent(instant)}')`,
          auth,
        );
        expect(response.status, response.text).toBe(200);
        const body = response.body as { '@odata.context': string; value: number };
        expect(body['@odata.context']).toBe(`${f.origin}/beta/$metadata#Edm.Int32`);
        return body.value;
      };
      expect(await count(f.auth.b, '2026-04-01T00:00:00Z')).toBe(0); // strictly before
      expect(await count(f.auth.b, '2026-04-01T00:00:00.001Z')).toBe(1);
      expect(await count(f.auth.b, '2026-05-01T02:00:00+02:00')).toBe(1); // = 2026-05-01T00:00Z
      expect(await count(f.auth.b, '2026-05-01T00:00:00.0000001Z')).toBe(2); // sub-millisecond precision
      expect(await count(f.auth.b, '2099-01-01T00:00:00Z')).toBe(3);
      // Tenant A's tokens (from the simulator, a year out) are not B's.
      expect(await count(f.auth.a, '2026-12-31T00:00:00Z')).toBe(0);
      expect(await count(f.auth.a, '2099-01-01T00:00:00Z')).toBe(2);
      for (const bad of [
        "'tomorrow'",
        "'2026-13-01T00:00:00Z'",
        "'2026-05-01T00:00:00'",
        '2026-05-01T00:00:00Z',
        "'2026-05-01'",
      ]) {
        const response = await f.call(
          'GET',
          `${path}(expiringBeforeDateTime=${encodeURIComponent(bad)})`,
          f.auth.a,
        );
        expect(response.status, bad).toBe(400);
        expect(errorCode(response.body)).toBe('BadRequest');
      }
      expect((await f.call('GET', `${path}(when='2026-05-01T00:00:00Z')`, f.auth.a)).status).toBe(400);
      expect((await f.call('GET', `${path}(expiringBeforeDateTime='2026-05-01T00:00:00Z')`, '')).status).toBe(
        401,
      );
      expect(
        (
          await f.call(
            'GET',
            `/v1.0/deviceManagement/depOnboardingSettings/getExpiringVppTokenCount(expiringBeforeDateTime='2026-05-01T00:00:00Z')`,
            f.auth.a,
          )
        ).status,
      ).toBe(404);
      for (const id of idsB)
        expect((await f.call('DELETE', `${tokensPath}/${id}`, f.auth.b)).status).toBe(204);
    });
  });

  describe('syncLicenseCounts', () => {
    let f: SurfaceFixture;
    let smallId: string;
    let duplicateId: string;

    beforeAll(async () => {
      f = await startSurfaceFixture({ database: await testDatabaseUrl(engine) });
      smallId = await f.upload(f.auth.a, 'small');
      duplicateId = await f.upload(f.auth.a, 'duplicate');
      await f.syncFromSim(surfaceTenantA, smallId);
      await f.syncFromSim(surfaceTenantA, duplicateId);
    });
    afterAll(async () => {
      await f?.close();
    });

    /** Runs the queued jobs (syncLicenseCounts is a job per token) until none is left. */
    const runJobs = async () => {
      const worker = await f.context.sync.createWorker();
      while ((await worker.poll()) > 0) await worker.idle();
    };
    const countsAction = async (tokenId: string) => {
      const token = (await f.call('GET', `${tokensPath}/${tokenId}`, f.auth.a)).body as {
        tokenActionResults: { actionName: string; actionState: string }[];
      };
      return token.tokenActionResults.find((r) => r.actionName === 'syncLicenseCounts')?.actionState;
    };

    const appsOf = async (tokenId: string) =>
      (
        (await f.call('GET', `${appsPath}?$top=999&$filter=vppTokenId eq '${tokenId}'`, f.auth.a)).body as {
          value: Json[];
        }
      ).value;

    it('refreshes asset counts from Apple, leaves assignments alone, and skips a failing token', async () => {
      const before = await appsOf(smallId);
      const licenseCounts = async () => {
        const out: number[] = [];
        for (const app of before) {
          const cast = String(app['@odata.type']).slice(1);
          const response = await f.call(
            'GET',
            `${appsPath}/${app.id}/${cast}/assignedLicenses?$count=true&$top=0`,
            f.auth.a,
          );
          out.push((response.body as { '@odata.count': number })['@odata.count']);
        }
        return out;
      };
      const assignmentsBefore = await licenseCounts();
      // Apple hands out a license meanwhile; the duplicate location's token stops working.
      const changed = await fetch(`${f.sim.url}/_sim/locations/small/change-data`, { method: 'POST' });
      expect(changed.status).toBe(200);
      f.sim.faults.setTokenState('duplicate', 'revoked');
      const duplicateBefore = await appsOf(duplicateId);

      // Another tenant's call touches nothing of A's.
      f.sim.resetRequestCounts();
      expect((await f.call('POST', `${tokensPath}/syncLicenseCounts`, f.auth.b)).status).toBe(204);
      expect(f.sim.requestCounts().small).toBeUndefined();

      const response = await f.call('POST', `${tokensPath}/syncLicenseCounts`, f.auth.a);
      expect(response.status, response.text).toBe(204);
      expect(response.text).toBe('');
      // Accepted at once (issue 17): the counts are refreshed by the sync worker's jobs.
      expect(await countsAction(smallId)).toBe('pending');
      await runJobs();
      expect(await countsAction(smallId)).toBe('done');
      expect(await countsAction(duplicateId)).toBe('failed');

      const fresh = await allRecords(f.appleTruth.assets(f.sim.tokenFor('small')));
      const after = await appsOf(smallId);
      expect(after.map((a) => a.id)).toEqual(before.map((a) => a.id));
      let changedApps = 0;
      for (const [i, app] of after.entries()) {
        const adamId = String(app.appStoreUrl).replace(/^.*\/id/, '');
        const candidates = fresh.filter((a) => a.adamId === adamId && a.productType === 'App');
        expect(
          candidates.some(
            (a) => a.totalCount === app.totalLicenseCount && a.assignedCount === app.usedLicenseCount,
          ),
          `app ${adamId}`,
        ).toBe(true);
        if (app.usedLicenseCount !== before[i]?.usedLicenseCount) changedApps += 1;
      }
      expect(changedApps).toBeGreaterThan(0);
      expect(await licenseCounts()).toEqual(assignmentsBefore);
      // The revoked token failed at Apple and kept its counts.
      expect(await appsOf(duplicateId)).toEqual(duplicateBefore);
    });

    it('coalesces 50 concurrent calls into at most one Apple asset walk per token', async () => {
      f.sim.faults.setTokenState('duplicate', 'active');
      await runJobs();
      // One walk of each location's assets, as the truth client reads it.
      f.sim.resetRequestCounts();
      await allRecords(f.appleTruth.assets(f.sim.tokenFor('small')));
      await allRecords(f.appleTruth.assets(f.sim.tokenFor('duplicate')));
      const walk = { ...f.sim.requestCounts() };
      f.sim.resetRequestCounts();
      const calls = await Promise.all(
        Array.from({ length: 50 }, () => f.call('POST', `${tokensPath}/syncLicenseCounts`, f.auth.a)),
      );
      expect(calls.map((c) => c.status)).toEqual(Array(50).fill(204));
      expect(await countsAction(smallId)).toBe('pending');
      await runJobs();
      const counts = f.sim.requestCounts();
      for (const location of ['small', 'duplicate']) {
        expect(counts[location]?.['GET assets'] ?? 0, location).toBeLessThanOrEqual(
          walk[location]?.['GET assets'] ?? 0,
        );
        expect(counts[location]?.['GET assets'] ?? 0, location).toBeGreaterThan(0);
      }
      expect(await countsAction(smallId)).toBe('done');
      expect(await countsAction(duplicateId)).toBe('done');
    });

    it('takes no parameters and needs write permission', async () => {
      const bad = await f.call('POST', `${tokensPath}/syncLicenseCounts`, f.auth.a, { force: true });
      expect(bad.status).toBe(400);
      expect(errorMessage(bad.body)).toContain("'force'");
      expect((await f.call('POST', `${tokensPath}/syncLicenseCounts`, f.auth.a, {})).status).toBe(204);
      expect((await f.call('POST', `${tokensPath}/syncLicenseCounts`, f.auth.aReadOnly)).status).toBe(403);
      expect((await f.call('GET', `${tokensPath}/syncLicenseCounts`, f.auth.a)).status).toBe(405);
      expect(
        (await f.call('POST', `/v1.0/deviceAppManagement/vppTokens/syncLicenseCounts`, f.auth.a)).status,
      ).not.toBe(204);
    });
  });

  describe('revokeLicenses', () => {
    let f: SurfaceFixture;
    let smallId: string;
    let duplicateId: string;
    let expiredId: string;

    beforeAll(async () => {
      f = await startSurfaceFixture({ database: await testDatabaseUrl(engine) });
      smallId = await f.upload(f.auth.a, 'small');
      duplicateId = await f.upload(f.auth.a, 'duplicate');
      expiredId = await f.upload(f.auth.a, 'external-mdm');
      await f.syncFromSim(surfaceTenantA, smallId);
      await f.syncFromSim(surfaceTenantA, duplicateId);
    });
    afterAll(async () => {
      await f?.close();
    });

    const revokeResultOf = async (tokenId: string) => {
      const token = (await f.call('GET', `${tokensPath}/${tokenId}`, f.auth.a)).body as {
        tokenActionResults: Json[];
      };
      return token.tokenActionResults.find((r) => r.actionName === 'revokeLicenses');
    };

    it('validates the body strictly', async () => {
      const path = `${tokensPath}/${smallId}/revokeLicenses`;
      for (const body of [
        {},
        { notifyManagedDevices: 'yes' },
        { notifyManagedDevices: null },
        { notifyManagedDevices: true, revokeUntrackedLicenses: 1 },
        { notifyManagedDevices: true, extra: 1 },
        [true],
      ]) {
        const response = await f.call('POST', path, f.auth.a, body);
        expect(response.status, JSON.stringify(body)).toBe(400);
        expect(errorCode(response.body)).toBe('BadRequest');
      }
      const noBody = await f.call('POST', path, f.auth.a);
      expect(noBody.status).toBe(400);
      expect(await revokeResultOf(smallId)).toBeUndefined();
    });

    it('answers 404 for unknown and other tenants’ tokens, 409 for a token that is not valid, 403 read-only', async () => {
      const body = { notifyManagedDevices: false };
      expect(
        (
          await f.call(
            'POST',
            `${tokensPath}/00000000-0000-4000-8000-000000000000/revokeLicenses`,
            f.auth.a,
            body,
          )
        ).status,
      ).toBe(404);
      expect((await f.call('POST', `${tokensPath}/${smallId}/revokeLicenses`, f.auth.b, body)).status).toBe(
        404,
      );
      expect(
        (await f.call('POST', `${tokensPath}/${smallId}/revokeLicenses`, f.auth.aReadOnly, body)).status,
      ).toBe(403);
      const notValid = await f.call('POST', `${tokensPath}/${expiredId}/revokeLicenses`, f.auth.a, body);
      expect(notValid.status).toBe(409);
      expect(errorCode(notValid.body)).toBe('Conflict');
      expect(errorMessage(notValid.body)).toMatch(/state is 'unknown'/);
      expect(await revokeResultOf(expiredId)).toBeUndefined();
    });

    it('revokes every revocable license of the snapshot in batches within the limits, then records done', async () => {
      const sToken = f.sim.tokenFor('small');
      const before = await allRecords(f.appleTruth.assignments(sToken));
      const assets = await allRecords(f.appleTruth.assets(sToken));
      const revocable = new Set(
        assets.filter((a) => a.revocable).map((a) => `${a.adamId}/${a.pricingParam}`),
      );
      const revocableLicenses = before.filter((a) => revocable.has(`${a.adamId}/${a.pricingParam}`));
      const holders = (pick: (a: (typeof before)[number]) => string | undefined) =>
        new Set(revocableLicenses.map(pick).filter((h) => h !== undefined));
      const serials = holders((a) => a.serialNumber).size;
      const users = holders((a) => a.clientUserId).size;
      expect(serials + users).toBeGreaterThan(100); // more than one batch

      f.sim.resetRequestCounts();
      const response = await f.call('POST', `${tokensPath}/${smallId}/revokeLicenses`, f.auth.a, {
        notifyManagedDevices: true,
      });
      expect(response.status, response.text).toBe(204);
      await f.context.revokes.idle();

      const result = await revokeResultOf(smallId);
      expect(result).toEqual({
        '@odata.type': '#microsoft.graph.vppTokenRevokeLicensesActionResult',
        actionName: 'revokeLicenses',
        actionState: 'done',
        startDateTime: '2026-03-01T12:00:00Z',
        lastUpdatedDateTime: '2026-03-01T12:00:00Z',
        actionFailureReason: 'none',
        totalLicensesCount: revocableLicenses.length,
        failedLicensesCount: 0,
      });
      const counts = f.sim.requestCounts().small ?? {};
      expect(counts['POST assets/revoke']).toBe(Math.max(Math.ceil(serials / 100), Math.ceil(users / 100)));
      expect(counts['GET status']).toBeGreaterThanOrEqual(counts['POST assets/revoke'] ?? 0);
      // Apple now holds only the licenses that cannot be revoked (books).
      const after = await allRecords(f.appleTruth.assignments(sToken));
      expect(after).toHaveLength(before.length - revocableLicenses.length);
      expect(after.every((a) => !revocable.has(`${a.adamId}/${a.pricingParam}`))).toBe(true);

      // The revoke requested a sync; once it ran, the apps show no license in use.
      const token = (await f.call('GET', `${tokensPath}/${smallId}`, f.auth.a)).body as Json;
      expect(token.lastSyncStatus).toBe('inProgress');
      await f.syncFromSim(surfaceTenantA, smallId);
      const apps = (
        (await f.call('GET', `${appsPath}?$top=999&$filter=vppTokenId eq '${smallId}'`, f.auth.a)).body as {
          value: Json[];
        }
      ).value;
      expect(apps.length).toBeGreaterThan(0);
      expect(apps.every((a) => a.usedLicenseCount === 0)).toBe(true);
    });

    it('coalesces a second request while one is in flight', async () => {
      // Apple needs several polls per event here, so the first revoke is still running.
      const outcomes = await Promise.all([
        f.context.revokes.request(surfaceTenantA, duplicateId, {
          notifyManagedDevices: false,
          revokeUntrackedLicenses: false,
        }),
        f.context.revokes.request(surfaceTenantA, duplicateId, {
          notifyManagedDevices: false,
          revokeUntrackedLicenses: false,
        }),
      ]);
      expect(outcomes.sort()).toEqual(['coalesced', 'started']);
      await f.context.revokes.idle();
      expect((await revokeResultOf(duplicateId))?.actionState).toBe('done');
    });

    it('ends as failed with Apple’s reason and every unconfirmed license counted as failed', async () => {
      // Give the location licenses again, then make every revoke call fail.
      await f.syncFromSim(surfaceTenantA, duplicateId);
      await fetch(`${f.sim.url}/_sim/locations/duplicate/change-data`, { method: 'POST' });
      f.sim.faults.serverError('duplicate', 1000, { status: 503, endpoint: 'assets/revoke' });
      const response = await f.call('POST', `${tokensPath}/${duplicateId}/revokeLicenses`, f.auth.a, {
        notifyManagedDevices: false,
        revokeUntrackedLicenses: true,
      });
      expect(response.status).toBe(204);
      await f.context.revokes.idle();
      f.sim.faults.clear('duplicate');
      const result = (await revokeResultOf(duplicateId)) as Json;
      expect(result.actionState).toBe('failed');
      expect(result.actionFailureReason).toBe('appleFailure');
      expect(result.totalLicensesCount).toBeGreaterThan(0);
      expect(result.failedLicensesCount).toBe(result.totalLicensesCount);
    });
  });

  describe('revokeLicenses recovery', () => {
    it('fails revokes a dead process left active, on start-up and when they go stale', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'vppd-revoke-'));
      const database = await testDatabaseUrl(engine, `sqlite:${join(dir, 'vppd.db')}`);
      try {
        let now = new Date('2026-03-01T12:00:00.000Z');
        const clock = () => new Date(now);
        const overrides = { clock, logger: pino({ level: 'silent' }) };
        const first = await createContext(testConfig({ database }), overrides);
        const [stale, fresh] = await seedTokens(first.tokens, {
          tenantId: surfaceTenantA,
          count: 2,
          now: clock,
        });
        const store = createRevokeActionStore({ storage: first.storage });
        const zero = { actionFailureReason: 'none', totalLicensesCount: 40, failedLicensesCount: 3 } as const;
        await store.transition(surfaceTenantA, stale?.id as string, 'requested', now, zero);
        await store.transition(surfaceTenantA, stale?.id as string, 'started', now, zero);
        await first.dispose(); // the process "dies" with the revoke active

        now = new Date('2026-03-01T13:00:00.000Z');
        const second = await createContext(testConfig({ database }), overrides);
        try {
          await second.revokes.startRecovery(); // what starting the server does
          const recovered = (await second.tokens.get(surfaceTenantA, stale?.id as string))
            ?.tokenActionResults[0];
          expect(recovered).toEqual({
            actionName: 'revokeLicenses',
            actionState: 'failed',
            startDateTime: new Date('2026-03-01T12:00:00.000Z'),
            lastUpdatedDateTime: new Date('2026-03-01T13:00:00.000Z'),
            revoke: { actionFailureReason: 'internalError', totalLicensesCount: 40, failedLicensesCount: 3 },
          });
          // A revoke updated recently is someone's live work: left alone until it goes stale.
          const store2 = createRevokeActionStore({ storage: second.storage });
          await store2.transition(surfaceTenantA, fresh?.id as string, 'requested', now, zero);
          expect(await second.revokes.recoverAbandoned()).toBe(0);
          now = new Date('2026-03-01T14:00:00.000Z');
          expect(await second.revokes.recoverAbandoned()).toBe(1);
          expect((await store2.get(surfaceTenantA, fresh?.id as string))?.actionState).toBe('failed');
        } finally {
          await second.dispose();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
