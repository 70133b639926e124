/**
 * Graph's published limits for these Intune endpoints (docs/graph-api.md, "Not served, on purpose"), applied when
 * `VPPD_GRAPH_THROTTLING=intune`: per 20 seconds, 2,000 requests and 200 writes per tenant, and
 * 1,000 requests and 100 writes per app (`appid`/`azp`) per tenant. A write is POST, PATCH, PUT or
 * DELETE and counts as a request too.
 *
 * - **Fixed windows**: each counter's 20 s window starts at its first request and resets when it ends.
 *   Simple and predictable: `Retry-After` is the time left in the window that is full (whole seconds,
 *   rounded up). A client can send up to twice a limit across a window boundary; Graph's exact
 *   algorithm is not published either.
 * - **Per process**: counters live in memory. With several API processes behind a load balancer each
 *   counts on its own, so the effective limit is the per-process limit times the processes.
 * - A refused request counts against nothing; a `$batch` counts as its steps (each goes through here).
 */
export const throttleWindowMs = 20_000;

export interface ThrottleLimits {
  readonly tenantRequests: number;
  readonly tenantWrites: number;
  readonly appRequests: number;
  readonly appWrites: number;
}

/** Intune's published limits per 20 s. */
export const intuneLimits: ThrottleLimits = {
  tenantRequests: 2000,
  tenantWrites: 200,
  appRequests: 1000,
  appWrites: 100,
};

export interface ThrottleRequest {
  readonly tenantId: string;
  /** The calling app; undefined: only the tenant limits apply. */
  readonly appId: string | undefined;
  readonly write: boolean;
}

export type ThrottleDecision =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      /** Whole seconds until the full window ends (at least 1). */
      readonly retryAfterSeconds: number;
      /** The limit crossed (the one freeing up last when several are). */
      readonly scope: 'tenant' | 'app';
      readonly kind: 'request' | 'write';
    };

export interface GraphThrottle {
  /** Counts the request if every limit has room, else refuses it (counting nothing). */
  take(request: ThrottleRequest): ThrottleDecision;
}

interface Window {
  startMs: number;
  count: number;
}

/** Creates the in-memory throttle; `clock` is injected so tests move time by hand. */
export function createGraphThrottle(clock: () => Date, limits: ThrottleLimits = intuneLimits): GraphThrottle {
  const windows = new Map<string, Window>();
  let lastSweepMs = 0;

  const current = (key: string, nowMs: number): Window => {
    let window = windows.get(key);
    if (window === undefined || nowMs >= window.startMs + throttleWindowMs || nowMs < window.startMs) {
      window = { startMs: nowMs, count: 0 };
      windows.set(key, window);
    }
    return window;
  };

  const sweep = (nowMs: number) => {
    if (nowMs - lastSweepMs < throttleWindowMs) return;
    lastSweepMs = nowMs;
    for (const [key, window] of windows) {
      if (nowMs >= window.startMs + throttleWindowMs) windows.delete(key);
    }
  };

  return {
    take(request) {
      const nowMs = clock().getTime();
      sweep(nowMs);
      const tenant = JSON.stringify([request.tenantId]);
      const app = request.appId === undefined ? undefined : JSON.stringify([request.tenantId, request.appId]);
      const checks: { key: string; limit: number; scope: 'tenant' | 'app'; kind: 'request' | 'write' }[] = [
        { key: `t:r:${tenant}`, limit: limits.tenantRequests, scope: 'tenant', kind: 'request' },
      ];
      if (request.write)
        checks.push({ key: `t:w:${tenant}`, limit: limits.tenantWrites, scope: 'tenant', kind: 'write' });
      if (app !== undefined) {
        checks.push({ key: `a:r:${app}`, limit: limits.appRequests, scope: 'app', kind: 'request' });
        if (request.write)
          checks.push({ key: `a:w:${app}`, limit: limits.appWrites, scope: 'app', kind: 'write' });
      }
      let refused: Extract<ThrottleDecision, { allowed: false }> | undefined;
      const counted: Window[] = [];
      for (const check of checks) {
        const window = current(check.key, nowMs);
        if (window.count < check.limit) {
          counted.push(window);
          continue;
        }
        const retryAfterSeconds = Math.max(1, Math.ceil((window.startMs + throttleWindowMs - nowMs) / 1000));
        if (refused === undefined || retryAfterSeconds > refused.retryAfterSeconds) {
          refused = { allowed: false, retryAfterSeconds, scope: check.scope, kind: check.kind };
        }
      }
      if (refused !== undefined) return refused;
      for (const window of counted) window.count += 1;
      return { allowed: true };
    },
  };
}
