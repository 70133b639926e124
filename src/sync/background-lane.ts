import { performance } from 'node:perf_hooks';

/**
 * Where sync work waits for its turn so that requests are answered first (issue 18). Each
 * {@link BackgroundLane.turn} resolves in its own `setImmediate`, one waiter per event-loop turn,
 * so between two slices of sync work (a page parsed, a batch staged) the loop goes through its poll
 * phase and reads every request that arrived meanwhile. And the lane keeps the thread from running
 * flat out: while the event loop was busy more than `maxBusy` of the current window, each slice
 * first waits `pauseMs`, so a request that arrives finds the thread idle or one slice from it
 * instead of queued behind a saturated loop; syncs get the rest of the thread. The cap holds only
 * while requests are coming in (the API calls {@link BackgroundLane.noteRequest}); with none, sync
 * work runs flat out.
 */
export interface BackgroundLane {
  /** Resolves when it is this caller's turn; the work after it is one slice. */
  turn(): Promise<void>;
  /** Slices waiting for their turn. */
  readonly waiting: number;
  /** A request arrived: for the next `requestsRecentMs`, slices keep the loop's utilization capped. */
  noteRequest(): void;
}

export interface BackgroundLaneOptions {
  /** Event-loop utilization above which slices pause (default 0.6). */
  readonly maxBusy?: number;
  /** Window the utilization is measured over (default 100 ms). */
  readonly windowMs?: number;
  /** How long a slice waits when the loop was too busy (default 5 ms). */
  readonly pauseMs?: number;
  /** How long after the last request the cap applies (default 1 s); with no requests syncs run flat out. */
  readonly requestsRecentMs?: number;
}

/** A lane that never waits (tests, and callers that run alone). */
export const noLane: BackgroundLane = {
  turn: () => Promise.resolve(),
  waiting: 0,
  noteRequest: () => undefined,
};

/** Builds a lane: one slice per event-loop turn, first come first served, under a utilization cap. */
export function createBackgroundLane(options: BackgroundLaneOptions = {}): BackgroundLane {
  const maxBusy = options.maxBusy ?? 0.6;
  const windowMs = options.windowMs ?? 100;
  const pauseMs = options.pauseMs ?? 5;
  const requestsRecentMs = options.requestsRecentMs ?? 1000;
  let lastRequestAt = Number.NEGATIVE_INFINITY;
  const waiting: (() => void)[] = [];
  let scheduled = false;
  // The window: since `windowStart`, slices run back to back while the loop was busy at most
  // `maxBusy` of it; past that, each slice first lets the loop idle `pauseMs`. A new window starts
  // every `windowMs`, so a burst of requests long ago does not hold syncs back.
  let windowStart = performance.now();
  let windowMark = performance.eventLoopUtilization();
  const schedule = () => {
    const now = performance.now();
    if (now - windowStart >= windowMs) {
      windowStart = now;
      windowMark = performance.eventLoopUtilization();
    }
    const busy =
      now - lastRequestAt < requestsRecentMs &&
      now - windowStart >= pauseMs &&
      performance.eventLoopUtilization(windowMark).utilization > maxBusy;
    if (busy) setTimeout(next, pauseMs);
    else setImmediate(next);
  };
  const next = () => {
    const resume = waiting.shift();
    if (waiting.length > 0) schedule();
    else scheduled = false;
    resume?.();
  };
  return {
    turn() {
      return new Promise<void>((resolve) => {
        waiting.push(resolve);
        if (!scheduled) {
          scheduled = true;
          schedule();
        }
      });
    },
    get waiting() {
      return waiting.length;
    },
    noteRequest() {
      lastRequestAt = performance.now();
    },
  };
}
