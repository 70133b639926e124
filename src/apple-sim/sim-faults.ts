import { errors } from '../domain/errors.js';

/** Endpoints as the simulator names them in faults and request counters (paths under `/mdm/v2/`). */
export const simEndpoints = [
  'service/config',
  'client/config',
  'assets',
  'assignments',
  'users',
  'status',
  'assets/eventStatus',
  'assets/associate',
  'assets/disassociate',
  'assets/revoke',
  'lookup',
] as const;
export type SimEndpoint = (typeof simEndpoints)[number];

export const pagedEndpoints = ['assets', 'assignments', 'users'] as const;
export type PagedEndpoint = (typeof pagedEndpoints)[number];

/**
 * A scripted fault. Counted faults (`serverError`, `rateLimitBurst`, `errorInBody`) hit the next
 * `count` matching requests (all endpoints unless `endpoint` is given), in the order they were added.
 */
export type FaultSpec =
  | {
      readonly type: 'serverError';
      readonly count: number;
      /** 5xx status, default 503. */
      readonly status?: number;
      /** `Retry-After` seconds, default 1; 0 omits the header. */
      readonly retryAfter?: number;
      /** errorNumber in the body, default 9603; 0 answers an HTML page with no Apple error at all. */
      readonly errorNumber?: number;
      readonly endpoint?: SimEndpoint;
    }
  | {
      readonly type: 'rateLimitBurst';
      readonly count: number;
      /** `Retry-After` seconds; omitted by default (Apple does not promise one on 429). */
      readonly retryAfter?: number;
      readonly endpoint?: SimEndpoint;
    }
  | {
      readonly type: 'errorInBody';
      readonly count: number;
      /** Apple error number answered with HTTP 200, e.g. 9622 or 9722. */
      readonly errorNumber: number;
      readonly errorMessage?: string;
      readonly endpoint?: SimEndpoint;
    }
  | {
      readonly type: 'latency';
      /** Added to every request of the location (0 removes it). */
      readonly ms: number;
    }
  | {
      readonly type: 'changeDataAfterPage';
      /** After the page with this index is served, the data changes and the versionId moves. */
      readonly page: number;
      /** Default `assignments`. */
      readonly endpoint?: PagedEndpoint;
      /** How many times the change happens (each time that page is served), default 1. */
      readonly times?: number;
    }
  | {
      /** Items of the next `count` events fail with `errorNumber` instead of being applied. */
      readonly type: 'eventFailure';
      readonly count: number;
      readonly errorNumber: number;
      readonly errorMessage?: string;
      /** Only these holders fail (default: every item of the event). */
      readonly serialNumbers?: readonly string[];
      readonly clientUserIds?: readonly string[];
      readonly endpoint?: EventEndpoint;
    }
  | {
      /** The next `count` events stay PENDING whatever the polls and the delay (Apple's stuck events). */
      readonly type: 'eventPending';
      readonly count: number;
      readonly endpoint?: EventEndpoint;
    };

export type CountedFault = Extract<FaultSpec, { type: 'serverError' | 'rateLimitBurst' | 'errorInBody' }>;

/** Endpoints whose events the `eventFailure` and `eventPending` faults script. */
export const eventEndpoints = ['assets/associate', 'assets/disassociate'] as const;
export type EventEndpoint = (typeof eventEndpoints)[number];

/** A fault applied to the events of the next `count` associate/disassociate calls (see sim-asset-operations.ts). */
export type EventFault = Extract<FaultSpec, { type: 'eventFailure' | 'eventPending' }>;

/** The faults pending for one location (or for the unauthenticated endpoints). */
export class FaultState {
  latencyMs = 0;
  private counted: { spec: CountedFault; remaining: number }[] = [];
  private changes: { page: number; endpoint: PagedEndpoint; remaining: number }[] = [];
  private eventFaults: { spec: EventFault; remaining: number }[] = [];

  add(spec: FaultSpec): void {
    const checked = validateFault(spec);
    switch (checked.type) {
      case 'latency':
        this.latencyMs = checked.ms;
        return;
      case 'changeDataAfterPage':
        this.changes.push({
          page: checked.page,
          endpoint: checked.endpoint ?? 'assignments',
          remaining: checked.times ?? 1,
        });
        return;
      case 'serverError':
      case 'rateLimitBurst':
      case 'errorInBody':
        this.counted.push({ spec: checked, remaining: checked.count });
        return;
      case 'eventFailure':
      case 'eventPending':
        this.eventFaults.push({ spec: checked, remaining: checked.count });
        return;
      default: {
        const never: never = checked;
        throw errors.badRequest(`unknown fault ${JSON.stringify(never)}`);
      }
    }
  }

  /** Consumes and returns the first counted fault matching the endpoint, if any. */
  take(endpoint: SimEndpoint): CountedFault | undefined {
    const index = this.counted.findIndex(
      (f) => f.spec.endpoint === undefined || f.spec.endpoint === endpoint,
    );
    if (index < 0) return undefined;
    const fault = this.counted[index]!;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.counted.splice(index, 1);
    return fault.spec;
  }

  /** Consumes one use of every event fault matching the endpoint; they all apply to the new event. */
  takeEventFaults(endpoint: EventEndpoint): EventFault[] {
    const taken: EventFault[] = [];
    for (const fault of this.eventFaults) {
      if (fault.spec.endpoint !== undefined && fault.spec.endpoint !== endpoint) continue;
      taken.push(fault.spec);
      fault.remaining -= 1;
    }
    this.eventFaults = this.eventFaults.filter((f) => f.remaining > 0);
    return taken;
  }

