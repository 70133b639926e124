import type { ActionState, VppTokenActionFailureReason, VppTokenSyncStatus } from './enums.js';
import { errors } from './errors.js';

/**
 * The events that move `lastSyncStatus`. See docs/architecture.md, "The sync lifecycle".
 * - `syncRequested`: someone (API, scheduler, token upload or renewal) asked for a sync.
 * - `snapshotCommitted`: all data was fetched and committed as one consistent Apple snapshot.
 * - `syncFailed`: permanent Apple error, retries exhausted, conflict or interruption.
 */
export const syncEvents = ['syncRequested', 'snapshotCommitted', 'syncFailed'] as const;
export type SyncEvent = (typeof syncEvents)[number];

/** What a transition did, so callers know whether to start a sync or not. */
export const syncEffects = ['started', 'coalesced', 'completed', 'failed'] as const;
export type SyncEffect = (typeof syncEffects)[number];

export interface SyncTransition {
  readonly from: VppTokenSyncStatus;
  readonly to: VppTokenSyncStatus;
  readonly event: SyncEvent;
  readonly effect: SyncEffect;
}

/**
 * The one transition function of `lastSyncStatus`. Every status change in vppd goes through it;
 * anything outside the table in docs/architecture.md (none → completed, completed → failed without a
 * run, ...) throws.
 */
export function transitionSyncStatus(from: VppTokenSyncStatus, event: SyncEvent): SyncTransition {
  switch (from) {
    case 'none':
    case 'completed':
    case 'failed':
      if (event === 'syncRequested') return { from, to: 'inProgress', event, effect: 'started' };
      break;
    case 'inProgress':
      if (event === 'syncRequested') return { from, to: 'inProgress', event, effect: 'coalesced' };
      if (event === 'snapshotCommitted') return { from, to: 'completed', event, effect: 'completed' };
      if (event === 'syncFailed') return { from, to: 'failed', event, effect: 'failed' };
      break;
    default: {
      const unreachable: never = from;
      throw errors.illegalTransition('lastSyncStatus', String(unreachable), event);
    }
  }
  throw errors.illegalTransition('lastSyncStatus', from, event);
}

/** Graph's value of `lastSyncDateTime` before any successful sync, as text and as epoch milliseconds. */
export const neverSyncedIso = '0001-01-01T00:00:00.000Z';
export const neverSyncedMillis = Date.parse(neverSyncedIso);

/** A fresh Date holding the "never synced" sentinel `0001-01-01T00:00:00Z`. */
export function neverSynced(): Date {
  return new Date(neverSyncedMillis);
}

/** True when `date` is the "never synced" sentinel. */
export function isNeverSynced(date: Date): boolean {
  return date.getTime() === neverSyncedMillis;
}

/**
 * The `lastSyncDateTime` after a transition: it moves only when a snapshot was committed, to the
 * completion time; attempts and failures never touch it (they are in tokenActionResults and history).
 */
export function nextLastSyncDateTime(current: Date, transition: SyncTransition, completedAt: Date): Date {
  return transition.effect === 'completed' ? completedAt : current;
}

// ---- tokenActionResults bookkeeping -------------------------------------------------------------

/** One entry of `tokenActionResults` (`microsoft.graph.vppTokenActionResult` and its revoke subtype). */
export interface TokenActionResult {
  readonly actionName: string;
  readonly actionState: ActionState;
  readonly startDateTime: Date;
  readonly lastUpdatedDateTime: Date;
  /** Present on `revokeLicenses` results (`#microsoft.graph.vppTokenRevokeLicensesActionResult`). */
  readonly revoke?: {
    readonly actionFailureReason: VppTokenActionFailureReason;
    readonly totalLicensesCount: number;
    readonly failedLicensesCount: number;
  };
}

/** The action name Graph uses for license syncs. */
export const syncLicensesAction = 'syncLicenses';

/** The action name of a license-count refresh (Graph's `syncLicenseCounts`, one entry per token). */
export const syncLicenseCountsAction = 'syncLicenseCounts';

/** The events of one action's progress: pending → active → done | failed. */
export const actionEvents = ['requested', 'started', 'succeeded', 'failed'] as const;
export type ActionEvent = (typeof actionEvents)[number];

/**
 * The transition function of an action's `actionState`. `requested` opens a new run from any finished
 * state (or none) and is idempotent while the action is pending or active (the request coalesces).
 */
export function transitionActionState(from: ActionState, event: ActionEvent): ActionState {
  switch (from) {
    case 'none':
    case 'done':
    case 'failed':
    case 'canceled':
    case 'notSupported':
      if (event === 'requested') return 'pending';
      break;
    case 'pending':
      if (event === 'requested') return 'pending';
      if (event === 'started') return 'active';
      // A job that dies before it starts still ends as failed.
      if (event === 'failed') return 'failed';
      break;
    case 'active':
      if (event === 'requested') return 'active';
      if (event === 'succeeded') return 'done';
      if (event === 'failed') return 'failed';
      break;
    default: {
      const unreachable: never = from;
      throw errors.illegalTransition('actionState', String(unreachable), event);
    }
  }
  throw errors.illegalTransition('actionState', from, event);
}

/**
 * Applies an action event to a token's action results and returns the new list (inputs are not
 * mutated). A new run (`requested` from a finished state) resets the start time; other events only
 * move `lastUpdatedDateTime`. Other actions' entries are kept as they are.
 */
export function recordActionEvent(
  results: readonly TokenActionResult[],
  actionName: string,
  event: ActionEvent,
  at: Date,
): TokenActionResult[] {
  const index = results.findIndex((r) => r.actionName === actionName);
  const current = index >= 0 ? results[index] : undefined;
  const from: ActionState = current?.actionState ?? 'none';
  const to = transitionActionState(from, event);
  const newRun = event === 'requested' && from !== 'pending' && from !== 'active';
  let next: TokenActionResult;
  if (newRun || !current) {
    next = { actionName, actionState: to, startDateTime: at, lastUpdatedDateTime: at };
  } else if (to === from) {
    return [...results]; // coalesced request: nothing changes
  } else {
    next = { ...current, actionState: to, lastUpdatedDateTime: at };
  }
  const copy = [...results];
  if (index >= 0) copy[index] = next;
  else copy.push(next);
  return copy;
}
