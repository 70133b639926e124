import { describe, expect, it } from 'vitest';
import { createResponseCache } from './response-cache.js';

describe('createResponseCache', () => {
  it('serves a value only at the stamp it was stored under, and drops it at another', () => {
    const cache = createResponseCache<string>();
    cache.set('k', '1:0', 'v1', 2);
    expect(cache.get('k', '1:0')).toBe('v1');
    expect(cache.get('k', '2:0')).toBeUndefined();
    // The stale entry is gone, not kept for the old stamp.
    expect(cache.get('k', '1:0')).toBeUndefined();
    expect(cache.size).toBe(0);
    expect(cache.bytes).toBe(0);
  });

  it('keeps keys apart', () => {
    const cache = createResponseCache<string>();
    cache.set('["tenant-a","/x"]', 's', 'a', 1);
    cache.set('["tenant-b","/x"]', 's', 'b', 1);
    expect(cache.get('["tenant-a","/x"]', 's')).toBe('a');
    expect(cache.get('["tenant-b","/x"]', 's')).toBe('b');
  });

  it('evicts the least recently used entry past the entry limit', () => {
    const cache = createResponseCache<string>({ maxEntries: 2 });
    cache.set('a', 's', 'A', 1);
    cache.set('b', 's', 'B', 1);
    expect(cache.get('a', 's')).toBe('A');
    cache.set('c', 's', 'C', 1);
    expect(cache.get('b', 's')).toBeUndefined();
    expect(cache.get('a', 's')).toBe('A');
    expect(cache.get('c', 's')).toBe('C');
    expect(cache.size).toBe(2);
  });

  it('stays within the byte limit and does not keep a value larger than it', () => {
    const cache = createResponseCache<string>({ maxBytes: 10 });
    cache.set('a', 's', 'A', 4);
    cache.set('b', 's', 'B', 4);
    cache.set('c', 's', 'C', 4);
    expect(cache.bytes).toBeLessThanOrEqual(10);
    expect(cache.get('a', 's')).toBeUndefined();
    expect(cache.get('c', 's')).toBe('C');
    cache.set('huge', 's', 'H', 11);
    expect(cache.get('huge', 's')).toBeUndefined();
    expect(cache.get('c', 's')).toBe('C');
  });

  it('replaces an entry stored again under the same key', () => {
    const cache = createResponseCache<string>();
    cache.set('k', 's1', 'old', 3);
    cache.set('k', 's2', 'new', 5);
    expect(cache.get('k', 's2')).toBe('new');
    expect(cache.size).toBe(1);
    expect(cache.bytes).toBe(5);
  });

  it('keeps nothing with a zero entry limit', () => {
    const cache = createResponseCache<string>({ maxEntries: 0 });
    cache.set('k', 's', 'v', 1);
    expect(cache.get('k', 's')).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});
