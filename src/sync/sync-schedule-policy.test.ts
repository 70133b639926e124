import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dayMs, defaultSchedulePolicy, nextAutomaticSync } from './sync-schedule-policy.js';

const finished = new Date('2026-03-01T00:00:00.000Z');
const hour = 3_600_000;

describe('nextAutomaticSync', () => {
  it('is one interval later minus at most 10% jitter', () => {
    const policy = defaultSchedulePolicy(12 * hour);
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, noNaN: true }), (r) => {
        const next = nextAutomaticSync(finished, policy, { expired: false, random: () => r });
        const delay = next.getTime() - finished.getTime();
        return delay <= 12 * hour && delay >= 12 * hour * 0.9;
      }),
    );
    expect(nextAutomaticSync(finished, policy, { expired: false, random: () => 0 }).getTime()).toBe(
      finished.getTime() + 12 * hour,
    );
  });

  it('re-checks an expired token once a day (or after the interval when that is longer)', () => {
    expect(
      nextAutomaticSync(finished, defaultSchedulePolicy(12 * hour), {
        expired: true,
        random: () => 0.7,
      }).getTime(),
    ).toBe(finished.getTime() + dayMs);
    expect(
      nextAutomaticSync(finished, defaultSchedulePolicy(2 * dayMs), {
        expired: true,
        random: () => 0.7,
      }).getTime(),
    ).toBe(finished.getTime() + 2 * dayMs);
  });
});
