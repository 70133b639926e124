import { errorCodes, isVppdError, VppdError } from '../domain/errors.js';
import type { SyncFailure, SyncFailureKind } from '../domain/sync-failure.js';

/**
 * Apple error numbers vppd acts on. See docs/apple.md, "Errors, including inside HTTP 200".
 */
export const appleErrorNumbers = {
  loginRequired: 9601,
  invalidArgument: 9602,
  internalError: 9603,
  userNotFound: 9609,
  licenseNotFound: 9610,
  tokenExpired: 9621,
  invalidAuthToken: 9622,
  tokenRevoked: 9625,
  serviceRemoved: 9634,
  tooManyRequests: 9646,
  badPageIndex: 9650,
  badSinceVersionId: 9721,
  malformedAuthorization: 9722,
} as const;

/** What one answer (or non-answer) from Apple looked like, before retries are decided. */
export type AppleAttemptFailure =
  | {
      readonly type: 'apple';
      readonly httpStatus: number;
      readonly errorNumber: number | undefined;
      readonly message: string;
      /** `Retry-After` in milliseconds, when Apple sent one. */
      readonly retryAfterMs: number | undefined;
    }
  | { readonly type: 'network'; readonly message: string; readonly code: string | undefined }
  | { readonly type: 'timeout'; readonly timeoutMs: number }
  /** The answer was not JSON (`notJson`, e.g. cut short) or lacked fields vppd relies on. */
  | {
      readonly type: 'malformed';
      readonly httpStatus: number;
      readonly message: string;
      readonly notJson: boolean;
    };

/**
 * Classifies an Apple error number and HTTP status into a {@link SyncFailureKind}.
 * An errorNumber wins over the status (errors arrive inside HTTP 200 too); a bare 401 is an invalid token.
 */
export function classifyAppleError(httpStatus: number, errorNumber: number | undefined): SyncFailureKind {
  switch (errorNumber) {
    case appleErrorNumbers.tokenExpired:
      return 'expired';
    case appleErrorNumbers.tokenRevoked:
      return 'revoked';
    case appleErrorNumbers.loginRequired:
    case appleErrorNumbers.invalidAuthToken:
    case appleErrorNumbers.malformedAuthorization:
      return 'invalidToken';
    case appleErrorNumbers.tooManyRequests:
      return 'rateLimitExhausted';
    case appleErrorNumbers.internalError:
      return 'appleUnavailable';
    case undefined:
      break;
    default:
      // 9602, 97xx, 9634, 9650 and numbers Apple adds later: Apple rejected what we asked.
      if (httpStatus === 429) return 'rateLimitExhausted';
      if (httpStatus >= 500) return 'appleUnavailable';
      if (httpStatus === 409) return 'conflict';
      return 'badRequest';
  }
  if (httpStatus === 429) return 'rateLimitExhausted';
  if (httpStatus >= 500) return 'appleUnavailable';
  if (httpStatus === 401) return 'invalidToken';
  if (httpStatus === 409) return 'conflict';
  return 'badRequest';
}

/** Classifies the last failed attempt of a call into a {@link SyncFailure}. */
export function syncFailureOfAppleAttempt(failure: AppleAttemptFailure): SyncFailure {
  switch (failure.type) {
    case 'apple':
      return {
        kind: classifyAppleError(failure.httpStatus, failure.errorNumber),
        message: failure.message,
        ...(failure.errorNumber === undefined ? {} : { appleErrorNumber: failure.errorNumber }),
        httpStatus: failure.httpStatus,
      };
    case 'network':
      return { kind: 'appleUnavailable', message: `Apple could not be reached: ${failure.message}` };
    case 'timeout':
      return { kind: 'appleUnavailable', message: `Apple did not answer within ${failure.timeoutMs} ms` };
    case 'malformed':
      return {
        kind: 'appleUnavailable',
        message: `Apple's answer was not usable: ${failure.message}`,
        httpStatus: failure.httpStatus,
      };
    default: {
      const unreachable: never = failure;
      throw new Error(`unhandled attempt failure ${String(unreachable)}`);
    }
  }
}

/** Facts carried in `VppdError.details` of an `appleFailure` error. Never secrets. */
export interface AppleFailureDetails {
  readonly failure: SyncFailure;
  /** Which call failed, e.g. `GET /assignments`. */
  readonly endpoint: string;
  /** Requests made for this call, retries included. */
  readonly attempts: number;
  /** Short hash of the sToken, to correlate logs; never the token itself. */
  readonly locationKey?: string;
  readonly pageIndex?: number;
}

/** Builds the `VppdError(appleFailure)` the client throws. */
export function appleFailureError(details: AppleFailureDetails): VppdError {
  const { failure } = details;
  const number = failure.appleErrorNumber === undefined ? '' : ` (Apple error ${failure.appleErrorNumber})`;
  const status = failure.httpStatus === undefined ? '' : ` [HTTP ${failure.httpStatus}]`;
  return new VppdError(
    errorCodes.appleFailure,
    `${details.endpoint} failed: ${failure.kind}${number}${status}: ${failure.message}`,
    { details: { ...details } },
  );
}

/** The classified Apple failure inside an error thrown by the Apple client, if it is one. */
export function appleFailureOf(error: unknown): SyncFailure | undefined {
  if (!isVppdError(error, errorCodes.appleFailure)) return undefined;
  const failure = error.details.failure;
  if (typeof failure !== 'object' || failure === null) return undefined;
  return failure as SyncFailure;
}
