import { describe, expect, it } from 'vitest';
import { vppTokenState } from './enums.js';
import { failureOutcome, isTransientFailure, syncFailureKinds } from './sync-failure.js';
import { daysUntilExpiry, effectiveTokenState, hasExpired, transitionTokenState } from './token-state.js';

describe('failure → state and reason (Apple spec error table)', () => {
  const expected = {
    expired: ['expired', 'expiredVppToken'],
    revoked: ['invalid', 'appleFailure'],
    invalidToken: ['invalid', 'appleFailure'],
    externalMdm: ['assignedToExternalMDM', 'appleFailure'],
    duplicateLocation: ['duplicateLocationId', 'appleFailure'],
    rateLimitExhausted: [null, 'appleFailure'],
    appleUnavailable: [null, 'appleFailure'],
    badRequest: [null, 'appleFailure'],
    snapshotMoved: [null, 'appleFailure'],
    conflict: [null, 'appleFailure'],
    internal: [null, 'internalError'],
    interrupted: [null, 'internalError'],
  } as const;

  it('covers every failure kind', () => {
    expect(Object.keys(expected).sort()).toEqual([...syncFailureKinds].sort());
  });

  for (const kind of syncFailureKinds) {
    it(`${kind}`, () => {
      const [state, reason] = expected[kind];
      expect(failureOutcome(kind)).toEqual({ state, reason });
    });
  }

  it('transient kinds leave the state as it was, token-proving kinds set it', () => {
    for (const from of vppTokenState.names) {
      for (const kind of syncFailureKinds) {
        const to = transitionTokenState(from, { type: 'syncFailed', kind });
        if (isTransientFailure(kind)) expect(to).toBe(from);
        if (failureOutcome(kind).state) expect(to).toBe(failureOutcome(kind).state);
      }
    }
  });

  it('classifies transience', () => {
    expect(syncFailureKinds.filter(isTransientFailure).sort()).toEqual(
      ['appleUnavailable', 'internal', 'interrupted', 'rateLimitExhausted', 'snapshotMoved'].sort(),
    );
  });
});

describe('token state transitions', () => {
  it('renewal resets to unknown, success makes valid', () => {
    expect(transitionTokenState('invalid', { type: 'renewed' })).toBe('unknown');
    expect(transitionTokenState('unknown', { type: 'syncSucceeded' })).toBe('valid');
    expect(transitionTokenState('valid', { type: 'expiryPassed' })).toBe('expired');
  });

  it('derives expiry from the injected clock', () => {
    const expiresAt = new Date('2027-01-01T00:00:00Z');
    expect(effectiveTokenState('valid', expiresAt, new Date('2026-12-31T23:59:59Z'))).toBe('valid');
    expect(effectiveTokenState('valid', expiresAt, expiresAt)).toBe('expired');
    expect(effectiveTokenState('assignedToExternalMDM', expiresAt, new Date('2027-02-01T00:00:00Z'))).toBe(
      'expired',
    );
    expect(hasExpired(expiresAt, new Date('2026-06-01T00:00:00Z'))).toBe(false);
    expect(daysUntilExpiry(expiresAt, new Date('2026-12-02T00:00:00Z'))).toBe(30);
    expect(daysUntilExpiry(expiresAt, new Date('2027-01-03T00:00:00Z'))).toBe(-2);
  });
});
