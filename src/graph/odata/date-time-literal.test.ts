import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normaliseDateTimeLiteral } from './date-time-literal.js';

describe('normaliseDateTimeLiteral', () => {
  it.each([
    ['2026-01-01T00:00:00Z', '2026-01-01T00:00:00.000Z', true],
    ['2026-01-01T00:00Z', '2026-01-01T00:00:00.000Z', true],
    ['2026-01-01T00:00:00.5z', '2026-01-01T00:00:00.500Z', true],
    ['2026-07-17T14:50:53.5002993Z', '2026-07-17T14:50:53.500Z', false],
    ['2026-07-17T14:50:53.5000000Z', '2026-07-17T14:50:53.500Z', true],
    ['2026-01-01T01:00:00+01:00', '2026-01-01T00:00:00.000Z', true],
    ['2025-12-31T23:30:00-00:30', '2026-01-01T00:00:00.000Z', true],
    ['2024-02-29T12:00:00Z', '2024-02-29T12:00:00.000Z', true],
    ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z', true],
    ['0050-06-01T00:00:00Z', '0050-06-01T00:00:00.000Z', true],
    ['9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z', true],
  ])('%s → %s', (text, value, exact) => {
    expect(normaliseDateTimeLiteral(text)).toEqual({ value, exact });
  });

  it.each([
    '2026-13-01T00:00:00Z',
    '2026-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-01-01T24:00:00Z',
    '2026-01-01T00:60:00Z',
    '2026-01-01T00:00:60Z',
    '2026-01-01T00:00:00+24:00',
    '2026-01-01T00:00:00',
    '0000-06-01T00:00:00Z',
    '0001-01-01T00:00:00+01:00',
    '9999-12-31T23:59:59-01:00',
    '2026-01-01',
  ])('%s is not an instant vppd can compare', (text) => {
    expect(normaliseDateTimeLiteral(text)).toBeUndefined();
  });

  it('agrees with Date for every instant of years 1970–2100 written in UTC with milliseconds', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('1970-01-01T00:00:00Z'),
          max: new Date('2100-01-01T00:00:00Z'),
          noInvalidDate: true,
        }),
        (date) => {
          expect(normaliseDateTimeLiteral(date.toISOString())).toEqual({
            value: date.toISOString(),
            exact: true,
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});
