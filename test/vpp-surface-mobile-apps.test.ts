import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppleAsset } from '../src/apple/apple-types.js';
import { storageEngines, testDatabaseUrl } from './helpers/storage-engines.js';
import { allRecords, type SurfaceFixture, startSurfaceFixture } from './helpers/vpp-surface-fixture.js';

type Json = Record<string, unknown>;
type Page = { value: Json[]; '@odata.nextLink'?: string; '@odata.count'?: number; '@odata.context': string };

const appsPath = '/beta/deviceAppManagement/mobileApps';

describe.each(storageEngines)('mobileApps: VPP apps from the current snapshots on %s', (engine) => {
  let f: SurfaceFixture;
  let smallId: string;
  let duplicateId: string;
  let smallAssets: AppleAsset[];
  let apps: Json[];

  /** Follows nextLinks from `path` and returns every item. */
  const readAll = async (path: string, auth = f.auth.a): Promise<{ items: Json[]; pages: number }> => {
    const items: Json[] = [];
    let next: string | undefined = path;
    let pages = 0;
    while (next !== undefined) {
      const response = await f.call('GET', next, auth);
      expect(response.status, response.text).toBe(200);
      const page = response.body as Page;
      items.push(...page.value);
      pages += 1;
      next = page['@odata.nextLink']?.slice(f.origin.length);
    }
    return { items, pages };
  };

  beforeAll(async () => {
    f = await startSurfaceFixture({ database: await testDatabaseUrl(engine) });
    smallId = await f.upload(f.auth.a, 'small');
    duplicateId = await f.upload(f.auth.a, 'duplicate');
    await f.syncFromSim('a5a5a5a5-1111-4111-8111-111111111111', smallId);
    await f.syncFromSim('a5a5a5a5-1111-4111-8111-111111111111', duplicateId);
    smallAssets = await allRecords(f.appleTruth.assets(f.sim.tokenFor('small')));
    apps = (await readAll(`${appsPath}?$top=999`)).items;
  });

  afterAll(async () => {
    await f?.close();
  });

  it('lists one app per licensed app asset of every token, with Apple counts and token fields', async () => {
    const duplicateAssets = await allRecords(f.appleTruth.assets(f.sim.tokenFor('duplicate')));
    const appAssets = [...smallAssets, ...duplicateAssets].filter((a) => a.productType === 'App');
    expect(apps).toHaveLength(appAssets.length);
    const smallApps = apps.filter((a) => a.vppTokenId === smallId);
    const smallAppAssets = smallAssets.filter((a) => a.productType === 'App');
    expect(smallApps).toHaveLength(smallAppAssets.length);
    for (const asset of smallAppAssets) {
      const url = `https://apps.apple.com/us/app/id${asset.adamId}`;
      const matches = smallApps.filter((a) => a.appStoreUrl === url);
      const app = matches.find(
        (a) => a.totalLicenseCount === asset.totalCount && a.usedLicenseCount === asset.assignedCount,
      );
      expect(app, `asset ${asset.adamId}/${asset.pricingParam}`).toBeDefined();
      expect(app?.vppTokenOrganizationName).toBe(f.sim.locations.find((l) => l.id === 'small')?.orgName);
      expect(app?.vppTokenAppleId).toBe('vpp-small@example.com');
      expect(app?.vppTokenDisplayName).toBe('Token of small');
      expect(app?.vppTokenAccountType).toBe('business');
      expect(app?.licensingType).toEqual({
        supportUserLicensing: true,
        supportDeviceLicensing: asset.deviceAssignable,
        supportsUserLicensing: true,
        supportsDeviceLicensing: asset.deviceAssignable,
      });
    }
  });

  it('types apps by platform and fills names and bundle ids from the metadata lookup', async () => {
    const lookup = await fetch(
      `${f.sim.metadataUrl}?version=2&p=mdm-lockup&caller=MDM&platform=volumestore&cc=us&l=en&id=${smallAssets.map((a) => a.adamId).join(',')}`,
    );
    const results = (
      (await lookup.json()) as { results: Record<string, { name: string; bundleId?: string; kind: string }> }
    ).results;
    const kinds = new Set<string>();
    for (const app of apps.filter((a) => a.vppTokenId === smallId)) {
      const adamId = String(app.appStoreUrl).replace(/^.*\/id/, '');
      const meta = results[adamId];
      expect(meta, adamId).toBeDefined();
      expect(app.displayName).toBe(meta?.name);
      expect(app.bundleId).toBe(meta?.bundleId);
      const expectedType =
        meta?.kind === 'macSoftware' ? '#microsoft.graph.macOsVppApp' : '#microsoft.graph.iosVppApp';
      expect(app['@odata.type']).toBe(expectedType);
      kinds.add(String(app['@odata.type']));
      if (expectedType === '#microsoft.graph.iosVppApp')
        expect(app.applicableDeviceType).toBeTypeOf('object');
      else expect(app).not.toHaveProperty('applicableDeviceType');
      // Unknown to vppd: null, never invented.
      expect(app.publisher).toBeNull();
      expect(app.description).toBeNull();
      expect(app.createdDateTime).toBe('2026-03-01T12:00:00Z');
    }
    expect(kinds).toEqual(new Set(['#microsoft.graph.iosVppApp', '#microsoft.graph.macOsVppApp']));
  });

  it('gives each app a stable GUID and serves it by id, with and without a type cast', async () => {
    const ids = apps.map((a) => a.id as string);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const ios = apps.find((a) => a['@odata.type'] === '#microsoft.graph.iosVppApp') as Json;
    const mac = apps.find((a) => a['@odata.type'] === '#microsoft.graph.macOsVppApp') as Json;

    const get = await f.call('GET', `${appsPath}/${ios.id}`, f.auth.a);
    expect(get.status).toBe(200);
    const { '@odata.context': context, ...entity } = get.body as Json;
    expect(context).toBe(`${f.origin}/beta/$metadata#deviceAppManagement/mobileApps/$entity`);
    expect(entity).toEqual(ios);

    const cast = await f.call('GET', `${appsPath}/${ios.id}/microsoft.graph.iosVppApp`, f.auth.a);
    expect(cast.status).toBe(200);
    expect((cast.body as Json)['@odata.context']).toBe(
      `${f.origin}/beta/$metadata#deviceAppManagement/mobileApps/microsoft.graph.iosVppApp/$entity`,
    );
    expect((cast.body as Json).id).toBe(ios.id);
    expect((await f.call('GET', `${appsPath}/${mac.id}/microsoft.graph.macOsVppApp`, f.auth.a)).status).toBe(
      200,
    );
    // A cast to the other type names nothing.
    expect((await f.call('GET', `${appsPath}/${ios.id}/microsoft.graph.macOsVppApp`, f.auth.a)).status).toBe(
      404,
    );
    expect((await f.call('GET', `${appsPath}/${String(ios.id).toUpperCase()}`, f.auth.a)).status).toBe(200);
    for (const unknown of ['00000000-0000-5000-8000-000000000000', 'not-a-guid']) {
      const response = await f.call('GET', `${appsPath}/${unknown}`, f.auth.a);
      expect(response.status).toBe(404);
      expect((response.body as { error: { code: string } }).error.code).toBe('ResourceNotFound');
    }
    const selected = await f.call(
      'GET',
      `${appsPath}/${ios.id}?$select=bundleId,totalLicenseCount`,
      f.auth.a,
    );
    expect(selected.body).toEqual({
      '@odata.context': `${f.origin}/beta/$metadata#deviceAppManagement/mobileApps(bundleId,totalLicenseCount)/$entity`,
      '@odata.type': '#microsoft.graph.iosVppApp',
      id: ios.id,
      bundleId: ios.bundleId,
      totalLicenseCount: ios.totalLicenseCount,
    });
  });

  it('filters the collection by type-cast segment, with $count', async () => {
    for (const [segment, type] of [
      ['microsoft.graph.iosVppApp', '#microsoft.graph.iosVppApp'],
      ['microsoft.graph.macOsVppApp', '#microsoft.graph.macOsVppApp'],
    ] as const) {
      const expected = apps.filter((a) => a['@odata.type'] === type);
      const response = await f.call('GET', `${appsPath}/${segment}?$count=true&$top=999`, f.auth.a);
      expect(response.status).toBe(200);
      const page = response.body as Page;
      expect(page['@odata.context']).toBe(
        `${f.origin}/beta/$metadata#deviceAppManagement/mobileApps/${segment}`,
      );
      expect(page['@odata.count']).toBe(expected.length);
      expect(page.value.map((a) => a.id).sort()).toEqual(expected.map((a) => a.id).sort());
      const count = await f.call('GET', `${appsPath}/${segment}/$count`, f.auth.a);
      expect(count.text).toBe(String(expected.length));
    }
    expect((await f.call('GET', `${appsPath}/$count`, f.auth.a)).text).toBe(String(apps.length));
  });

  it('honours $filter, $orderby, $select and pages with nextLink exactly once', async () => {
    const named = apps.find((a) => typeof a.bundleId === 'string') as Json;
    const byBundle = await f.call('GET', `${appsPath}?$filter=bundleId eq '${named.bundleId}'`, f.auth.a);
    expect((byBundle.body as Page).value.map((a) => a.id)).toEqual(
      apps.filter((a) => a.bundleId === named.bundleId).map((a) => a.id),
    );
    const byToken = await readAll(`${appsPath}?$filter=vppTokenId eq '${duplicateId}'&$top=7`);
    expect(byToken.items.every((a) => a.vppTokenId === duplicateId)).toBe(true);
    expect(byToken.items).toHaveLength(apps.filter((a) => a.vppTokenId === duplicateId).length);
    const prefix = String(named.displayName).slice(0, 3).toLowerCase();
    const byName = await readAll(
      `${appsPath}?$filter=startswith(displayName,'${encodeURIComponent(prefix)}')`,
    );
    expect(byName.items.map((a) => a.id).sort()).toEqual(
      apps
        .filter((a) =>
          String(a.displayName ?? '')
            .toLowerCase()
            .startsWith(prefix),
        )
        .map((a) => a.id)
        .sort(),
    );
    const busy = await readAll(`${appsPath}?$filter=usedLicenseCount gt 10 and vppTokenId eq '${smallId}'`);
    expect(busy.items.map((a) => a.id).sort()).toEqual(
      apps
        .filter((a) => (a.usedLicenseCount as number) > 10 && a.vppTokenId === smallId)
        .map((a) => a.id)
        .sort(),
    );

    const ordered = await readAll(`${appsPath}?$orderby=displayName desc&$top=9&$select=displayName`);
    expect(ordered.pages).toBe(Math.ceil(apps.length / 9));
    expect(ordered.items).toHaveLength(apps.length);
    expect(new Set(ordered.items.map((a) => a.id)).size).toBe(apps.length);
    const names = ordered.items.map((a) => a.displayName as string | null);
    for (let i = 1; i < names.length; i += 1) {
      const [prev, cur] = [names[i - 1], names[i]];
      if (prev !== null && prev !== undefined && cur !== null && cur !== undefined)
        expect(prev >= cur).toBe(true);
    }
    expect(Object.keys(ordered.items[0] ?? {}).sort()).toEqual(['@odata.type', 'displayName', 'id']);
  });

  it('rejects query options it cannot honour with 400, never ignoring them', async () => {
    for (const query of [
      '$filter=publisher eq null',
      '$orderby=description',
      '$select=nope',
      '$expand=categories',
      '$expand=assignments($select=id)',
      "$filter=isof(displayName,'microsoft.graph.iosVppApp')",
      "$filter=isof('microsoft.graph.user')",
      "$filter=isof('iosVppApp')",
      '$skiptoken=garbage',
    ]) {
      const response = await f.call('GET', `${appsPath}?${query}`, f.auth.a);
      expect(response.status, query).toBe(400);
      expect((response.body as { error: { code: string } }).error.code).toBe('BadRequest');
    }
  });

  it("lists the ways scripts list VPP apps: isof('<type>') alone and with and/or/not", async () => {
    const ios = apps.filter((a) => a['@odata.type'] === '#microsoft.graph.iosVppApp');
    const mac = apps.filter((a) => a['@odata.type'] === '#microsoft.graph.macOsVppApp');
    expect(ios.length).toBeGreaterThan(0);
    expect(mac.length).toBeGreaterThan(0);
    const ids = (items: Json[]) => items.map((a) => a.id).sort();
    const filtered = async (filter: string) =>
      ids((await readAll(`${appsPath}?$top=999&$filter=${encodeURIComponent(filter)}`)).items);
    // graph-js samples and C# `isOf`: quoted; the OData ABNF form is unquoted.
    expect(await filtered("isof('microsoft.graph.iosVppApp')")).toEqual(ids(ios));
    expect(await filtered('isof(microsoft.graph.macOsVppApp)')).toEqual(ids(mac));
    expect(await filtered("isof('graph.iosVppApp')")).toEqual(ids(ios));
    expect(await filtered("isof('microsoft.graph.mobileApp')")).toEqual(ids(apps));
    expect(await filtered("isof('microsoft.graph.managedApp')")).toEqual([]);
    expect(await filtered("isof('microsoft.graph.win32LobApp')")).toEqual([]);
    expect(await filtered("not isof('microsoft.graph.iosVppApp')")).toEqual(ids(mac));
    expect(
      await filtered("isof('microsoft.graph.iosVppApp') or isof('microsoft.graph.macOsVppApp')"),
    ).toEqual(ids(apps));
    const named = ios[0]?.displayName as string;
    expect(
      await filtered(`isof('microsoft.graph.iosVppApp') and displayName eq '${named.replaceAll("'", "''")}'`),
    ).toEqual(ids(ios.filter((a) => a.displayName === named)));
    expect(await filtered("isof('microsoft.graph.macOsVppApp') eq false")).toEqual(ids(ios));
    const count = await f.call(
      'GET',
      `${appsPath}/$count?$filter=${encodeURIComponent("isof('microsoft.graph.iosVppApp')")}`,
      f.auth.a,
    );
    expect(count.text).toBe(String(ios.length));
    // On a cast collection, the sibling type matches nothing.
    expect(
      ids(
        (
          await readAll(
            `${appsPath}/microsoft.graph.iosVppApp?$filter=${encodeURIComponent("isof('microsoft.graph.macOsVppApp')")}`,
          )
        ).items,
      ),
    ).toEqual([]);
  });

  it('assignments: always empty, as a navigation and as $expand', async () => {
    const app = apps[0] as Json;
    const direct = await f.call('GET', `${appsPath}/${app.id}/assignments?$count=true`, f.auth.a);
    expect(direct.status).toBe(200);
    expect(direct.body).toEqual({
      '@odata.context': `${f.origin}/beta/$metadata#deviceAppManagement/mobileApps('${app.id}')/assignments`,
      '@odata.count': 0,
      value: [],
    });
    const missing = await f.call(
      'GET',
      `${appsPath}/00000000-0000-0000-0000-000000000000/assignments`,
      f.auth.a,
    );
    expect(missing.status).toBe(404);
    const expanded = await f.call('GET', `${appsPath}?$top=2&$expand=assignments`, f.auth.a);
    expect(expanded.status).toBe(200);
    for (const item of (expanded.body as Page).value) expect(item.assignments).toEqual([]);
    const one = await f.call(
      'GET',
      `${appsPath}/${app.id}?$expand=assignments&$select=displayName`,
      f.auth.a,
    );
    expect(Object.keys(one.body as Json).sort()).toEqual([
      '@odata.context',
      '@odata.type',
      'assignments',
      'displayName',
      'id',
    ]);
  });

  it('v1.0 serves what Graph v1.0 has: iosVppApp without beta properties, no macOsVppApp', async () => {
    const v1 = '/v1.0/deviceAppManagement/mobileApps';
    const list = await readAll(`${v1}?$top=999`);
    const ios = apps.filter((a) => a['@odata.type'] === '#microsoft.graph.iosVppApp');
    expect(list.items.map((a) => a.id).sort()).toEqual(ios.map((a) => a.id).sort());
    const first = list.items[0] as Json;
    for (const betaOnly of [
      'vppTokenId',
      'vppTokenDisplayName',
      'roleScopeTagIds',
      'revokeLicenseActionResults',
    ])
      expect(first, betaOnly).not.toHaveProperty(betaOnly);
    const mac = apps.find((a) => a['@odata.type'] === '#microsoft.graph.macOsVppApp') as Json;
    expect((await f.call('GET', `${v1}/${mac.id}`, f.auth.a)).status).toBe(404);
    expect((await f.call('GET', `${v1}/microsoft.graph.macOsVppApp`, f.auth.a)).status).toBe(404);
    expect((await f.call('GET', `${v1}/${first.id}/microsoft.graph.iosVppApp`, f.auth.a)).status).toBe(200);
    expect(
      (await f.call('GET', `${v1}/${first.id}/microsoft.graph.iosVppApp/assignedLicenses`, f.auth.a)).status,
    ).toBe(404);
    expect((await f.call('GET', `${v1}/${first.id}/assignments`, f.auth.a)).status).toBe(200);
    const isof = await f.call(
      'GET',
      `${v1}/$count?$filter=${encodeURIComponent("isof('microsoft.graph.iosVppApp')")}`,
      f.auth.a,
    );
    expect(isof.text).toBe(String(ios.length));
    const unknown = await f.call(
      'GET',
      `${v1}?$filter=${encodeURIComponent("isof('microsoft.graph.macOsVppApp')")}`,
      f.auth.a,
    );
    expect(unknown.status).toBe(400);
    expect((await f.call('GET', `${v1}?$filter=vppTokenId eq 'x'`, f.auth.a)).status).toBe(400);
  });

  it('keeps tenants apart: another tenant sees no apps and reads an id like a missing one', async () => {
    const list = await f.call('GET', `${appsPath}?$count=true`, f.auth.b);
    expect(list.status).toBe(200);
    expect((list.body as Page).value).toEqual([]);
    expect((list.body as Page)['@odata.count']).toBe(0);
    const id = apps[0]?.id as string;
    const other = await f.call('GET', `${appsPath}/${id}`, f.auth.b);
    expect(other.status).toBe(404);
    expect(
      (await f.call('GET', `${appsPath}/${id}/microsoft.graph.iosVppApp/assignedLicenses`, f.auth.b)).status,
    ).toBe(404);
    expect((await f.call('GET', `${appsPath}/$count`, f.auth.b)).text).toBe('0');
  });

  it('needs a read permission and answers 405 for writes', async () => {
    expect((await f.call('GET', appsPath, '')).status).toBe(401);
    expect((await f.call('GET', appsPath, f.auth.aReadOnly)).status).toBe(200);
    const post = await f.call('POST', appsPath, f.auth.a, {});
    expect(post.status).toBe(405);
    expect((await f.call('DELETE', `${appsPath}/${apps[0]?.id}`, f.auth.a)).status).toBe(405);
  });

  it('pages assignedLicenses in Apple order: every license of the app once, typed device or user', async () => {
    const sToken = f.sim.tokenFor('small');
    const assignments = await allRecords(f.appleTruth.assignments(sToken));
    // The app with the most licenses, so paging has work to do.
    const perAsset = new Map<string, number>();
    for (const a of assignments)
      perAsset.set(`${a.adamId}/${a.pricingParam}`, (perAsset.get(`${a.adamId}/${a.pricingParam}`) ?? 0) + 1);
    const iosApps = apps.filter(
      (a) => a.vppTokenId === smallId && a['@odata.type'] === '#microsoft.graph.iosVppApp',
    );
    const assetOf = (app: Json) =>
      smallAssets.find(
        (s) =>
          `https://apps.apple.com/us/app/id${s.adamId}` === app.appStoreUrl &&
          s.totalCount === app.totalLicenseCount &&
          s.assignedCount === app.usedLicenseCount,
      ) as AppleAsset;
    const target = iosApps.reduce((best, app) => {
      const a = assetOf(app);
      const b = assetOf(best);
      return (perAsset.get(`${a.adamId}/${a.pricingParam}`) ?? 0) >
        (perAsset.get(`${b.adamId}/${b.pricingParam}`) ?? 0)
        ? app
        : best;
    });
    const asset = assetOf(target);
    const expected = assignments.filter(
      (a) => a.adamId === asset.adamId && a.pricingParam === asset.pricingParam,
    );
    expect(expected.length).toBeGreaterThan(20);

    const path = `${appsPath}/${target.id}/microsoft.graph.iosVppApp/assignedLicenses`;
    const first = await f.call('GET', `${path}?$count=true&$top=7`, f.auth.a);
    expect(first.status).toBe(200);
    const firstPage = first.body as Page;
    expect(firstPage['@odata.count']).toBe(expected.length);
    expect(firstPage['@odata.context']).toBe(
      `${f.origin}/beta/$metadata#deviceAppManagement/mobileApps('${target.id}')/microsoft.graph.iosVppApp/assignedLicenses`,
    );
    const { items, pages } = await readAll(`${path}?$top=7`);
    expect(pages).toBe(Math.ceil(expected.length / 7));
    expect(items).toHaveLength(expected.length);
    expect(new Set(items.map((l) => l.id)).size).toBe(expected.length);
    expected.forEach((assignment, i) => {
      const license = items[i] as Json;
      if (assignment.serialNumber !== undefined) {
        expect(license).toEqual({
          '@odata.type': '#microsoft.graph.iosVppAppAssignedDeviceLicense',
          id: license.id,
          userEmailAddress: null,
          userId: null,
          userName: null,
          userPrincipalName: null,
          deviceName: null,
          managedDeviceId: null,
        });
      } else {
        expect(license['@odata.type']).toBe('#microsoft.graph.iosVppAppAssignedUserLicense');
        expect(license.userId).toBe(assignment.clientUserId);
      }
    });
    // Ids are stable: the same license reads with the same id again.
    const again = await f.call('GET', `${path}?$top=3`, f.auth.a);
    expect((again.body as Page).value.map((l) => l.id)).toEqual(items.slice(0, 3).map((l) => l.id));
    for (const query of ['$skip=3', '$filter=userId eq null', '$orderby=userId']) {
      expect((await f.call('GET', `${path}?${query}`, f.auth.a)).status, query).toBe(400);
    }
    const mac = apps.find((a) => a['@odata.type'] === '#microsoft.graph.macOsVppApp') as Json;
    expect(
      (await f.call('GET', `${appsPath}/${mac.id}/microsoft.graph.iosVppApp/assignedLicenses`, f.auth.a))
        .status,
    ).toBe(404);
    const macLicenses = await f.call(
      'GET',
      `${appsPath}/${mac.id}/microsoft.graph.macOsVppApp/assignedLicenses`,
      f.auth.a,
    );
    expect(macLicenses.status).toBe(200);
    for (const license of (macLicenses.body as Page).value) {
      expect(license['@odata.type']).toBe('#microsoft.graph.macOsVppAppAssignedLicense');
    }
  });
});
