import type { StoredEvent } from '../storage/event-store.js';

/**
 * Which events after a reader's cursor may be handled now: the longest run without a hole, where a
 * hole waited for `graceMs` (by this process's clock, from when it first saw it) counts as filled. A
 * hole is an append still in flight (PostgreSQL hands out `seq` before commit) or one rolled back (its
 * `seq` is never used). One per reader of the log.
 */
export class EventHoles {
  readonly #graceMs: number;
  /** When this process first saw each hole in the sequence (by the first missing seq). */
  readonly #seenAt = new Map<number, number>();

  constructor(graceMs: number) {
    this.#graceMs = graceMs;
  }

  handleable(cursor: number, events: readonly StoredEvent[], now: Date): StoredEvent[] {
    const out: StoredEvent[] = [];
    let expected = cursor + 1;
    for (const event of events) {
      if (event.seq !== expected) {
        const seenAt = this.#seenAt.get(expected);
        if (seenAt === undefined) this.#seenAt.set(expected, now.getTime());
        if (seenAt === undefined || now.getTime() - seenAt < this.#graceMs) break;
      }
      out.push(event);
      expected = event.seq + 1;
    }
    for (const first of this.#seenAt.keys()) if (first < expected) this.#seenAt.delete(first);
    return out;
  }
}
