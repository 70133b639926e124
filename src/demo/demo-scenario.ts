import { defaultSimLocations, type LocationSeed } from '../apple-sim/apple-sim.js';
import { resolveExpiry } from '../apple-sim/sim-token-files.js';

/** Seed of the demo's simulator: same seed, same Apple data and token files on every start. */
export const demoSimSeed = 'vppd-demo';

/** Latency added to every Apple call of the large location, so its sync stays `inProgress` ~30 s. */
export const demoLargeLatencyMs = 1500;

/** The location whose token is uploaded with its first sync deferred: it shows `none` / `unknown`. */
export const demoDeferredLocationId = 'first-sync-later';

/** The location re-synced on every demo start, so `inProgress` is visible after a restart too. */
export const demoLargeLocationId = 'large';

/** One token of the demo tenant: which simulator token file it is and what it shows. */
export interface DemoToken {
  readonly locationId: string;
  /** Index of the location's token file (the duplicate location has two). */
  readonly index: number;
  /** Also the demo's identity of the token: a token with this name in the tenant is not uploaded again. */
  readonly displayName: string;
  /** What the token ends up showing (lastSyncStatus / state), for the start-up summary and the docs. */
  readonly shows: string;
  /** `now`: uploaded with its first sync requested, as the API does; `deferred`: first sync scheduled later. */
  readonly firstSync: 'now' | 'deferred';
}

/** The demo tenant's tokens, one per situation vppd must report. */
export const demoTokens: readonly DemoToken[] = [
  {
    locationId: 'small',
    index: 0,
    displayName: 'Springfield Elementary (healthy)',
    shows: 'completed / valid',
    firstSync: 'now',
  },
  {
    locationId: 'large',
    index: 0,
    displayName: 'Shelbyville High School (large: 50,000 licenses, slow)',
    shows: 'inProgress for ~30 s on every start, then completed / valid',
    firstSync: 'now',
  },
  {
    locationId: 'expired',
    index: 0,
    displayName: 'Ogdenville Library (expired token)',
    shows: 'failed / expired (Apple 9621)',
    firstSync: 'now',
  },
  {
    locationId: 'revoked',
    index: 0,
    displayName: 'North Haverbrook Campus (revoked token)',
    shows: 'failed / invalid (Apple 9625)',
    firstSync: 'now',
  },
  {
    locationId: 'external-mdm',
    index: 0,
    displayName: 'Capital City Office (managed by another MDM)',
    shows: 'failed / assignedToExternalMDM',
    firstSync: 'now',
  },
  {
    locationId: 'duplicate',
    index: 0,
    displayName: 'Brockway Branch (token 1 of 2)',
    shows: 'one of the two: completed / valid, the other failed / duplicateLocationId',
    firstSync: 'now',
  },
  {
    locationId: 'duplicate',
    index: 1,
    displayName: 'Brockway Branch (token 2 of 2, same location)',
    shows: 'one of the two: completed / valid, the other failed / duplicateLocationId',
    firstSync: 'now',
  },
  {
    locationId: demoDeferredLocationId,
    index: 0,
    displayName: 'Cypress Creek Annex (first sync scheduled later)',
    shows: 'none / unknown until its first automatic sync (one sync interval after seeding)',
    firstSync: 'deferred',
  },
];

/**
 * The demo's simulator locations: the default scenario plus one location for the deferred token.
 * Expiry is anchored to `anchor` (the demo's first start) instead of the current day, so the token
 * files, and what Apple reports, stay the same on every restart.
 */
export function demoSimLocations(anchor: Date): LocationSeed[] {
  const locations: LocationSeed[] = [
    ...defaultSimLocations(),
    {
      id: demoDeferredLocationId,
      name: 'Cypress Creek Annex',
      orgName: 'Globex Corporation',
      countryCode: 'US',
      assets: 10,
      assignments: 60,
      users: 15,
    },
  ];
  return locations.map((location) => ({ ...location, expiresAt: resolveExpiry(location, anchor) }));
}
