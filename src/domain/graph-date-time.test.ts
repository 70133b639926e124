import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatGraphDateTime } from './graph-date-time.js';
import { neverSynced } from './sync-lifecycle.js';

describe('formatGraphDateTime', () => {
  it.each([
    ['2025-03-02T06:54:05.000Z', '2025-03-02T06:54:05Z'],
    ['2025-03-02T06:54:05.500Z', '2025-03-02T06:54:05.5Z'],
    ['2025-03-02T06:54:05.120Z', '2025-03-02T06:54:05.12Z'],
    ['2025-03-02T06:54:05.123Z', '2025-03-02T06:54:05.123Z'],
    ['2025-03-02T06:54:05.001Z', '2025-03-02T06:54:05.001Z'],
  ])('writes %s as %s', (iso, wire) => {
    expect(formatGraphDateTime(new Date(iso))).toBe(wire);
  });

  it('writes the never-synced sentinel as 0001-01-01T00:00:00Z', () => {
    expect(formatGraphDateTime(neverSynced())).toBe('0001-01-01T00:00:00Z');
  });

  it('round-trips every instant and never ends its fraction in a zero', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('0001-01-01T00:00:00Z'),
          max: new Date('9999-12-31T23:59:59.999Z'),
          noInvalidDate: true,
        }),
        (date) => {
          const wire = formatGraphDateTime(date);
          expect(new Date(wire).getTime()).toBe(date.getTime());
          expect(wire).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{0,2}[1-9])?Z$/);
        },
      ),
    );
  });
});