  /** True (and consumes one use) when serving `page` of `endpoint` must be followed by a data change. */
  takeChangeAfter(endpoint: PagedEndpoint, page: number): boolean {
    const index = this.changes.findIndex((c) => c.endpoint === endpoint && c.page === page);
    if (index < 0) return false;
    const change = this.changes[index]!;
    change.remaining -= 1;
    if (change.remaining <= 0) this.changes.splice(index, 1);
    return true;
  }

  clear(): void {
    this.latencyMs = 0;
    this.counted = [];
    this.changes = [];
    this.eventFaults = [];
  }

  /** What is pending, for the admin API. */
  describe(): Record<string, unknown> {
    return {
      latencyMs: this.latencyMs,
      pending: this.counted.map((f) => ({ ...f.spec, remaining: f.remaining })),
      dataChanges: this.changes.map((c) => ({ ...c })),
      eventFaults: this.eventFaults.map((f) => ({ ...f.spec, remaining: f.remaining })),
    };
  }
}

function nonNegativeInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw errors.badRequest(`fault ${name} must be a non-negative integer`);
  }
  return value;
}

function optionalEndpoint(value: unknown, allowed: readonly string[]): void {
  if (value !== undefined && (typeof value !== 'string' || !allowed.includes(value))) {
    throw errors.badRequest(`fault endpoint must be one of: ${allowed.join(', ')}`);
  }
}

/** Checks a fault received as JSON (admin API) or from code; throws VppdError(badRequest). */
export function validateFault(input: unknown): FaultSpec {
  if (typeof input !== 'object' || input === null) throw errors.badRequest('a fault must be a JSON object');
  const spec = input as Record<string, unknown>;
  switch (spec.type) {
    case 'serverError': {
      nonNegativeInteger(spec.count, 'count');
      const status = spec.status ?? 503;
      if (typeof status !== 'number' || status < 500 || status > 599) {
        throw errors.badRequest('fault status must be a 5xx status');
      }
      if (spec.retryAfter !== undefined) nonNegativeInteger(spec.retryAfter, 'retryAfter');
      if (spec.errorNumber !== undefined) nonNegativeInteger(spec.errorNumber, 'errorNumber');
      optionalEndpoint(spec.endpoint, simEndpoints);
      return spec as FaultSpec;
    }
    case 'rateLimitBurst':
      nonNegativeInteger(spec.count, 'count');
      if (spec.retryAfter !== undefined) nonNegativeInteger(spec.retryAfter, 'retryAfter');
      optionalEndpoint(spec.endpoint, simEndpoints);
      return spec as FaultSpec;
    case 'errorInBody':
      nonNegativeInteger(spec.count, 'count');
      nonNegativeInteger(spec.errorNumber, 'errorNumber');
      if (spec.errorMessage !== undefined && typeof spec.errorMessage !== 'string') {
        throw errors.badRequest('fault errorMessage must be a string');
      }
      optionalEndpoint(spec.endpoint, simEndpoints);
      return spec as FaultSpec;
    case 'latency':
      nonNegativeInteger(spec.ms, 'ms');
      return spec as FaultSpec;
    case 'changeDataAfterPage':
      nonNegativeInteger(spec.page, 'page');
      if (spec.times !== undefined) nonNegativeInteger(spec.times, 'times');
      optionalEndpoint(spec.endpoint, pagedEndpoints);
      return spec as FaultSpec;
    case 'eventFailure':
      nonNegativeInteger(spec.count, 'count');
      nonNegativeInteger(spec.errorNumber, 'errorNumber');
      if (spec.errorMessage !== undefined && typeof spec.errorMessage !== 'string') {
        throw errors.badRequest('fault errorMessage must be a string');
      }
      for (const name of ['serialNumbers', 'clientUserIds'] as const) {
        const list = spec[name];
        if (list !== undefined && (!Array.isArray(list) || !list.every((v) => typeof v === 'string'))) {
          throw errors.badRequest(`fault ${name} must be a list of strings`);
        }
      }
      optionalEndpoint(spec.endpoint, eventEndpoints);
      return spec as FaultSpec;
    case 'eventPending':
      nonNegativeInteger(spec.count, 'count');
      optionalEndpoint(spec.endpoint, eventEndpoints);
      return spec as FaultSpec;
    default:
      throw errors.badRequest(
        'fault type must be one of: serverError, rateLimitBurst, errorInBody, latency, changeDataAfterPage, eventFailure, eventPending',
      );
  }
}

/** Sliding one-second window of request times per location, for `maxRequestPerSecond`. */
export class SlidingWindowLimiter {
  private readonly windows = new Map<string, number[]>();

  /** Records a request at `now` (ms) unless `limit` requests already happened in the last second. */
  tryAcquire(key: string, now: number, limit: number): boolean {
    let window = this.windows.get(key);
    if (window === undefined) {
      window = [];
      this.windows.set(key, window);
    }
    let expired = 0;
    while (expired < window.length && window[expired]! <= now - 1000) expired++;
    if (expired > 0) window.splice(0, expired);
    if (window.length >= limit) return false;
    window.push(now);
    return true;
  }

  clear(): void {
    this.windows.clear();
  }
}
