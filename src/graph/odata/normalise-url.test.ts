import { describe, expect, it } from 'vitest';
import { createGraphUrlNormaliser } from './normalise-url.js';

const routes = [
  '/beta/$metadata',
  '/beta/deviceAppManagement/vppTokens',
  '/beta/deviceAppManagement/vppTokens/$count',
  '/beta/deviceAppManagement/vppTokens/:id',
  '/beta/deviceAppManagement/vppTokens/:id/syncLicenses',
  '/beta/deviceAppManagement/vppTokens/syncLicenseCounts',
  '/beta/deviceAppManagement/vppTokens/getLicensesForApp:args',
  '/beta/deviceAppManagement/mobileApps/:id',
  '/beta/deviceAppManagement/mobileApps/:id/microsoft.graph.iosVppApp/assignedLicenses',
  '/beta/deviceManagement/depOnboardingSettings/getExpiringVppTokenCount:args',
  '/vppd/v1/tokens/:id/sync',
];
const normaliser = createGraphUrlNormaliser();
for (const route of routes) normaliser.add(route);
const n = (url: string) => normaliser.normalise(url);
const id = '1d000000-0000-4000-8000-000000000003';
const base = '/beta/deviceAppManagement/vppTokens';

describe('createGraphUrlNormaliser', () => {
  it('leaves canonical URLs (and their query) exactly as sent', () => {
    for (const url of [base, `${base}?$top=1&_=17`, `${base}/${id}/syncLicenses`, '/beta/$metadata']) {
      expect(n(url)).toBe(url);
    }
  });

  it('resolves segments without regard to case, keeping the raw query', () => {
    expect(n('/BETA/deviceappmanagement/VPPTOKENS?$Filter=x%20eq%20%27A%27')).toBe(
      `${base}?$Filter=x%20eq%20%27A%27`,
    );
    expect(n(`${base}/${id}/SYNCLICENSES`)).toBe(`${base}/${id}/syncLicenses`);
    expect(n(`${base}/$COUNT`)).toBe(`${base}/$count`);
  });

  it('strips the namespace (or its alias) from bound operations, not from type casts', () => {
    expect(n(`${base}/${id}/microsoft.graph.syncLicenses`)).toBe(`${base}/${id}/syncLicenses`);
    expect(n(`${base}/graph.syncLicenseCounts`)).toBe(`${base}/syncLicenseCounts`);
    expect(n(`${base}/Microsoft.Graph.getLicensesForApp(bundleId='a.b')`)).toBe(
      `${base}/getLicensesForApp(bundleId='a.b')`,
    );
    expect(
      n(
        "/beta/deviceManagement/depOnboardingSettings/microsoft.graph.getExpiringVppTokenCount(expiringBeforeDateTime='x')",
      ),
    ).toBe(
      "/beta/deviceManagement/depOnboardingSettings/getExpiringVppTokenCount(expiringBeforeDateTime='x')",
    );
    expect(n('/beta/deviceAppManagement/mobileApps/a1/microsoft.graph.iosVppApp/assignedLicenses')).toBe(
      '/beta/deviceAppManagement/mobileApps/a1/microsoft.graph.iosVppApp/assignedLicenses',
    );
  });

  it("rewrites OData's key form and lower-cases GUID keys", () => {
    expect(n(`${base}('${id}')`)).toBe(`${base}/${id}`);
    expect(n(`${base}(%27${id.toUpperCase()}%27)/microsoft.graph.syncLicenses`)).toBe(
      `${base}/${id}/syncLicenses`,
    );
    expect(n(`${base}(${id})`)).toBe(`${base}/${id}`);
    expect(n(`${base}/${id.toUpperCase()}`)).toBe(`${base}/${id}`);
    expect(n("/beta/deviceAppManagement/mobileApps('it''s')")).toBe(
      "/beta/deviceAppManagement/mobileApps/it's",
    );
    expect(n("/beta/deviceAppManagement/mobileApps('a%2Fb')")).toBe(
      '/beta/deviceAppManagement/mobileApps/a%2Fb',
    );
  });

  it('stops at the first segment that matches nothing, so a 404 names it as sent', () => {
    expect(n('/beta/deviceappmanagement/vppTokenz/x')).toBe('/beta/deviceAppManagement/vppTokenz/x');
    expect(n(`${base}/${id}/microsoft.graph.unknown`)).toBe(`${base}/${id}/microsoft.graph.unknown`);
    expect(n(`${base}/getLicensesForAppX`)).toBe(`${base}/getLicensesForAppX`);
  });

  it('touches nothing outside the Graph versions', () => {
    expect(n(`/vppd/v1/tokens/${id.toUpperCase()}/sync`)).toBe(`/vppd/v1/tokens/${id.toUpperCase()}/sync`);
    expect(n('/HEALTHZ')).toBe('/HEALTHZ');
  });
});
