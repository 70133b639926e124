import { appleFailureOf } from '../apple/apple-failure.js';
import { errorCodes, VppdError } from '../domain/errors.js';
import type { SyncFailure } from '../domain/sync-failure.js';

/** An error carrying a classified sync failure that the engine itself detected (mdmInfo, duplicates). */
export function syncFailureError(failure: SyncFailure): VppdError {
  return new VppdError(errorCodes.conflict, failure.message, { details: { failure } });
}

/**
 * The classified failure behind any error a sync ends with: Apple's (number and message kept), the
 * engine's own, or `internal` for anything else.
 */
export function syncFailureOfError(error: unknown): SyncFailure {
  const classified = appleFailureOf(error);
  // Apple's failures keep the client's message: it names the call, Apple's number and its text.
  const apple = classified && error instanceof Error ? { ...classified, message: error.message } : classified;
  const own =
    apple ??
    (error instanceof VppdError && isFailure(error.details.failure) ? error.details.failure : undefined);
  return (
    own ?? {
      kind: 'internal',
      message: `vppd failed during the sync: ${error instanceof Error ? error.message : String(error)}`,
    }
  );
}

function isFailure(value: unknown): value is SyncFailure {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { kind?: unknown }).kind === 'string' &&
    typeof (value as { message?: unknown }).message === 'string'
  );
}
