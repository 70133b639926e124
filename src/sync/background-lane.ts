import { performance } from 'node:perf_hooks';

/**
 * Where sync work waits for its turn so that requests are answered first (issue 18). Each
 * {@link BackgroundLane.turn} resolves in its own `setImmediate`, one waiter per event-loop turn,
 * so between two slices of sync work (a page parsed, a batch staged) the loop goes through its poll
 * phase and reads every request that arrived meanwhile. And the lane keeps the thread from running
 * flat out: when the event loop was busy more than `maxBusy` of the last `windowMs`, the next slice
 * waits `pauseMs`, so a request that arrives finds the thread idle or one slice from it instead of
 * queued behind a saturated loop.
 */
export interface BackgroundLane {
  /** Resolves when it is this caller's turn; the work after it is one slice. */
  turn(): Promise<void>;
  /** Slices waiting for their turn. */
  readonly waiting: number;
}

export interface BackgroundLaneOptions {
  /** Event-loop utilization above which slices pause (default 0.6). */
  readonly maxBusy?: number;
  /** Window the utilization is measured over (default 100 ms). */
  readonly windowMs?: number;
  /** How long a slice waits when the loop was too busy (default 10 ms). */
  readonly pauseMs?: number;
}

/** A lane that never waits (tests, and callers that run alone). */
export const noLane: BackgroundLane = { turn: () => Promise.resolve(), waiting: 0 };

/** Builds a lane: one slice per event-loop turn, first come first served, under a utilization cap. */
export function createBackgroundLane(options: BackgroundLaneOptions = {}): BackgroundLane {
  const maxBusy = options.maxBusy ?? 0.6;
  const windowMs = options.windowMs ?? 100;
  const pauseMs = options.pauseMs ?? 10;
  const waiting: (() => void)[] = [];
  let scheduled = false;
  let mark = performance.eventLoopUtilization();
  let markAt = performance.now();
  let tooBusy = false;
  const schedule = () => {
    const now = performance.now();
    if (now - markAt >= windowMs) {
      const current = performance.eventLoopUtilization();
      tooBusy = performance.eventLoopUtilization(current, mark).utilization > maxBusy;
      mark = current;
      markAt = now;
    }
    if (tooBusy) setTimeout(next, pauseMs);
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
  };
}
