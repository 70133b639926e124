import { errors } from '../domain/errors.js';
import { FaultState, type PagedEndpoint, SlidingWindowLimiter } from './sim-faults.js';
import { type LocationSeed, SimLocation } from './sim-location.js';
import { type SimNotificationOptions, SimNotifier } from './sim-notifications.js';
import { hashSeed } from './sim-random.js';

/** Key of the fault state and request counters of the endpoints that carry no token. */
export const globalKey = '*';

export interface SimStateOptions {
  readonly seed: string | number;
  readonly locations: readonly LocationSeed[];
  readonly pageSizes: Readonly<Record<PagedEndpoint, number>>;
  readonly rateLimit: number | false;
  readonly clock: () => Date;
  readonly monotonicNow: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly eventPolls: number;
  readonly eventDelayMs: number;
  readonly maxInFlight: number | false;
  readonly notifications?: SimNotificationOptions;
}

/** What {@link SimState.rateStats} reports per location. */
export interface SimRateStats {
  /** Most requests that reached the rate check within any one-second window (admitted or not). */
  readonly busiestSecond: number;
  /** Requests answered 429 / 9646 because the location's rate limit was exceeded. */
  readonly rateLimited: number;
  /** Page-0 requests served per paged endpoint (`assignments`, `assets`, `users`). */
  readonly firstPages: Readonly<Record<string, number>>;
}

interface RateTrack {
  readonly window: number[];
  busiestSecond: number;
  rateLimited: number;
  readonly firstPages: Record<string, number>;
}

/** Everything the simulator knows, shared by the Apple routes, the admin routes and the programmatic API. */
export class SimState {
  readonly seed: string | number;
  readonly seedKey: number;
  readonly locations = new Map<string, SimLocation>();
  readonly pageSizes: Readonly<Record<PagedEndpoint, number>>;
  readonly clock: () => Date;
  readonly monotonicNow: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly eventPolls: number;
  readonly eventDelayMs: number;
  readonly limiter = new SlidingWindowLimiter();
  /** Sends Apple's notifications to the URLs locations registered. */
  readonly notifier: SimNotifier;
  rateLimit: number | false;
  maxInFlight: number | false;
  private readonly inFlight = new Map<string, number>();
  private peaks = new Map<string, number>();
  private readonly byToken = new Map<string, SimLocation>();
  private readonly catalogInUse = new Set<number>();
  private readonly faultStates = new Map<string, FaultState>();
  private counts = new Map<string, Map<string, number>>();
  private rates = new Map<string, RateTrack>();

