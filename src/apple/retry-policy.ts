import { type AppleAttemptFailure, appleErrorNumbers, classifyAppleError } from './apple-failure.js';

/**
 * How the Apple client retries. See docs/apple.md, "Retries":
 * 429/9646 back off exponentially with jitter, 5xx honour `Retry-After`, 9603 is retried and after a
 * few failures waits minutes, network errors and timeouts are retried, everything else is permanent.
 */
export interface RetryPolicy {
  /** Requests per call, the first one included (at least 1). */
  readonly maxAttempts: number;
  /** Backoff before the second attempt; doubles per attempt. */
  readonly baseDelayMs: number;
  /** Upper bound of the exponential backoff. */
  readonly maxDelayMs: number;
  /** After this many consecutive 9603 answers, wait `internalErrorLongWaitMs` instead. */
  readonly internalErrorLongWaitAfter: number;
  readonly internalErrorLongWaitMs: number;
  /** A `Retry-After` longer than this is not waited for: the call fails now and a later sync retries. */
  readonly maxRetryAfterMs: number;
}

export const defaultRetryPolicy: RetryPolicy = {
  maxAttempts: 6,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  internalErrorLongWaitAfter: 5,
  internalErrorLongWaitMs: 2 * 60_000,
  maxRetryAfterMs: 10 * 60_000,
};

export type RetryDecision =
  | { readonly retry: false }
  | { readonly retry: true; readonly delayMs: number; readonly reason: string };

export interface RetryContext {
  /** 1-based number of the attempt that just failed. */
  readonly attempt: number;
  /** Consecutive 9603 answers so far, this one included. */
  readonly internalErrors: number;
}

/** Exponential backoff with "equal jitter": half fixed, half random, so waits never collapse to zero. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** Decides whether a failed attempt is retried and after how long. Pure. */
export function decideRetry(
  failure: AppleAttemptFailure,
  context: RetryContext,
  policy: RetryPolicy,
  random: () => number,
): RetryDecision {
  if (context.attempt >= policy.maxAttempts) return { retry: false };
  const backoff = backoffDelay(context.attempt, policy, random);
  switch (failure.type) {
    case 'network':
      return { retry: true, delayMs: backoff, reason: 'network error' };
    case 'timeout':
      return { retry: true, delayMs: backoff, reason: 'timeout' };
    case 'malformed':
      // A body that is not JSON is usually a cut-short transfer; a wrong shape will not fix itself.
      return failure.notJson
        ? { retry: true, delayMs: backoff, reason: 'unreadable answer' }
        : { retry: false };
    case 'apple': {
      const retryAfter = failure.retryAfterMs ?? 0;
      if (retryAfter > policy.maxRetryAfterMs) return { retry: false };
      if (failure.errorNumber === appleErrorNumbers.internalError) {
        const long = context.internalErrors >= policy.internalErrorLongWaitAfter;
        const wait = long ? policy.internalErrorLongWaitMs : backoff;
        return { retry: true, delayMs: Math.max(wait, retryAfter), reason: 'Apple internal error 9603' };
      }
      const kind = classifyAppleError(failure.httpStatus, failure.errorNumber);
      if (kind === 'rateLimitExhausted') {
        return { retry: true, delayMs: Math.max(backoff, retryAfter), reason: 'rate limited' };
      }
      if (kind === 'appleUnavailable') {
        return { retry: true, delayMs: Math.max(backoff, retryAfter), reason: `HTTP ${failure.httpStatus}` };
      }
      return { retry: false };
    }
    default: {
      const unreachable: never = failure;
      throw new Error(`unhandled attempt failure ${String(unreachable)}`);
    }
  }
}

/**
 * Parses `Retry-After` (delta seconds or an HTTP date) into milliseconds from `nowMs`.
 * Returns undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}
