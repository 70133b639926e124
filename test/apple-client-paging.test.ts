import fc from 'fast-check';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { type AppleAssignment, createAppleClient } from '../src/apple/index.js';
import { startAppleSim } from '../src/apple-sim/apple-sim.js';
import type { LocationSeed } from '../src/apple-sim/sim-location.js';

// Property: whatever the page size and the in-flight limit, the client's pager returns exactly the
// seeded assignments, in order, each once. The reference is read independently: the same seeded
// location served as one single page and parsed with a plain undici request + JSON.parse.

function seedOf(assignments: number): LocationSeed {
  return {
    id: 'prop',
    name: 'Property',
    orgName: 'Org',
    countryCode: 'US',
    assets: Math.max(5, Math.min(25, Math.ceil(assignments / 40))),
    assignments,
    users: Math.max(20, Math.ceil(assignments / 4)),
  };
}

async function referenceAssignments(assignments: number): Promise<AppleAssignment[]> {
  const sim = await startAppleSim({ locations: [seedOf(assignments)], pageSize: 10_000, rateLimit: false });
  try {
    const response = await request(`${sim.baseUrl}/assignments`, {
      headers: { authorization: `Bearer ${sim.tokenFor('prop')}` },
    });
    const body = JSON.parse(await response.body.text()) as {
      assignments: AppleAssignment[];
      nextPageIndex?: number;
    };
    expect(body.nextPageIndex).toBeUndefined();
    return body.assignments;
  } finally {
    await sim.close();
  }
}

describe('pager property over HTTP', () => {
  it('returns exactly the seeded set for any page size and in-flight limit 1–5', async () => {
    const references = new Map<number, AppleAssignment[]>();
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 0, max: 2000 })
          .chain((records) =>
            fc.tuple(
              fc.constant(records),
              fc.integer({ min: Math.max(1, Math.ceil(records / 120)), max: records + 10 }),
              fc.integer({ min: 1, max: 5 }),
            ),
          ),
        async ([records, pageSize, concurrency]) => {
          let expected = references.get(records);
          if (!expected) {
            expected = await referenceAssignments(records);
            references.set(records, expected);
          }
          expect(expected).toHaveLength(records);
          const sim = await startAppleSim({ locations: [seedOf(records)], pageSize, rateLimit: false });
          const client = createAppleClient({ baseUrl: sim.baseUrl, rateLimiter: null });
          try {
            const got: AppleAssignment[] = [];
            let pages = 0;
            for await (const page of client.assignments(sim.tokenFor('prop'), {}, { concurrency })) {
              expect(page.currentPageIndex).toBe(pages);
              got.push(...page.records);
              pages++;
            }
            expect(pages).toBe(Math.max(1, Math.ceil(records / pageSize)));
            expect(got).toEqual(expected);
            expect(sim.requestCounts().prop?.['GET assignments']).toBe(pages);
          } finally {
            await client.close();
            await sim.close();
          }
        },
      ),
      { numRuns: 30 },
    );
  });
});
