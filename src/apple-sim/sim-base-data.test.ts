import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BaseData, distribute } from './sim-base-data.js';
import { hashSeed } from './sim-random.js';

describe('distribute', () => {
  it('splits the total exactly, within caps, for any weights', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.double({ min: 0.001, max: 10, noNaN: true }), fc.boolean()), {
          minLength: 1,
          maxLength: 40,
        }),
        fc.integer({ min: 0, max: 500 }),
        fc.integer({ min: 0, max: 5000 }),
        (assets, cap, total) => {
          const weights = assets.map(([w]) => w);
          const caps = assets.map(([, capped]) => (capped ? cap : Number.POSITIVE_INFINITY));
          const room = caps.reduce((sum, c) => sum + c, 0);
          if (room < total) {
            expect(() => distribute(total, weights, caps, 'x')).toThrow(/do not fit/);
            return;
          }
          const counts = distribute(total, weights, caps, 'x');
          expect(counts.reduce((sum, c) => sum + c, 0)).toBe(total);
          counts.forEach((c, k) => {
            expect(Number.isInteger(c)).toBe(true);
            expect(c).toBeGreaterThanOrEqual(0);
            expect(c).toBeLessThanOrEqual(caps[k]!);
          });
        },
      ),
    );
  });
});

describe('BaseData', () => {
  const data = new BaseData(hashSeed('unit'), 'loc-1', { assets: 25, assignments: 2000, users: 150 });

  it('round-trips serial numbers and clientUserIds (filters invert the generators)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: data.deviceCount - 1 }), (d) => {
        const serial = data.serialNumber(d);
        expect(serial).toMatch(/^[0-9A-Z]{12}$/);
        expect(data.deviceOf(serial)).toBe(d);
      }),
    );
    const live = data.associatedUsers + data.registeredUsers;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: live - 1 }), (u) => {
        expect(data.userOf(data.clientUserId(u))).toBe(u);
      }),
    );
    expect(data.deviceOf('C02XYZ123456')).toBeUndefined();
    expect(data.userOf('not-a-user')).toBeUndefined();
  });

  it('maps every seeded assignment back to its index through its holder', () => {
    for (let i = 0; i < data.assignmentCount; i++) {
      const asset = data.assetOfAssignment(i);
      const holder = data.holderOf(asset, i);
      const back =
        holder.serialNumber !== undefined
          ? data.assignmentOfDevice(asset, data.deviceOf(holder.serialNumber)!)
          : data.assignmentOfUser(asset, data.userOf(holder.clientUserId!)!);
      expect(back).toBe(i);
      expect(JSON.parse(data.assignmentJson(i))).toEqual({
        adamId: asset.adamId,
        pricingParam: asset.pricingParam,
        ...holder,
      });
    }
  });

  it('keeps assigned counts within what was bought', () => {
    for (const asset of data.assets) {
      expect(asset.purchasedCount).toBeGreaterThanOrEqual(asset.baseAssigned);
      if (!asset.deviceAssignable) expect(asset.userAssigned).toBe(asset.baseAssigned);
    }
    expect(data.assets.reduce((sum, a) => sum + a.baseAssigned, 0)).toBe(2000);
  });

  it('rejects sizes that cannot be seeded', () => {
    expect(() => new BaseData(1, 'x', { assets: 0, assignments: 5, users: 0 })).toThrow(/do not fit/);
    expect(() => new BaseData(1, 'x', { assets: -1, assignments: 0, users: 0 })).toThrow(/non-negative/);
  });
});
