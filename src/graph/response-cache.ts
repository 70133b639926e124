/** Limits of a {@link ResponseCache}. */
export interface ResponseCacheOptions {
  /** Most entries held; the least recently used goes first (default 4,096). */
  readonly maxEntries?: number;
  /** Most bytes of values held, as counted by the caller (default 8 MiB). */
  readonly maxBytes?: number;
}

/**
 * Serialized responses kept in memory, each tagged with the change stamp it was read at (the caller's
 * choice; the Graph routes use the tenant's, storage/change-stamp.ts). An entry is served only while the
 * stamp is unchanged, so any write by any process that moves the stamp invalidates it: the database, not
 * this process, decides what is current. Keys must name everything the value depends on (tenant first).
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
  readonly key: string;
  readonly stamp: string;
  readonly value: V;
  readonly bytes: number;
  /** Neighbours in recency order (`older` towards the eviction end). */
  older: Entry<V> | undefined;
  newer: Entry<V> | undefined;
}

/** Creates an empty, bounded (entries and bytes) least-recently-used response cache. */
export function createResponseCache<V>(options: ResponseCacheOptions = {}): ResponseCache<V> {
  const maxEntries = Math.max(0, options.maxEntries ?? 4096);
  const maxBytes = Math.max(0, options.maxBytes ?? 8 * 1024 * 1024);
  const entries = new Map<string, Entry<V>>();
  // Recency is a linked list through the entries, not the Map's insertion order: moving a hit to the
  // front is then a few pointer changes, where deleting and re-inserting it in the Map left a
  // tombstone per hit and made the Map rehash every few thousand hits (~1.5 µs per hit under load).
  let oldest: Entry<V> | undefined;
  let newest: Entry<V> | undefined;
  let held = 0;
  const unlink = (entry: Entry<V>) => {
    if (entry.older) entry.older.newer = entry.newer;
    else oldest = entry.newer;
    if (entry.newer) entry.newer.older = entry.older;
    else newest = entry.older;
    entry.older = undefined;
    entry.newer = undefined;
  };
  const pushNewest = (entry: Entry<V>) => {
    entry.older = newest;
    entry.newer = undefined;
    if (newest) newest.newer = entry;
    else oldest = entry;
    newest = entry;
  };
  const remove = (entry: Entry<V>) => {
    entries.delete(entry.key);
    unlink(entry);
    held -= entry.bytes;
  };
  return {
    get(key, stamp) {
      const entry = entries.get(key);
      if (entry === undefined) return undefined;
      if (entry.stamp !== stamp) {
        remove(entry);
        return undefined;
      }
      if (entry !== newest) {
        unlink(entry);
        pushNewest(entry);
      }
      return entry.value;
    },
    set(key, stamp, value, bytes) {
      const previous = entries.get(key);
      if (previous !== undefined) remove(previous);
      if (bytes > maxBytes || maxEntries === 0) return;
      while (oldest !== undefined && (entries.size >= maxEntries || held + bytes > maxBytes)) remove(oldest);
      const entry: Entry<V> = { key, stamp, value, bytes, older: undefined, newer: undefined };
      entries.set(key, entry);
      pushNewest(entry);
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
