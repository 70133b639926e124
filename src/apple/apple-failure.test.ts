import { describe, expect, it } from 'vitest';
import { VppdError } from '../domain/errors.js';
import {
  appleFailureError,
  appleFailureOf,
  classifyAppleError,
  syncFailureOfAppleAttempt,
} from './apple-failure.js';

describe('classifyAppleError', () => {
  it.each([
    [401, 9621, 'expired'],
    [401, 9625, 'revoked'],
    [401, 9601, 'invalidToken'],
    [200, 9622, 'invalidToken'],
    [401, 9622, 'invalidToken'],
    [200, 9722, 'invalidToken'],
    [429, 9646, 'rateLimitExhausted'],
    [200, 9646, 'rateLimitExhausted'],
    [500, 9603, 'appleUnavailable'],
    [400, 9602, 'badRequest'],
    [400, 9700, 'badRequest'],
    [415, 9728, 'badRequest'],
    [410, 9634, 'badRequest'],
    [400, 9650, 'badRequest'],
    [400, 9721, 'badRequest'],
    [200, 9999, 'badRequest'],
    [503, undefined, 'appleUnavailable'],
    [502, 9999, 'appleUnavailable'],
    [429, undefined, 'rateLimitExhausted'],
    [401, undefined, 'invalidToken'],
    [409, undefined, 'conflict'],
    [404, undefined, 'badRequest'],
  ] as const)('HTTP %i with errorNumber %s is %s', (status, errorNumber, kind) => {
    expect(classifyAppleError(status, errorNumber)).toBe(kind);
  });
});

describe('syncFailureOfAppleAttempt', () => {
  it('keeps Apple error number, message and HTTP status', () => {
    expect(
      syncFailureOfAppleAttempt({
        type: 'apple',
        httpStatus: 401,
        errorNumber: 9621,
        message: 'Expired',
        retryAfterMs: undefined,
      }),
    ).toEqual({ kind: 'expired', message: 'Expired', appleErrorNumber: 9621, httpStatus: 401 });
  });

  it('classifies exhausted network errors, timeouts and unusable answers as appleUnavailable', () => {
    expect(
      syncFailureOfAppleAttempt({ type: 'network', message: 'ECONNRESET', code: 'ECONNRESET' }).kind,
    ).toBe('appleUnavailable');
    expect(syncFailureOfAppleAttempt({ type: 'timeout', timeoutMs: 10 }).message).toContain('10 ms');
    expect(
      syncFailureOfAppleAttempt({ type: 'malformed', httpStatus: 200, message: 'x', notJson: true })
        .httpStatus,
    ).toBe(200);
  });
});

describe('appleFailureOf', () => {
  it('returns the failure of an appleFailure error and nothing for other errors', () => {
    const error = appleFailureError({
      failure: { kind: 'revoked', message: 'Token revoked', appleErrorNumber: 9625, httpStatus: 401 },
      endpoint: 'GET /client/config',
      attempts: 1,
    });
    expect(error).toBeInstanceOf(VppdError);
    expect(error.code).toBe('appleFailure');
    expect(error.message).toBe(
      'GET /client/config failed: revoked (Apple error 9625) [HTTP 401]: Token revoked',
    );
    expect(appleFailureOf(error)).toEqual({
      kind: 'revoked',
      message: 'Token revoked',
      appleErrorNumber: 9625,
      httpStatus: 401,
    });
    expect(appleFailureOf(new Error('x'))).toBeUndefined();
    expect(appleFailureOf(new VppdError('internal', 'x'))).toBeUndefined();
  });
});
