/** Limits of a {@link ResponseCache}. */
export interface ResponseCacheOptions {
  /** Most entries held; the least recently used goes first (default 4,096). */
  readonly maxEntries?: number;
  /** Most bytes of values held, as counted by the caller (default 8 MiB). */
  readonly maxBytes?: number;
}

/**
 * Serialized responses kept in memory, each tagged with the database change stamp it was read at
 * (storage/change-stamp.ts). An entry is served only while the stamp is unchanged, so any write by any
 * process invalidates it: the database, not this process, decides what is current. Keys must name
 * everything the value depends on (tenant first).
 */
export interface ResponseCache<V> {
  /** The value stored under `key` at exactly this stamp, or undefined. */
  get(key: string, stamp: string): V | undefined;
  /** Stores a value read after `stamp` was read; values larger than the byte limit are not kept. */
  set(key: string, stamp: string, value: V, bytes: number): void;
  /** Entries held. */
  readonly size: number;
  /** Bytes held. */
  readonly bytes: number;
}

interface Entry<V> {
  readonly stamp: string;
  readonly value: V;
  readonly bytes: number;
}

/** Creates an empty, bounded (entries and bytes) least-recently-used response cache. */
export function createResponseCache<V>(options: ResponseCacheOptions = {}): ResponseCache<V> {
  const maxEntries = Math.max(0, options.maxEntries ?? 4096);
  const maxBytes = Math.max(0, options.maxBytes ?? 8 * 1024 * 1024);
  // A Map iterates in insertion order: re-inserting on a hit keeps the oldest entry first.
  const entries = new Map<string, Entry<V>>();
  let held = 0;
  const remove = (key: string, entry: Entry<V>) => {
    entries.delete(key);
    held -= entry.bytes;
  };
  return {
    get(key, stamp) {
      const entry = entries.get(key);
      if (entry === undefined) return undefined;
      if (entry.stamp !== stamp) {
        remove(key, entry);
        return undefined;
      }
      entries.delete(key);
      entries.set(key, entry);
      return entry.value;
    },
    set(key, stamp, value, bytes) {
      const previous = entries.get(key);
      if (previous !== undefined) remove(key, previous);
      if (bytes > maxBytes || maxEntries === 0) return;
      while (entries.size >= maxEntries || held + bytes > maxBytes) {
        const oldest = entries.entries().next();
        if (oldest.done) break;
        remove(oldest.value[0], oldest.value[1]);
      }
      entries.set(key, { stamp, value, bytes });
      held += bytes;
    },
    get size() {
      return entries.size;
    },
    get bytes() {
      return held;
    },
  };
}