  constructor(options: SimStateOptions) {
    this.seed = options.seed;
    this.seedKey = hashSeed(options.seed);
    this.pageSizes = options.pageSizes;
    this.clock = options.clock;
    this.monotonicNow = options.monotonicNow;
    this.sleep = options.sleep;
    this.eventPolls = options.eventPolls;
    this.eventDelayMs = options.eventDelayMs;
    this.rateLimit = options.rateLimit;
    this.maxInFlight = options.maxInFlight;
    this.notifier = new SimNotifier(options.notifications);
    const now = options.clock();
    for (const seed of options.locations) {
      if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(seed.id)) {
        throw errors.config('apple-sim location id', `'${seed.id}' must be letters, digits, '-' or '_'`);
      }
      if (this.locations.has(seed.id)) {
        throw errors.config('apple-sim location id', `'${seed.id}' is used twice`);
      }
      const location = new SimLocation(options.seed, this.seedKey, seed, now);
      this.locations.set(seed.id, location);
      for (const token of location.innerTokens) this.byToken.set(token, location);
      for (const asset of location.base.assets) this.catalogInUse.add(asset.item.catalogIndex);
    }
  }

  /** True when some location licenses catalog item `c`: the store "knows" exactly those adamIds. */
  knownCatalogIndex(c: number): boolean {
    return this.catalogInUse.has(c);
  }

  /** The location a token identifies (whatever its state), or undefined when Apple never issued it. */
  locationByToken(innerToken: string): SimLocation | undefined {
    return this.byToken.get(innerToken);
  }

  /** A location by id; throws VppdError(notFound) for the admin API and the programmatic faults. */
  location(id: string): SimLocation {
    const location = this.locations.get(id);
    if (location === undefined) throw errors.notFound('apple-sim location', id);
    return location;
  }

  /** The fault state of a location, or of the unauthenticated endpoints for {@link globalKey}. */
  faults(key: string): FaultState {
    if (key !== globalKey) this.location(key);
    let state = this.faultStates.get(key);
    if (state === undefined) {
      state = new FaultState();
      this.faultStates.set(key, state);
    }
    return state;
  }

  /** Counts a request received, per location (or {@link globalKey}) and `METHOD endpoint`. */
  count(key: string, method: string, endpoint: string): void {
    let perLocation = this.counts.get(key);
    if (perLocation === undefined) {
      perLocation = new Map();
      this.counts.set(key, perLocation);
    }
    const name = `${method} ${endpoint}`;
    perLocation.set(name, (perLocation.get(name) ?? 0) + 1);
  }

  /** Snapshot of the counters: `{ [locationId | '*']: { 'GET assignments': n, ... } }`. */
  requestCounts(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [key, perLocation] of this.counts) out[key] = Object.fromEntries(perLocation);
    return out;
  }

  resetRequestCounts(): void {
    this.counts = new Map();
    this.peaks = new Map();
    this.rates = new Map();
  }

  /**
   * Notes a request of the location reaching the rate check at `now` (monotonic ms), whether it was
   * admitted or not: the busiest one-second window of arrivals is what Apple's limit is about.
   */
  noteArrival(locationId: string, now: number, rateLimited: boolean): void {
    const track = this.#rateTrack(locationId);
    while (track.window.length > 0 && (track.window[0] as number) <= now - 1000) track.window.shift();
    track.window.push(now);
    track.busiestSecond = Math.max(track.busiestSecond, track.window.length);
    if (rateLimited) track.rateLimited++;
  }

  /** Notes page 0 of a paged endpoint served (one per full read: a sync reads assignments once). */
  noteFirstPage(locationId: string, endpoint: string): void {
    const track = this.#rateTrack(locationId);
    track.firstPages[endpoint] = (track.firstPages[endpoint] ?? 0) + 1;
  }

  /** Per location since the counters were last reset: busiest second, 429s of the rate limit, first pages. */
  rateStats(): Record<string, SimRateStats> {
    const out: Record<string, SimRateStats> = {};
    for (const [key, track] of this.rates) {
      out[key] = {
        busiestSecond: track.busiestSecond,
        rateLimited: track.rateLimited,
        firstPages: { ...track.firstPages },
      };
    }
    return out;
  }

  #rateTrack(locationId: string): RateTrack {
    let track = this.rates.get(locationId);
    if (track === undefined) {
      track = { window: [], busiestSecond: 0, rateLimited: 0, firstPages: {} };
      this.rates.set(locationId, track);
    }
    return track;
  }

  /** A request of the location starts; returns how many are now in flight (this one included). */
  enter(locationId: string): number {
    const now = (this.inFlight.get(locationId) ?? 0) + 1;
    this.inFlight.set(locationId, now);
    if (now > (this.peaks.get(locationId) ?? 0)) this.peaks.set(locationId, now);
    return now;
  }

  /** A request of the location has been answered. */
  leave(locationId: string): void {
    this.inFlight.set(locationId, (this.inFlight.get(locationId) ?? 1) - 1);
  }

  /** Most requests of each location that were in flight at once since the counters were last reset. */
  peakInFlight(): Record<string, number> {
    return Object.fromEntries(this.peaks);
  }

  /** Everything back to the seeded state: data, token states, mdmInfo, events, faults, counters, limiter. */
  reset(): void {
    for (const location of this.locations.values()) location.resetState();
    for (const state of this.faultStates.values()) state.clear();
    this.limiter.clear();
    this.notifier.reset();
    this.resetRequestCounts();
  }
}
