import type { SyncFailureKind } from '../domain/sync-failure.js';
import type { SyncRun } from '../storage/sync-job-store.js';

/** Wire shape of why a sync run failed (the `/sync` and history routes, the dashboard's rows). */
export interface RunFailureBody {
  readonly kind: SyncFailureKind;
  readonly reason: string;
  readonly message: string;
  readonly appleErrorNumber: number | null;
}

/** The failure of a run, as sent on the wire; null when it did not fail. */
export function presentRunFailure(failure: SyncRun['failure']): RunFailureBody | null {
  return failure === null
    ? null
    : {
        kind: failure.kind,
        reason: failure.reason,
        message: failure.message,
        appleErrorNumber: failure.appleErrorNumber ?? null,
      };
}
