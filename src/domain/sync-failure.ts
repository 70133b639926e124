import type { VppTokenActionFailureReason, VppTokenState } from './enums.js';

/**
 * What went wrong in a sync, classified. The Apple client classifies Apple's answers into these kinds;
 * the sync engine adds the ones only it can see (duplicate location, internal, interrupted).
 * See docs/apple.md, "Errors, including inside HTTP 200", and docs/architecture.md, "Invariants".
 */
export const syncFailureKinds = [
  /** 9621: the token's year is over. */
  'expired',
  /** 9625: Apple revoked the token (or the account's password changed). */
  'revoked',
  /** 9601, 9622, 9722: Apple does not accept the token. */
  'invalidToken',
  /** client/config names another MDM in `mdmInfo` and the admin has not consented to take it over. */
  'externalMdm',
  /** Another token of the same tenant already holds this Apple location. */
  'duplicateLocation',
  /** 429/9646 kept coming after every retry. */
  'rateLimitExhausted',
  /** 5xx/9603, timeouts or network errors kept coming after every retry. */
  'appleUnavailable',
  /** Apple rejected the request itself (9602, 97xx validation, 9634 removed service, ...). */
  'badRequest',
  /** The data changed between pages (`versionId` moved) and a consistent snapshot could not be read. */
  'snapshotMoved',
  /** A conflicting change (e.g. `mdmInfo` changed during the sync). */
  'conflict',
  /** A bug or storage failure inside vppd. */
  'internal',
  /** The worker running the sync died or was stopped and the retry did not finish either. */
  'interrupted',
] as const;
export type SyncFailureKind = (typeof syncFailureKinds)[number];

/** A classified failure with what a human needs to act on it. */
export interface SyncFailure {
  readonly kind: SyncFailureKind;
  /** Human-readable explanation (Apple's message where there is one); never contains secrets. */
  readonly message: string;
  /** Apple's `errorNumber`, when Apple gave one. */
  readonly appleErrorNumber?: number;
  /** The HTTP status Apple answered with, when there was an answer. */
  readonly httpStatus?: number;
}

/** What a failure of a given kind does to the token. */
export interface FailureOutcome {
  /** The token state the failure proves, or `null` when it says nothing about the token itself. */
  readonly state: VppTokenState | null;
  /** The Graph failure reason recorded with the action result. */
  readonly reason: VppTokenActionFailureReason;
}

/**
 * Maps a failure kind to the token state and Graph failure reason, per the Apple spec's error table.
 * Failures that come from Apple's answers are `appleFailure` (an expired token is `expiredVppToken`);
 * failures inside vppd are `internalError`. Transient kinds leave the token state as it was.
 */
export function failureOutcome(kind: SyncFailureKind): FailureOutcome {
  switch (kind) {
    case 'expired':
      return { state: 'expired', reason: 'expiredVppToken' };
    case 'revoked':
    case 'invalidToken':
      return { state: 'invalid', reason: 'appleFailure' };
    case 'externalMdm':
      return { state: 'assignedToExternalMDM', reason: 'appleFailure' };
    case 'duplicateLocation':
      return { state: 'duplicateLocationId', reason: 'appleFailure' };
    case 'rateLimitExhausted':
    case 'appleUnavailable':
    case 'badRequest':
    case 'snapshotMoved':
    case 'conflict':
      return { state: null, reason: 'appleFailure' };
    case 'internal':
    case 'interrupted':
      return { state: null, reason: 'internalError' };
    default: {
      const unreachable: never = kind;
      throw new Error(`unhandled failure kind ${String(unreachable)}`);
    }
  }
}

/** True for the kinds that retrying later may fix without a human (transient). */
export function isTransientFailure(kind: SyncFailureKind): boolean {
  switch (kind) {
    case 'rateLimitExhausted':
    case 'appleUnavailable':
    case 'snapshotMoved':
    case 'internal':
    case 'interrupted':
      return true;
    case 'expired':
    case 'revoked':
    case 'invalidToken':
    case 'externalMdm':
    case 'duplicateLocation':
    case 'badRequest':
    case 'conflict':
      return false;
    default: {
      const unreachable: never = kind;
      throw new Error(`unhandled failure kind ${String(unreachable)}`);
    }
  }
}
