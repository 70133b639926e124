import { describe, expect, it } from 'vitest';
import { createBackgroundLane } from './background-lane.js';

describe('background lane', () => {
  it('runs one slice per event-loop turn, so other callbacks get in between', async () => {
    const lane = createBackgroundLane();
    const order: string[] = [];
    await Promise.all(
      [1, 2, 3].map(async (n) => {
        await lane.turn();
        order.push(`slice ${n}`);
        // Work that arrives during slice 1 (as a request would) runs before slice 3, not after all.
        if (n === 1) setImmediate(() => order.push('other'));
      }),
    );
    expect(order).toEqual(['slice 1', 'slice 2', 'other', 'slice 3']);
    expect(lane.waiting).toBe(0);
  });

  it('hands out turns first come first served', async () => {
    const lane = createBackgroundLane();
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        await lane.turn();
        order.push(i);
      }),
    );
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });
});
