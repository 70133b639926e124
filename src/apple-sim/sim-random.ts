import { createHash } from 'node:crypto';

// The simulator never calls Math.random: every value is a pure function of the seed and an index, so
// two simulators started with the same seed serve byte-identical data, and any record can be computed
// on demand from its position (no need to hold a million assignments in memory).

/** Reduces a seed (string or number) to a 32-bit unsigned integer. */
export function hashSeed(seed: string | number): number {
  return createHash('sha256')
    .update(`vppd-apple-sim:${String(seed)}`)
    .digest()
    .readUInt32BE(0);
}

/** Hashes a 32-bit key together with any number of integers into one well-mixed 32-bit value. */
export function mixHash(key: number, ...values: readonly number[]): number {
  let h = key >>> 0;
  for (const v of values) {
    h = Math.imul(h ^ (v >>> 0), 0x9e3779b1) >>> 0;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h ^= h >>> 16;
    // Mix in the high part too, so indices above 2^32 (never expected, but cheap) still differ.
    if (v > 0xffffffff) h = mixHash(h, Math.floor(v / 0x100000000));
  }
  return h >>> 0;
}

/** A hash in [0, 1), for weighted choices. */
export function unitHash(key: number, ...values: readonly number[]): number {
  return mixHash(key, ...values) / 0x100000000;
}

/** Hashes a string into 32 bits (for location ids used as hash keys). */
export function hashString(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0);
}
