import type { VppTokenState } from './enums.js';
import { failureOutcome, type SyncFailureKind } from './sync-failure.js';

/** What can change a token's `state`. */
export type TokenStateEvent =
  /** A new `.vpptoken` was uploaded for the token: nothing is known about it until Apple answers. */
  | { readonly type: 'renewed' }
  /** Apple accepted the token and a sync completed. */
  | { readonly type: 'syncSucceeded' }
  /** A sync failed; only some failure kinds say something about the token itself. */
  | { readonly type: 'syncFailed'; readonly kind: SyncFailureKind }
  /** The clock passed the token's expiration date. */
  | { readonly type: 'expiryPassed' };

/** The transition function of a token's `state`; the only place `state` changes. */
export function transitionTokenState(from: VppTokenState, event: TokenStateEvent): VppTokenState {
  switch (event.type) {
    case 'renewed':
      return 'unknown';
    case 'syncSucceeded':
      return 'valid';
    case 'syncFailed':
      return failureOutcome(event.kind).state ?? from;
    case 'expiryPassed':
      return 'expired';
    default: {
      const unreachable: never = event;
      throw new Error(`unhandled token state event ${JSON.stringify(unreachable)}`);
    }
  }
}

/**
 * The state a reader should see now: a token whose expiration date has passed is `expired` whatever
 * Apple last said, because Apple will refuse it. `now` comes from the injected clock.
 */
export function effectiveTokenState(state: VppTokenState, expiresAt: Date, now: Date): VppTokenState {
  return hasExpired(expiresAt, now) ? transitionTokenState(state, { type: 'expiryPassed' }) : state;
}

/** True when the token's expiration time is at or before `now`. */
export function hasExpired(expiresAt: Date, now: Date): boolean {
  return expiresAt.getTime() <= now.getTime();
}

/** Whole days left before expiry (negative once expired), for expiry warnings. */
export function daysUntilExpiry(expiresAt: Date, now: Date): number {
  return Math.floor((expiresAt.getTime() - now.getTime()) / 86_400_000);
}
