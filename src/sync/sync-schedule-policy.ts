/** How automatic syncs are spaced. See the issue: every interval with jitter, expired tokens once a day. */
export interface SchedulePolicy {
  /** `--sync-interval` (default 12 h). */
  readonly intervalMs: number;
  /** Fraction of the interval a sync may come early, so tokens synced together drift apart (default 0.1). */
  readonly jitter: number;
  /** How often an expired token is re-checked with Apple (default 24 h, or the interval when longer). */
  readonly expiredRecheckMs: number;
  /**
   * Delta syncs between full ones (`VPPD_DELTA_SYNC_INTERVAL`, default 15 min): a delta is due this long
   * after the token's last sync of either kind ended; 0 turns delta syncs off.
   */
  readonly deltaIntervalMs?: number;
}

/** The default delta sync interval. */
export const defaultDeltaIntervalMs = 15 * 60_000;

export const dayMs = 86_400_000;

/** The default policy for a given interval. */
export function defaultSchedulePolicy(intervalMs: number): SchedulePolicy {
  return { intervalMs, jitter: 0.1, expiredRecheckMs: dayMs, deltaIntervalMs: defaultDeltaIntervalMs };
}

/**
 * When a token should next be synced automatically after a sync finished at `finishedAt`: one
 * interval later minus up to `jitter` of it; an expired token (Apple said 9621, or its date passed)
 * waits a day, because only a renewal (which syncs at once) can make it work again.
 */
export function nextAutomaticSync(
  finishedAt: Date,
  policy: SchedulePolicy,
  options: { readonly expired: boolean; readonly random: () => number },
): Date {
  if (options.expired) {
    return new Date(finishedAt.getTime() + Math.max(policy.intervalMs, policy.expiredRecheckMs));
  }
  const early = Math.floor(Math.min(1, Math.max(0, options.random())) * policy.jitter * policy.intervalMs);
  return new Date(finishedAt.getTime() + policy.intervalMs - early);
}

/**
 * When the next delta sync of a token is due after a sync ended at `finishedAt`: one delta interval
 * later minus up to `jitter` of it; null when delta syncs are off.
 */
export function nextDeltaSync(finishedAt: Date, policy: SchedulePolicy, random: () => number): Date | null {
  const interval = policy.deltaIntervalMs ?? 0;
  if (interval <= 0) return null;
  const early = Math.floor(Math.min(1, Math.max(0, random())) * policy.jitter * interval);
  return new Date(finishedAt.getTime() + interval - early);
}
