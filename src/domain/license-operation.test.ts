import { describe, expect, it } from 'vitest';
import { isVppdError } from './errors.js';
import { finalStatus, parseLicenseOperationRequest, planBatches } from './license-operation.js';

const limits = { maxAssets: 25, maxSerialNumbers: 1000, maxClientUserIds: 1000 };

describe('license operation rules', () => {
  it('splits assets × holders into Apple-sized batches covering every item once', () => {
    const assets = Array.from({ length: 30 }, (_, i) => ({ adamId: String(1000 + i), pricingParam: 'STDQ' }));
    const holders = Array.from({ length: 2500 }, (_, i) => `S${i}`);
    const batches = planBatches({ assets, holders, holderKind: 'serialNumber' }, limits);
    // 2 asset groups (25 + 5) × 3 holder groups (1000, 1000, 500).
    expect(batches.map((b) => [b.assets.length, b.holders.length])).toEqual([
      [25, 1000],
      [25, 1000],
      [25, 500],
      [5, 1000],
      [5, 1000],
      [5, 500],
    ]);
    const items = new Set<string>();
    for (const b of batches)
      for (const a of b.assets) for (const h of b.holders) items.add(`${a.adamId}/${h}`);
    expect(items.size).toBe(30 * 2500);
    expect(batches.reduce((n, b) => n + b.requestedCount, 0)).toBe(30 * 2500);
    const users = planBatches(
      { assets: assets.slice(0, 1), holders, holderKind: 'clientUserId' },
      {
        ...limits,
        maxClientUserIds: 700,
      },
    );
    expect(users.map((b) => b.holders.length)).toEqual([700, 700, 700, 400]);
  });

  it('parses a request: pricingParam defaults to STDQ, duplicates drop, exactly one holder list', () => {
    const parsed = parseLicenseOperationRequest('associate', {
      assets: [
        { adamId: '12' },
        { adamId: '12', pricingParam: 'STDQ' },
        { adamId: '12', pricingParam: 'PLUS' },
      ],
      serialNumbers: ['A', 'B', 'A', ' B '],
    });
    expect(parsed).toEqual({
      kind: 'associate',
      assets: [
        { adamId: '12', pricingParam: 'STDQ' },
        { adamId: '12', pricingParam: 'PLUS' },
      ],
      holderKind: 'serialNumber',
      holders: ['A', 'B'],
    });
    for (const body of [
      null,
      { assets: [{ adamId: '1' }] },
      { assets: [{ adamId: '1' }], clientUserIds: ['u\n'] },
    ]) {
      let error: unknown;
      try {
        parseLicenseOperationRequest('disassociate', body);
      } catch (e) {
        error = e;
      }
      expect(isVppdError(error, 'badRequest')).toBe(true);
    }
  });

  it('ends completed, failed or partiallyFailed by the counts', () => {
    expect(finalStatus(10, 0)).toBe('completed');
    expect(finalStatus(0, 10)).toBe('failed');
    expect(finalStatus(9, 1)).toBe('partiallyFailed');
  });
});
