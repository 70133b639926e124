import { describe, expect, it } from 'vitest';
import {
  AppleShapeError,
  parseAssignment,
  parseClientConfig,
  parseContentMetadata,
  parsePage,
  parseServiceConfig,
} from './apple-types.js';

describe('Apple wire parsers', () => {
  it('reads maxRequestPerSecond from limits and the metadata URL from urls', () => {
    const config = parseServiceConfig({
      limits: { maxRequestPerSecond: 12, maxAssets: 25, bogus: 'x' },
      urls: { contentMetadataLookup: 'https://lookup.example/lookup' },
      errorCodes: [{ errorNumber: 9621, errorMessage: 'Expired' }, { nope: 1 }],
    });
    expect(config.maxRequestPerSecond).toBe(12);
    expect(config.limits).toEqual({ maxRequestPerSecond: 12, maxAssets: 25 });
    expect(config.contentMetadataLookupUrl).toBe('https://lookup.example/lookup');
    expect(config.errorCodes).toEqual([{ errorNumber: 9621, errorMessage: 'Expired' }]);
    expect(parseServiceConfig({}).maxRequestPerSecond).toBeUndefined();
  });

  it('reads client config with and without mdmInfo', () => {
    const claimed = parseClientConfig({
      uId: '2049',
      locationName: 'HQ',
      mdmInfo: { id: 'a', name: 'vppd' },
    });
    expect(claimed.mdmInfo).toEqual({ id: 'a', name: 'vppd' });
    expect(parseClientConfig({ uId: 7, mdmInfo: {} }).mdmInfo).toBeUndefined();
    expect(parseClientConfig({ uId: 7 }).uId).toBe('7');
    expect(() => parseClientConfig({ locationName: 'x' })).toThrow(AppleShapeError);
    expect(() => parseClientConfig([])).toThrow(AppleShapeError);
  });

  it('requires exactly one holder on an assignment', () => {
    expect(parseAssignment({ adamId: '1', pricingParam: 'STDQ', serialNumber: 'C02' })).toEqual({
      adamId: '1',
      pricingParam: 'STDQ',
      serialNumber: 'C02',
    });
    expect(() => parseAssignment({ adamId: '1', pricingParam: 'STDQ' })).toThrow(/exactly one/);
    expect(() =>
      parseAssignment({ adamId: '1', pricingParam: 'STDQ', serialNumber: 'a', clientUserId: 'b' }),
    ).toThrow(/exactly one/);
  });

  it('gives the same assignment on the all-strings path and the general path', () => {
    // Extra fields are dropped and only one holder key is set, whichever path a record takes.
    expect(
      parseAssignment({ adamId: '1', pricingParam: 'STDQ', clientUserId: 'u', extra: { big: true } }),
    ).toStrictEqual({ adamId: '1', pricingParam: 'STDQ', clientUserId: 'u' });
    expect(parseAssignment({ adamId: 1, pricingParam: 'STDQ', serialNumber: 'C02' })).toStrictEqual({
      adamId: '1',
      pricingParam: 'STDQ',
      serialNumber: 'C02',
    });
    expect(
      parseAssignment({ adamId: '1', pricingParam: 'STDQ', serialNumber: null, clientUserId: 'u' }),
    ).toStrictEqual({ adamId: '1', pricingParam: 'STDQ', clientUserId: 'u' });
    expect(parseAssignment({ adamId: '1', pricingParam: 'STDQ', serialNumber: 42 })).toStrictEqual({
      adamId: '1',
      pricingParam: 'STDQ',
      serialNumber: '42',
    });
    expect(() =>
      parseAssignment({ adamId: '1', pricingParam: 'STDQ', serialNumber: 'a', clientUserId: 7 }),
    ).toThrow(/exactly one/);
    expect(() => parseAssignment({ pricingParam: 'STDQ', serialNumber: 'a' })).toThrow(
      'assignment.adamId is missing or not a string',
    );
    expect(() => parseAssignment({ adamId: '1', pricingParam: true, serialNumber: 'a' })).toThrow(
      'assignment.pricingParam is missing or not a string',
    );
    expect(() => parseAssignment(null)).toThrow('assignment is not a JSON object');
    expect(() => parseAssignment(['1', 'STDQ'])).toThrow('assignment is not a JSON object');
    const tagged = Object.assign([], { adamId: '1', pricingParam: 'STDQ', serialNumber: 'a' });
    expect(() => parseAssignment(tagged)).toThrow(AppleShapeError);
  });

  it('parses a page envelope and tolerates an empty last page without totalPages', () => {
    const page = parsePage(
      {
        assignments: [{ adamId: '1', pricingParam: 'STDQ', clientUserId: 'u1' }],
        currentPageIndex: 2,
        nextPageIndex: 3,
        totalPages: 9,
        size: 1,
        versionId: 'abc',
        uId: '2049',
      },
      'assignments',
      parseAssignment,
    );
    expect(page).toMatchObject({ currentPageIndex: 2, nextPageIndex: 3, totalPages: 9, versionId: 'abc' });
    expect(page.records).toHaveLength(1);
    // The text a page was parsed from tells whether any of its strings has an escape.
    const plain = '{"assignments":[{"adamId":"1","pricingParam":"STDQ","serialNumber":"C02X"}]}';
    expect(parsePage(JSON.parse(plain), 'assignments', parseAssignment, plain).escapeFree).toBe(true);
    const escaped = '{"assignments":[{"adamId":"1","pricingParam":"STDQ","clientUserId":"a\\"b"}]}';
    const parsed = parsePage(JSON.parse(escaped), 'assignments', parseAssignment, escaped);
    expect(parsed.records[0]?.clientUserId).toBe('a"b');
    expect(parsed.escapeFree).toBe(false);
    const empty = parsePage({ versionId: 'v' }, 'assignments', parseAssignment);
    expect(empty).toMatchObject({ totalPages: 1, nextPageIndex: undefined, size: 0, records: [] });
    expect(() => parsePage({ assignments: {} }, 'assignments', parseAssignment)).toThrow(AppleShapeError);
  });

  it('maps metadata lookup results by adamId and skips junk', () => {
    const result = parseContentMetadata({
      results: {
        '361309726': {
          name: 'Pages',
          bundleId: 'com.apple.iWork.Pages',
          kind: 'mac-software',
          artwork: { url: 'https://icon/{w}x{h}.png' },
          deviceFamilies: ['mac', 3],
        },
        '1': null,
      },
    });
    expect([...result.keys()]).toEqual(['361309726']);
    expect(result.get('361309726')).toMatchObject({
      name: 'Pages',
      bundleId: 'com.apple.iWork.Pages',
      artworkUrl: 'https://icon/{w}x{h}.png',
      deviceFamilies: ['mac'],
    });
    expect(parseContentMetadata({}).size).toBe(0);
  });
});
