// Independent-client checks: the official beta SDK's Kiota models deserialize every new response
// shape of the VPP surface. Request information is built by hand from the generator's URL templates
// (the fluent deviceAppManagement/deviceManagement builders are not published here).
import { HttpMethod, type Parsable, type ParseNode, RequestInformation } from '@microsoft/kiota-abstractions';
import type { GraphBetaRequestAdapter } from '@microsoft/msgraph-beta-sdk';
import {
  createIosVppAppAssignedLicenseCollectionResponseFromDiscriminatorValue,
  createMobileAppCollectionResponseFromDiscriminatorValue,
  createMobileAppFromDiscriminatorValue,
  createVppTokenFromDiscriminatorValue,
  createVppTokenLicenseSummaryFromDiscriminatorValue,
  type IosVppApp,
  type IosVppAppAssignedDeviceLicense,
  type IosVppAppAssignedLicenseCollectionResponse,
  type MacOsVppApp,
  type MobileApp,
  type MobileAppCollectionResponse,
  type VppToken,
  type VppTokenLicenseSummary,
  type VppTokenRevokeLicensesActionResult,
} from '@microsoft/msgraph-beta-sdk/models/index.js';
import type { ODataError } from '@microsoft/msgraph-beta-sdk/models/oDataErrors/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBetaAdapter, graphErrorMappings } from './helpers/kiota-vpp-tokens.js';
import { type SurfaceFixture, startSurfaceFixture, surfaceTenantA } from './helpers/vpp-surface-fixture.js';

// The generator's URL templates of the request builders used below.
const mobileAppsTemplate =
  '{+baseurl}/deviceAppManagement/mobileApps{?%24count,%24expand,%24filter,%24orderby,%24search,%24select,%24skip,%24top}';
const mobileAppTemplate = '{+baseurl}/deviceAppManagement/mobileApps/{mobileApp%2Did}{?%24expand,%24select}';
const assignedLicensesTemplate =
  '{+baseurl}/deviceAppManagement/mobileApps/{mobileApp%2Did}/graph.iosVppApp/assignedLicenses{?%24count,%24expand,%24filter,%24orderby,%24search,%24select,%24skip,%24top}';
const licensesForAppTemplate =
  "{+baseurl}/deviceAppManagement/vppTokens/getLicensesForApp(bundleId='{bundleId}'){?%24count,%24filter,%24search,%24skip,%24top}";
const expiringCountTemplate =
  "{+baseurl}/deviceManagement/depOnboardingSettings/getExpiringVppTokenCount(expiringBeforeDateTime='{expiringBeforeDateTime}')";
const vppTokenTemplate = '{+baseurl}/deviceAppManagement/vppTokens/{vppToken%2Did}{?%24expand,%24select}';

/** The generated `GetLicensesForAppWithBundleIdGetResponse`: a collection of license summaries. */
interface LicensesForAppResponse extends Parsable {
  value?: VppTokenLicenseSummary[] | null;
}
const createLicensesForAppResponse = (_node: ParseNode | undefined) => (instance?: Parsable) => {
  const response = (instance ?? {}) as LicensesForAppResponse;
  return {
    value: (n: ParseNode) => {
      response.value = n.getCollectionOfObjectValues<VppTokenLicenseSummary>(
        createVppTokenLicenseSummaryFromDiscriminatorValue,
      );
    },
  };
};

/** The generated `GetExpiringVppTokenCount...GetResponse`: `{value: Int32}`. */
interface CountResponse extends Parsable {
  value?: number | null;
}
const createCountResponse = (_node: ParseNode | undefined) => (instance?: Parsable) => {
  const response = (instance ?? {}) as CountResponse;
  return {
    value: (n: ParseNode) => {
      response.value = n.getNumberValue();
    },
  };
};

