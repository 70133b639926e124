import { describe, expect, it } from 'vitest';
import { licenseAlertOf, licenseLevelOf, parseLicenseThreshold } from './license-alerts.js';

const app = (totalCount: number, assignedCount: number) => ({
  adamId: '1',
  pricingParam: 'STDQ',
  totalCount,
  assignedCount,
  availableCount: totalCount - assignedCount,
});

describe('licenseLevelOf', () => {
  it('is low at or below the percentage of the total, ok above it', () => {
    expect(licenseLevelOf(app(100, 89), { percent: 10 })).toBe('ok'); // 11 left
    expect(licenseLevelOf(app(100, 90), { percent: 10 })).toBe('low'); // 10 left
    expect(licenseLevelOf(app(7, 6), { percent: 10 })).toBe('ok'); // 1 of 7 is 14 %
  });

  it('is low at or below a count of available licenses', () => {
    expect(licenseLevelOf(app(100, 97), { count: 3 })).toBe('low');
    expect(licenseLevelOf(app(100, 96), { count: 3 })).toBe('ok');
  });

  it('tells exhausted (assigned, none left) from empty (nothing assigned) and skips unlimited apps', () => {
    expect(licenseLevelOf(app(5, 5), { percent: 10 })).toBe('exhausted');
    expect(licenseLevelOf(app(0, 0), { percent: 10 })).toBe('empty');
    expect(licenseLevelOf(app(2147483647, 40), { percent: 10 })).toBeUndefined();
  });
});

describe('licenseAlertOf', () => {
  it('alerts once per crossing, and only on the way down or back from zero', () => {
    expect(licenseAlertOf('ok', 'low')).toBe('licensesLow');
    expect(licenseAlertOf('low', 'low')).toBeUndefined();
    expect(licenseAlertOf('low', 'exhausted')).toBe('licensesExhausted');
    expect(licenseAlertOf('ok', 'exhausted')).toBe('licensesExhausted');
    expect(licenseAlertOf('exhausted', 'low')).toBe('licensesAvailable');
    expect(licenseAlertOf('exhausted', 'ok')).toBe('licensesAvailable');
    expect(licenseAlertOf('empty', 'ok')).toBe('licensesAvailable');
    expect(licenseAlertOf('low', 'ok')).toBeUndefined();
    expect(licenseAlertOf('empty', 'exhausted')).toBeUndefined();
  });
});

describe('parseLicenseThreshold', () => {
  it('takes a percent or a count and explains anything else', () => {
    expect(parseLicenseThreshold({ percent: 5 })).toEqual({ percent: 5 });
    expect(parseLicenseThreshold({ count: 0 })).toEqual({ count: 0 });
    for (const bad of [
      { percent: 101 },
      { count: -1 },
      { percent: 1.5 },
      { percent: 5, count: 2 },
      'ten',
      null,
    ]) {
      expect(parseLicenseThreshold(bad)).toMatch(/threshold is/);
    }
  });
});
