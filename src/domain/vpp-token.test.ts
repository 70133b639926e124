import { describe, expect, it } from 'vitest';
import { decodeSToken, encodeSToken } from './stoken.js';
import { neverSyncedIso } from './sync-lifecycle.js';
import {
  applyTokenWrite,
  createVppToken,
  serverOwnedTokenProperties,
  validateTokenWrite,
  writableTokenProperties,
} from './vpp-token.js';

const now = new Date('2026-11-24T09:00:00Z');
const content = encodeSToken({
  token: 'opaque',
  expDate: new Date('2027-11-24T00:00:00Z'),
  orgName: 'Contoso',
});

function buildToken(overrides: Parameters<typeof validateTokenWrite>[0] = {}) {
  const write = validateTokenWrite({ token: content, ...(overrides as object) }, { mode: 'create' });
  return createVppToken({ id: 'id-1', tenantId: 'tenant-1', decoded: decodeSToken(content), write, now });
}

describe('createVppToken', () => {
  it("applies Graph's defaults", () => {
    const token = buildToken();
    expect(token).toMatchObject({
      state: 'unknown',
      lastSyncStatus: 'none',
      automaticallyUpdateApps: false,
      dataSharingConsentGranted: false,
      claimTokenManagementFromExternalMdm: false,
      vppTokenAccountType: 'business',
      appleDeviceAppDeliveryProtocolType: 'default',
      organizationName: 'Contoso',
      tokenActionResults: [],
      roleScopeTagIds: [],
      displayName: null,
      locationName: null,
    });
    expect(token.lastSyncDateTime.toISOString()).toBe(neverSyncedIso);
    expect(token.expirationDateTime.toISOString()).toBe('2027-11-24T00:00:00.000Z');
    expect(token.lastModifiedDateTime).toBe(now);
    expect(token).not.toHaveProperty('token');
  });

  it('takes the writable properties from the body', () => {
    const token = buildToken({
      displayName: 'Main campus',
      vppTokenAccountType: 'education',
      automaticallyUpdateApps: true,
      roleScopeTagIds: ['0', '7'],
      appleDeviceAppDeliveryProtocolType: 'declarativeDeviceManagement',
    });
    expect(token).toMatchObject({
      displayName: 'Main campus',
      vppTokenAccountType: 'education',
      automaticallyUpdateApps: true,
      roleScopeTagIds: ['0', '7'],
      appleDeviceAppDeliveryProtocolType: 'declarativeDeviceManagement',
    });
  });
});

describe('validateTokenWrite', () => {
  it('every property is either writable or server-owned, never both', () => {
    const both = writableTokenProperties.filter((p) =>
      (serverOwnedTokenProperties as readonly string[]).includes(p),
    );
    expect(both).toEqual([]);
  });

  it.each(serverOwnedTokenProperties)('ignores server-owned %s, as Graph does', (property) => {
    expect(validateTokenWrite({ token: content, [property]: 'x' }, { mode: 'create' })).toEqual({
      token: content,
    });
    expect(validateTokenWrite({ [property]: 'x', displayName: 'd' }, { mode: 'update' })).toEqual({
      displayName: 'd',
    });
  });

  it('ignores annotations and a null token; checks @odata.type', () => {
    const body = {
      '@odata.context': 'https://graph.microsoft.com/beta/$metadata#deviceAppManagement/vppTokens/$entity',
      '@odata.etag': 'W/"1"',
      '@odata.type': '#microsoft.graph.vppToken',
      'displayName@odata.type': '#String',
      token: null,
      displayName: 'x',
    };
    expect(validateTokenWrite(body, { mode: 'update' })).toEqual({ displayName: 'x' });
    expect(() => validateTokenWrite(body, { mode: 'create' })).toThrowError(/'token' is required/);
    expect(() =>
      validateTokenWrite({ '@odata.type': '#microsoft.graph.user' }, { mode: 'update' }),
    ).toThrowError(/@odata.type/);
  });

  it('rejects unknown properties, wrong types and misspelled enum members', () => {
    expect(() => validateTokenWrite({ token: content, colour: 'red' }, { mode: 'create' })).toThrowError(
      /'colour' does not exist/,
    );
    expect(() => validateTokenWrite({ automaticallyUpdateApps: 'yes' }, { mode: 'update' })).toThrowError(
      /must be a boolean/,
    );
    expect(() => validateTokenWrite({ displayName: 5 }, { mode: 'update' })).toThrowError(/string or null/);
    expect(() => validateTokenWrite({ displayName: 'x'.repeat(2000) }, { mode: 'update' })).toThrowError(
      /at most 1024/,
    );
    expect(() => validateTokenWrite({ roleScopeTagIds: [1] }, { mode: 'update' })).toThrowError(
      /array of strings/,
    );
    expect(() => validateTokenWrite({ vppTokenAccountType: 'Business' }, { mode: 'update' })).toThrowError(
      /Property 'vppTokenAccountType'.*Allowed members: business, education/,
    );
    expect(() =>
      validateTokenWrite({ appleDeviceAppDeliveryProtocolType: 'ddm' }, { mode: 'update' }),
    ).toThrowError(/appleDeviceAppDeliveryProtocolType/);
    expect(() => validateTokenWrite({ token: 42 }, { mode: 'update' })).toThrowError(/must be a string/);
    for (const body of [null, [], 'x', 1]) {
      expect(() => validateTokenWrite(body, { mode: 'update' })).toThrowError(/JSON object/);
    }
  });

  it('requires token on create only', () => {
    expect(() => validateTokenWrite({ displayName: 'x' }, { mode: 'create' })).toThrowError(
      /'token' is required/,
    );
    expect(validateTokenWrite({ displayName: 'x' }, { mode: 'update' })).toEqual({ displayName: 'x' });
  });

  it('accepts the entity @odata.type and rejects others', () => {
    expect(validateTokenWrite({ '@odata.type': '#microsoft.graph.vppToken' }, { mode: 'update' })).toEqual(
      {},
    );
    expect(() =>
      validateTokenWrite({ '@odata.type': '#microsoft.graph.user' }, { mode: 'update' }),
    ).toThrow();
  });

  it('v1.0 does not know beta-only properties', () => {
    expect(() =>
      validateTokenWrite(
        { appleDeviceAppDeliveryProtocolType: 'default' },
        { mode: 'update', version: 'v1.0' },
      ),
    ).toThrowError(/does not exist/);
  });
});

describe('applyTokenWrite', () => {
  it('renames without touching sync fields', () => {
    const token = buildToken();
    const later = new Date('2026-11-25T00:00:00Z');
    const next = applyTokenWrite(token, { displayName: 'Renamed' }, later);
    expect(next).toMatchObject({ displayName: 'Renamed', lastModifiedDateTime: later, state: 'unknown' });
    expect(next.lastSyncStatus).toBe(token.lastSyncStatus);
  });

  it('a renewal re-decodes organization and expiry and resets state', () => {
    const token = { ...buildToken(), state: 'expired' as const };
    const renewed = encodeSToken({
      token: 'new',
      expDate: new Date('2028-01-01T00:00:00Z'),
      orgName: 'Contoso Ltd',
    });
    const next = applyTokenWrite(token, { token: renewed }, now, decodeSToken(renewed));
    expect(next).toMatchObject({ organizationName: 'Contoso Ltd', state: 'unknown' });
    expect(next.expirationDateTime.toISOString()).toBe('2028-01-01T00:00:00.000Z');
    expect(next).not.toHaveProperty('token');
  });
});
