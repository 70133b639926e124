/** Phases of a running sync, in order (docs/apple.md, "A sync, call by call"). */
export const syncPhases = ['clientConfig', 'assets', 'assignments', 'metadata'] as const;
export type SyncPhase = (typeof syncPhases)[number];

/** How far a running sync got: what the engine reports and the worker stores for live progress. */
export interface SyncProgress {
  readonly phase: SyncPhase;
  /** Apple pages fetched so far (assets and assignments). */
  readonly pages: number;
  /** Records fetched so far (assets and assignments). */
  readonly records: number;
}

/** Called by the engine as a sync advances; must not throw or block (the worker only keeps the latest). */
export type SyncProgressListener = (progress: SyncProgress) => void;

/** True when `value` names a {@link SyncPhase} (column values read back from the database). */
export function isSyncPhase(value: unknown): value is SyncPhase {
  return typeof value === 'string' && (syncPhases as readonly string[]).includes(value);
}