describe('VPP surface through the official beta SDK (Kiota)', () => {
  let f: SurfaceFixture;
  let adapter: GraphBetaRequestAdapter;
  let smallId: string;

  const get = <T extends Parsable>(
    template: string,
    parameters: Record<string, string>,
    factory: Parameters<GraphBetaRequestAdapter['send']>[1],
    query?: Record<string, unknown>,
  ) => {
    const info = new RequestInformation(HttpMethod.GET, template, {
      baseurl: adapter.baseUrl,
      ...parameters,
    });
    if (query)
      info.configure({ queryParameters: query }, { top: '%24top', count: '%24count', select: '%24select' });
    info.headers.tryAdd('Accept', 'application/json');
    return adapter.send<T>(info, factory, graphErrorMappings);
  };

  beforeAll(async () => {
    f = await startSurfaceFixture();
    adapter = createBetaAdapter(`${f.origin}/beta`, f.auth.a.slice('Bearer '.length));
    smallId = await f.upload(f.auth.a, 'small');
    await f.syncFromSim(surfaceTenantA, smallId);
  });
  afterAll(async () => {
    await f?.close();
  });

  it('deserializes mobileApps as IosVppApp / MacOsVppApp with license counts and token fields', async () => {
    const page = await get<MobileAppCollectionResponse>(
      mobileAppsTemplate,
      {},
      createMobileAppCollectionResponseFromDiscriminatorValue,
      { top: 999, count: true },
    );
    const apps = page?.value ?? [];
    expect(apps.length).toBeGreaterThan(0);
    expect(page?.odataCount).toBe(apps.length);
    for (const app of apps) {
      expect(['#microsoft.graph.iosVppApp', '#microsoft.graph.macOsVppApp']).toContain(app.odataType);
      const vpp = app as IosVppApp | MacOsVppApp;
      expect(vpp.totalLicenseCount).toBeTypeOf('number');
      expect(vpp.usedLicenseCount).toBeTypeOf('number');
      expect(vpp.vppTokenId).toBe(smallId);
      expect(vpp.vppTokenAccountType).toBe('business');
      expect(vpp.vppTokenAppleId).toBe('vpp-small@example.com');
      expect(vpp.createdDateTime).toBeInstanceOf(Date);
      expect(vpp.licensingType?.supportsUserLicensing).toBe(true);
    }
    const ios = apps.find((a) => a.odataType === '#microsoft.graph.iosVppApp') as IosVppApp;
    expect(ios.applicableDeviceType?.iPhoneAndIPod).toBeTypeOf('boolean');

    const one = await get<MobileApp>(
      mobileAppTemplate,
      { 'mobileApp%2Did': ios.id as string },
      createMobileAppFromDiscriminatorValue,
    );
    expect(one?.odataType).toBe('#microsoft.graph.iosVppApp');
    const typed = one as IosVppApp;
    expect(typed.totalLicenseCount).toBe(ios.totalLicenseCount);
    expect(typed.usedLicenseCount).toBe(ios.usedLicenseCount);
    expect(typed.bundleId).toBe(ios.bundleId);
    expect(typed.vppTokenOrganizationName).toBe(ios.vppTokenOrganizationName);
  });

  it('deserializes assignedLicenses as device and user license subtypes', async () => {
    const page = await get<MobileAppCollectionResponse>(
      mobileAppsTemplate,
      {},
      createMobileAppCollectionResponseFromDiscriminatorValue,
      { top: 999 },
    );
    const busiest = (page?.value ?? [])
      .filter((a) => a.odataType === '#microsoft.graph.iosVppApp')
      .sort(
        (a, b) => ((b as IosVppApp).usedLicenseCount ?? 0) - ((a as IosVppApp).usedLicenseCount ?? 0),
      )[0] as IosVppApp;
    // The generator's template casts with the namespace alias (`graph.iosVppApp`), unchanged here.
    const licenses = await get<IosVppAppAssignedLicenseCollectionResponse>(
      assignedLicensesTemplate,
      { 'mobileApp%2Did': busiest.id as string },
      createIosVppAppAssignedLicenseCollectionResponseFromDiscriminatorValue,
      { top: 999, count: true },
    );
    const values = licenses?.value ?? [];
    expect(values.length).toBe(licenses?.odataCount);
    expect(values.length).toBe(busiest.usedLicenseCount);
    const types = new Set(values.map((l) => l.odataType));
    for (const type of types) {
      expect([
        '#microsoft.graph.iosVppAppAssignedDeviceLicense',
        '#microsoft.graph.iosVppAppAssignedUserLicense',
      ]).toContain(type);
    }
    for (const license of values) {
      expect(license.id).toMatch(/^[0-9a-f-]{36}$/);
      if (license.odataType === '#microsoft.graph.iosVppAppAssignedDeviceLicense') {
        // JSON null reads as absent in Kiota.
        expect((license as IosVppAppAssignedDeviceLicense).managedDeviceId ?? null).toBeNull();
      } else {
        expect(license.userId).toBeTypeOf('string');
      }
    }
  });

  it('deserializes getLicensesForApp summaries and the expiring-token count', async () => {
    const page = await get<MobileAppCollectionResponse>(
      mobileAppsTemplate,
      {},
      createMobileAppCollectionResponseFromDiscriminatorValue,
      { top: 999 },
    );
    const app = (page?.value ?? []).find((a) => typeof (a as IosVppApp).bundleId === 'string') as IosVppApp;
    const summaries = await get<LicensesForAppResponse>(
      licensesForAppTemplate,
      { bundleId: app.bundleId as string },
      createLicensesForAppResponse,
    );
    expect(summaries?.value).toHaveLength(1);
    const summary = summaries?.value?.[0] as VppTokenLicenseSummary;
    expect(summary.vppTokenId).toBe(smallId);
    expect(summary.appleId).toBe('vpp-small@example.com');
    expect(summary.usedLicenseCount).toBeTypeOf('number');
    expect(summary.availableLicenseCount).toBeTypeOf('number');

    const count = await get<CountResponse>(
      expiringCountTemplate,
      { expiringBeforeDateTime: '2099-01-01T00:00:00Z' },
      createCountResponse,
    );
    expect(count?.value).toBe(1);
  });

  it('reads the revoke result as VppTokenRevokeLicensesActionResult and errors as ODataError', async () => {
    const response = await f.call(
      'POST',
      `/beta/deviceAppManagement/vppTokens/${smallId}/revokeLicenses`,
      f.auth.a,
      {
        notifyManagedDevices: false,
      },
    );
    expect(response.status).toBe(204);
    await f.context.revokes.idle();
    const token = await get<VppToken>(
      vppTokenTemplate,
      { 'vppToken%2Did': smallId },
      createVppTokenFromDiscriminatorValue,
    );
    const result = token?.tokenActionResults?.find(
      (r) => r.actionName === 'revokeLicenses',
    ) as VppTokenRevokeLicensesActionResult;
    expect(result.odataType).toBe('#microsoft.graph.vppTokenRevokeLicensesActionResult');
    expect(result.actionState).toBe('done');
    expect(result.actionFailureReason).toBe('none');
    expect(result.totalLicensesCount).toBeGreaterThan(0);
    expect(result.failedLicensesCount).toBe(0);

    const failures: [string, Record<string, string>, number][] = [
      [mobileAppTemplate, { 'mobileApp%2Did': '00000000-0000-5000-8000-000000000000' }, 404],
      [licensesForAppTemplate.replace("'{bundleId}'", '{bundleId}'), { bundleId: 'unquoted' }, 400],
      [expiringCountTemplate, { expiringBeforeDateTime: 'not a date' }, 400],
    ];
    for (const [template, parameters, status] of failures) {
      const error = (await get(template, parameters, createMobileAppFromDiscriminatorValue).then(
        () => undefined,
        (e: unknown) => e,
      )) as ODataError;
      expect(error?.responseStatusCode).toBe(status);
      expect(error?.errorEscaped?.code).toBe(status === 404 ? 'ResourceNotFound' : 'BadRequest');
      expect(error?.errorEscaped?.message).toBeTruthy();
      expect(error?.errorEscaped?.innerError?.requestId).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});
