/** A clock tests move by hand; `now()` returns a fresh Date each time. */
export interface FakeClock {
  now(): Date;
  set(date: Date | string): void;
  advance(ms: number): void;
}

/** Creates a fake clock starting at `start`. */
export function createFakeClock(start: Date | string = '2026-03-01T12:00:00.000Z'): FakeClock {
  let current = new Date(start).getTime();
  return {
    now: () => new Date(current),
    set: (date) => {
      current = new Date(date).getTime();
    },
    advance: (ms) => {
      current += ms;
    },
  };
}

/** Sequential GUIDs (`00000000-0000-4000-8000-000000000001`, ...) so tests can predict ids. */
export function createSequentialIds(prefix = '00000000'): () => string {
  let n = 0;
  return () => {
    n += 1;
    return `${prefix}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
  };
}
