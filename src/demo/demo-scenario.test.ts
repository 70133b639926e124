import { describe, expect, it } from 'vitest';
import { simTokenFiles } from '../apple-sim/sim-token-files.js';
import { decodeSToken } from '../domain/stoken.js';
import { demoSimLocations, demoSimSeed, demoTokens } from './demo-scenario.js';

describe('demo scenario', () => {
  const anchor = new Date('2026-11-24T01:00:00Z');

  it('gives the same token files on every restart, whatever the day, for one anchor', () => {
    const firstDay = simTokenFiles(demoSimSeed, demoSimLocations(anchor), anchor);
    const monthLater = simTokenFiles(demoSimSeed, demoSimLocations(anchor), new Date('2026-12-24T09:00:00Z'));
    expect(monthLater).toEqual(firstDay);
    // Without the anchor the simulator's default expiry follows the current UTC day.
    const otherAnchor = simTokenFiles(
      demoSimSeed,
      demoSimLocations(new Date('2026-12-24T09:00:00Z')),
      anchor,
    );
    expect(otherAnchor).not.toEqual(firstDay);
  });

  it('has a token file for every demo token; the expired one expired before the anchor, the rest a year after', () => {
    const files = simTokenFiles(demoSimSeed, demoSimLocations(anchor), anchor);
    for (const demo of demoTokens) {
      const file = files.find((f) => f.locationId === demo.locationId && f.index === demo.index);
      expect(file, demo.displayName).toBeDefined();
      const expiry = decodeSToken(file?.content).expDate.getTime();
      if (demo.locationId === 'expired') expect(expiry).toBeLessThan(anchor.getTime());
      else expect(expiry - anchor.getTime()).toBeGreaterThan(364 * 86_400_000);
    }
    expect(new Set(demoTokens.map((d) => d.displayName)).size).toBe(demoTokens.length);
  });
});
