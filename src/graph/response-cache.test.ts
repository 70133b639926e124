import fc from 'fast-check';
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

  it('behaves as a plain least-recently-used list, whatever the sequence of reads and writes', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('get' as const),
        key: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
        stamp: fc.constantFrom('1', '2'),
      }),
      fc.record({
        kind: fc.constant('set' as const),
        key: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
        stamp: fc.constantFrom('1', '2'),
        bytes: fc.integer({ min: 0, max: 6 }),
      }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 0, max: 12 }),
        fc.array(op, { maxLength: 60 }),
        (maxEntries, maxBytes, ops) => {
          const cache = createResponseCache<string>({ maxEntries, maxBytes });
          // The model: an array from least to most recently used.
          let model: { key: string; stamp: string; value: string; bytes: number }[] = [];
          ops.forEach((o, i) => {
            if (o.kind === 'get') {
              const found = model.find((e) => e.key === o.key);
              let expected: string | undefined;
              if (found) {
                model = model.filter((e) => e !== found);
                if (found.stamp === o.stamp) {
                  model.push(found);
                  expected = found.value;
                }
              }
              expect(cache.get(o.key, o.stamp)).toBe(expected);
            } else {
              const value = `v${i}`;
              cache.set(o.key, o.stamp, value, o.bytes);
              model = model.filter((e) => e.key !== o.key);
              if (o.bytes <= maxBytes && maxEntries > 0) {
                const total = () => model.reduce((t, e) => t + e.bytes, 0);
                while (model.length > 0 && (model.length >= maxEntries || total() + o.bytes > maxBytes))
                  model.shift();
                model.push({ key: o.key, stamp: o.stamp, value, bytes: o.bytes });
              }
            }
            expect(cache.size).toBe(model.length);
            expect(cache.bytes).toBe(model.reduce((t, e) => t + e.bytes, 0));
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});
