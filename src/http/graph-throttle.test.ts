import { describe, expect, it } from 'vitest';
import { createGraphThrottle, intuneLimits } from './graph-throttle.js';

function clockAt(start = Date.parse('2026-03-01T12:00:00Z')) {
  let now = start;
  return {
    now: () => new Date(now),
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const take = (n: number, f: () => { allowed: boolean }) => {
  let allowed = 0;
  for (let i = 0; i < n; i += 1) if (f().allowed) allowed += 1;
  return allowed;
};

describe('Graph throttling (intune limits, fixed 20 s windows)', () => {
  it('has Intune’s published numbers', () => {
    expect(intuneLimits).toEqual({
      tenantRequests: 2000,
      tenantWrites: 200,
      appRequests: 1000,
      appWrites: 100,
    });
  });

  it('per app: 1,000 requests per 20 s, then 429 with the seconds left; a new window resets', () => {
    const clock = clockAt();
    const throttle = createGraphThrottle(clock.now);
    const read = { tenantId: 't1', appId: 'app-1', write: false };
    expect(take(1000, () => throttle.take(read))).toBe(1000);
    clock.advance(4_500);
    expect(throttle.take(read)).toEqual({
      allowed: false,
      retryAfterSeconds: 16,
      scope: 'app',
      kind: 'request',
    });
    // Another app of the same tenant still has room.
    expect(throttle.take({ ...read, appId: 'app-2' }).allowed).toBe(true);
    clock.advance(15_500);
    expect(throttle.take(read).allowed).toBe(true);
  });

  it('per app: 100 writes; writes also count as requests', () => {
    const throttle = createGraphThrottle(clockAt().now);
    const write = { tenantId: 't1', appId: 'a', write: true };
    expect(take(150, () => throttle.take(write))).toBe(100);
    expect(throttle.take(write)).toMatchObject({
      allowed: false,
      scope: 'app',
      kind: 'write',
      retryAfterSeconds: 20,
    });
    expect(take(1000, () => throttle.take({ ...write, write: false }))).toBe(900);
  });

  it('per tenant: 2,000 requests and 200 writes across its apps; other tenants unaffected', () => {
    const throttle = createGraphThrottle(clockAt().now);
    const apps = ['a', 'b', 'c'];
    let allowed = 0;
    for (let i = 0; i < 2100; i += 1) {
      if (throttle.take({ tenantId: 't1', appId: apps[i % 3], write: false }).allowed) allowed += 1;
    }
    expect(allowed).toBe(2000);
    expect(throttle.take({ tenantId: 't1', appId: 'd', write: false })).toMatchObject({
      allowed: false,
      scope: 'tenant',
      kind: 'request',
    });
    expect(throttle.take({ tenantId: 't2', appId: 'a', write: false }).allowed).toBe(true);
    const writes = createGraphThrottle(clockAt().now);
    let written = 0;
    for (let i = 0; i < 300; i += 1) {
      if (writes.take({ tenantId: 't1', appId: `app-${i % 5}`, write: true }).allowed) written += 1;
    }
    expect(written).toBe(200);
  });

  it('tokens without an app id count against the tenant only', () => {
    const throttle = createGraphThrottle(clockAt().now);
    expect(take(1500, () => throttle.take({ tenantId: 't', appId: undefined, write: false }))).toBe(1500);
  });
});
