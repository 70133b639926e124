import { errors } from '../domain/errors.js';
import type { LocationSeed } from './sim-location-seed.js';
import { encodeVppTokenFile, formatAppleDate, innerTokenFor } from './sim-token.js';

/** One `.vpptoken` file the simulator accepts. */
export interface SimTokenFile {
  readonly locationId: string;
  /** 0 for the first token of the location, 1 for a second (renewed) one, ... */
  readonly index: number;
  /** `<location>.vpptoken`, `<location>-2.vpptoken` for a second token. */
  readonly fileName: string;
  /** The file content (secret): base64 of `{token, expDate, orgName}`. */
  readonly content: string;
}

/**
 * The token files of the given locations under a seed, exactly as a simulator started with the same
 * seed (the same day, when expiry defaults) accepts them. No server is needed to compute them.
 */
export function simTokenFiles(
  seed: string | number,
  locations: readonly LocationSeed[],
  now: Date,
): SimTokenFile[] {
  return locations.flatMap((location) => {
    const expDate = formatAppleDate(resolveExpiry(location, now));
    return Array.from({ length: Math.max(1, location.tokens ?? 1) }, (_, index) => ({
      locationId: location.id,
      index,
      fileName: index === 0 ? `${location.id}.vpptoken` : `${location.id}-${index + 1}.vpptoken`,
      content: encodeVppTokenFile({
        token: innerTokenFor(seed, location.id, index),
        expDate,
        orgName: location.orgName,
      }),
    }));
  });
}

/** When a location's tokens expire: the seed's `expiresAt`, else a year after `now`'s day (past for `expired`). */
export function resolveExpiry(seed: LocationSeed, now: Date): Date {
  if (seed.expiresAt !== undefined) {
    const date = seed.expiresAt instanceof Date ? seed.expiresAt : new Date(seed.expiresAt);
    if (Number.isNaN(date.getTime())) {
      throw errors.config(`apple-sim location ${seed.id}`, 'expiresAt is not a date');
    }
    return date;
  }
  // Anchored to the start of the UTC day (at Apple's favourite 22:33:22), so token files written by
  // `vppd apple-sim tokens` and a simulator started later the same day carry the same expDate.
  const day = 24 * 60 * 60 * 1000;
  const base = Math.floor(now.getTime() / day) * day + (22 * 3600 + 33 * 60 + 22) * 1000;
  return new Date(seed.state === 'expired' ? base - 30 * day : base + 365 * day);
}
