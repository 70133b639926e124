import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isVppdError } from '../src/domain/errors.js';
import {
  assignedLicenseId,
  tokenPrefixOfAppId,
  vppAppId,
  vppAppTokenPrefix,
} from '../src/graph/vpp-app-presenter.js';
import { parseFunctionStringParameter } from '../src/graph/vpp-token-collection-actions-routes.js';

const quote = (value: string) => `'${value.replaceAll("'", "''")}'`;

describe('parseFunctionStringParameter', () => {
  it('inverts OData quoting for any string', () => {
    fc.assert(
      fc.property(fc.string(), (value) => {
        expect(parseFunctionStringParameter(`(bundleId=${quote(value)})`, 'f', 'bundleId')).toBe(value);
        expect(parseFunctionStringParameter(`( bundleId = ${quote(value)} )`, 'f', 'bundleId')).toBe(value);
      }),
      { numRuns: 500 },
    );
  });

  it('only ever returns a value or throws a 400-class VppdError', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        try {
          expect(typeof parseFunctionStringParameter(text, 'f', 'bundleId')).toBe('string');
        } catch (error) {
          expect(isVppdError(error, 'badRequest') || isVppdError(error, 'notSupported')).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ["(bundleId='a''b')", "a'b"],
    ["(bundleId='')", ''],
    ["(bundleId='''')", "'"],
    ["(bundleId='com.example.app')", 'com.example.app'],
  ])('%s → %s', (args, expected) => {
    expect(parseFunctionStringParameter(args, 'f', 'bundleId')).toBe(expected);
  });

  it.each([
    [''],
    ['()'],
    ["(bundleId='a'b')"],
    ["(bundleId='a')x"],
    ["(bundleId='a'"],
    ['(bundleId=a)'],
    ["(BundleId='a')"],
    ["(bundleId='a',x='b')"],
  ])('rejects %s', (args) => {
    expect(() => parseFunctionStringParameter(args, 'f', 'bundleId')).toThrowError(/bundleId|parameter/);
  });

  it('names parameter aliases as unsupported', () => {
    expect(() => parseFunctionStringParameter('(bundleId=@b)', 'f', 'bundleId')).toThrowError(/alias/);
  });
});

describe('VPP app ids', () => {
  const guid = fc.uuid();
  const key = fc.record({
    tokenId: guid,
    adamId: fc.stringMatching(/^\d{1,12}$/),
    pricingParam: fc.constantFrom('STDQ', 'PLUS'),
  });

  it('are stable RFC 4122 version-5 GUIDs that start with their token’s prefix', () => {
    fc.assert(
      fc.property(key, (k) => {
        const id = vppAppId(k);
        expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        expect(vppAppId({ ...k, tokenId: k.tokenId.toUpperCase() })).toBe(id);
        expect(tokenPrefixOfAppId(id)).toBe(vppAppTokenPrefix(k.tokenId));
        expect(tokenPrefixOfAppId(id.toUpperCase())).toBe(vppAppTokenPrefix(k.tokenId));
      }),
    );
  });

  it('differ for different apps and licenses', () => {
    fc.assert(
      fc.property(key, key, (a, b) => {
        fc.pre(a.tokenId !== b.tokenId || a.adamId !== b.adamId || a.pricingParam !== b.pricingParam);
        expect(vppAppId(a)).not.toBe(vppAppId(b));
      }),
    );
    const k = { tokenId: '11111111-1111-4111-8111-111111111111', adamId: '1', pricingParam: 'STDQ' };
    const device = assignedLicenseId(k, { seq: 0, serialNumber: 'X', clientUserId: null });
    const user = assignedLicenseId(k, { seq: 0, serialNumber: null, clientUserId: 'X' });
    expect(device).not.toBe(user);
    expect(assignedLicenseId(k, { seq: 9, serialNumber: 'X', clientUserId: null })).toBe(device);
    expect(tokenPrefixOfAppId('not-a-guid')).toBeUndefined();
  });
});
