import { describe, expect, it } from 'vitest';
import type { AppleAttemptFailure } from './apple-failure.js';
import { backoffDelay, decideRetry, defaultRetryPolicy, parseRetryAfter } from './retry-policy.js';

const policy = { ...defaultRetryPolicy, maxAttempts: 8 };
const half = () => 0.5;

function apple(httpStatus: number, errorNumber?: number, retryAfterMs?: number): AppleAttemptFailure {
  return { type: 'apple', httpStatus, errorNumber, message: 'm', retryAfterMs };
}

describe('backoffDelay', () => {
  it('doubles per attempt, stays within [exp/2, exp] and is capped', () => {
    expect(backoffDelay(1, policy, () => 0)).toBe(250);
    expect(backoffDelay(1, policy, () => 1)).toBe(500);
    expect(backoffDelay(3, policy, () => 1)).toBe(2000);
    expect(backoffDelay(30, policy, () => 1)).toBe(policy.maxDelayMs);
    expect(backoffDelay(30, policy, () => 0)).toBe(policy.maxDelayMs / 2);
  });
});

describe('decideRetry', () => {
  const ctx = { attempt: 1, internalErrors: 0 };

  it('backs off exponentially with jitter on 429/9646, also inside HTTP 200', () => {
    const first = decideRetry(apple(429, 9646), ctx, policy, half);
    const third = decideRetry(apple(200, 9646), { attempt: 3, internalErrors: 0 }, policy, half);
    expect(first).toEqual({ retry: true, delayMs: 375, reason: 'rate limited' });
    expect(third).toMatchObject({ retry: true, delayMs: 1500 });
  });

  it('waits at least Retry-After on 5xx', () => {
    expect(decideRetry(apple(503, undefined, 7000), ctx, policy, half)).toMatchObject({ delayMs: 7000 });
    expect(decideRetry(apple(502, undefined, 10), ctx, policy, half)).toMatchObject({ delayMs: 375 });
  });

  it('gives up when Retry-After is longer than the policy accepts', () => {
    expect(decideRetry(apple(503, undefined, policy.maxRetryAfterMs + 1), ctx, policy, half)).toEqual({
      retry: false,
    });
  });

  it('retries 9603 with backoff, then waits minutes after repeated failures', () => {
    const early = decideRetry(apple(500, 9603), { attempt: 4, internalErrors: 4 }, policy, half);
    const late = decideRetry(apple(500, 9603), { attempt: 5, internalErrors: 5 }, policy, half);
    expect(early).toMatchObject({ retry: true, delayMs: 3000 });
    expect(late).toMatchObject({ retry: true, delayMs: policy.internalErrorLongWaitMs });
    expect(policy.internalErrorLongWaitMs).toBeGreaterThanOrEqual(60_000);
  });

  it('retries network errors, timeouts and bodies that are not JSON', () => {
    expect(decideRetry({ type: 'network', message: 'x', code: undefined }, ctx, policy, half).retry).toBe(
      true,
    );
    expect(decideRetry({ type: 'timeout', timeoutMs: 5 }, ctx, policy, half).retry).toBe(true);
    const cut = { type: 'malformed', httpStatus: 200, message: 'x', notJson: true } as const;
    expect(decideRetry(cut, ctx, policy, half).retry).toBe(true);
    expect(decideRetry({ ...cut, notJson: false }, ctx, policy, half).retry).toBe(false);
  });

  it.each([
    [401, 9621],
    [401, 9625],
    [401, 9601],
    [200, 9622],
    [401, 9722],
    [400, 9602],
    [410, 9634],
    [400, 9650],
    [400, 9705],
    [404, undefined],
    [409, undefined],
  ])('treats HTTP %i / %s as permanent', (status, errorNumber) => {
    expect(decideRetry(apple(status, errorNumber), ctx, policy, half)).toEqual({ retry: false });
  });

  it('stops at maxAttempts', () => {
    expect(decideRetry(apple(503), { attempt: 8, internalErrors: 0 }, policy, half)).toEqual({
      retry: false,
    });
    expect(decideRetry(apple(503), { attempt: 7, internalErrors: 0 }, policy, half).retry).toBe(true);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta seconds and HTTP dates', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter(' 1.5 ', now)).toBe(1500);
    expect(parseRetryAfter('Tue, 01 Jan 2030 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Mon, 31 Dec 2029 00:00:10 GMT', now)).toBe(0);
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
});
