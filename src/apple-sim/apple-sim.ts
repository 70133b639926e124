import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errors } from '../domain/errors.js';
import { defaultSimLocations } from './default-sim-locations.js';
import { locationInfo, type SimLocationInfo, serveAdmin } from './sim-admin-routes.js';
import {
  errorResponse,
  metadataLookup,
  type SimResponse,
  serveAuthenticated,
  serverErrorResponse,
  serviceConfig,
} from './sim-apple-routes.js';
import {
  type AssetCountChange,
  type AssetCountResult,
  purchaseLicenses,
  refundLicenses,
  transferLicenses,
} from './sim-asset-counts.js';
import { simErrors } from './sim-errors.js';
import { type PagedEndpoint, type SimEndpoint, simEndpoints } from './sim-faults.js';
import { createSimFaults, type SimFaults } from './sim-faults-api.js';
import type { LocationSeed } from './sim-location.js';
import type { SimNotificationOptions, SimNotificationRecord } from './sim-notifications.js';
import { globalKey, type SimRateStats, SimState } from './sim-state.js';

export { defaultSimLocations } from './default-sim-locations.js';
export type { SimLocationInfo } from './sim-admin-routes.js';
export type { AssetCountChange, AssetCountResult } from './sim-asset-counts.js';
export type { FaultSpec, PagedEndpoint, SimEndpoint } from './sim-faults.js';
export type { SimFaults } from './sim-faults-api.js';
export type { LocationSeed, MdmInfo, SimLocationState, SimTokenState } from './sim-location.js';
export type { SimNotificationOptions, SimNotificationRecord } from './sim-notifications.js';

/** Options of {@link startAppleSim}. Everything has a default; `{}` starts the default scenario. */
export interface AppleSimOptions {
  /** TCP port; 0 (default) picks a free one. */
  readonly port?: number;
  /** Interface to listen on, default 127.0.0.1. */
  readonly host?: string;
  /** Seed of all generated data and tokens (default `vppd`). Same seed, same data, same tokens. */
  readonly seed?: string | number;
  /** Locations to serve; default {@link defaultSimLocations}. */
  readonly locations?: readonly LocationSeed[];
  /** Records per page: one number for all paged endpoints, or per endpoint. Default 500. */
  readonly pageSize?: number | Partial<Record<PagedEndpoint, number>>;
  /** Requests per second per location (sliding 1 s window), or false to switch the limit off. Default 15. */
  readonly rateLimit?: number | false;
  /**
   * Requests of one location allowed in flight at once; more answer 429/9646 (Apple asks clients for at
   * most 5). Default false: not enforced, only measured (see `peakInFlight`).
   */
  readonly maxInFlight?: number | false;
  /** Wall clock for token expiry and event progress; inject to time-travel. */
  readonly clock?: () => Date;
  /** Monotonic milliseconds for the rate-limit window; default `performance.now`. */
  readonly monotonicNow?: () => number;
  /** How added latency waits; default a timer. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Status polls answered PENDING before an event completes (default 1). */
  readonly eventPolls?: number;
  /** Clock time after which an event completes even without polls (default 2000 ms). */
  readonly eventDelayMs?: number;
  /** How notifications are delivered: retry schedule, duplicates, `http:` URLs (see SimNotificationOptions). */
  readonly notifications?: SimNotificationOptions;
}

/** A running simulator. */
export interface AppleSim {
  /** `http://host:port` */
  readonly url: string;
  /** `${url}/mdm/v2`: what the Apple client takes as its base URL. */
  readonly baseUrl: string;
  /** `${url}/lookup`: the content-metadata lookup, also listed in service/config. */
  readonly metadataUrl: string;
  /** `${url}/_sim`: the admin API. */
  readonly adminUrl: string;
  /** The locations with their current state and token files. */
  readonly locations: readonly SimLocationInfo[];
  /** The `.vpptoken` file content of a location's `index`-th token (default the first). */
  tokenFor(locationId: string, index?: number): string;
  /** Fault scripting (same as the admin API). */
  readonly faults: SimFaults;
  /** Requests received: `{ [locationId | '*']: { 'GET assignments': n } }`; `*` = no or unknown token. */
  requestCounts(): Record<string, Record<string, number>>;
  /** Most requests of each location in flight at once since the counters were last reset. */
  peakInFlight(): Record<string, number>;
  /**
   * Per location since the counters were last reset: the busiest one-second window of requests reaching
   * the rate check, how many the rate limit answered 429, and page-0 requests per paged endpoint.
   */
  rateStats(): Record<string, SimRateStats>;
  /** Zeroes the request counters, the in-flight peaks and the rate statistics. */
  resetRequestCounts(): void;
  /** Changes the per-location rate limit (false switches it off). */
  setRateLimit(limit: number | false): void;
  /** Buys licenses of an asset the location holds: totalCount grows, an ASSET_COUNT notification is sent. */
  purchase(locationId: string, change: AssetCountChange): AssetCountResult;
  /** Refunds unassigned licenses: totalCount shrinks, an ASSET_COUNT notification is sent. */
  refund(locationId: string, change: AssetCountChange): AssetCountResult;
  /** Moves unassigned licenses to another location holding the asset: one ASSET_COUNT to each. */
  transfer(
    locationId: string,
    change: AssetCountChange & { readonly to: string },
  ): { readonly from: AssetCountResult; readonly to: AssetCountResult };
  /** Every notification sent or being sent (TEST_NOTIFICATION included), oldest first. */
  notifications(): readonly SimNotificationRecord[];
  /** Resolves once no notification delivery is in flight or waiting for a retry. */
  notificationsIdle(): Promise<void>;
  /** Back to the seeded state: data, token states, mdmInfo, events, faults and counters. */
  reset(): void;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

const maxBodyBytes = 1024 * 1024;
const loopback = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

function resolvePageSizes(pageSize: AppleSimOptions['pageSize']): Record<PagedEndpoint, number> {
  const sizes = { assets: 500, assignments: 500, users: 500 };
  if (typeof pageSize === 'number') {
    sizes.assets = pageSize;
    sizes.assignments = pageSize;
    sizes.users = pageSize;
  } else if (pageSize !== undefined) {
    Object.assign(sizes, pageSize);
  }
  for (const [name, size] of Object.entries(sizes)) {
    if (!Number.isInteger(size) || size < 1) {
      throw errors.config('apple-sim page size', `${name} page size must be a positive integer`);
    }
  }
  return sizes;
}

/** Starts the Apple Apps and Books simulator and resolves once it listens. */
export async function startAppleSim(options: AppleSimOptions = {}): Promise<AppleSim> {
  const rateLimit = options.rateLimit ?? 15;
  const maxInFlight = options.maxInFlight ?? false;
  if (maxInFlight !== false && (!Number.isInteger(maxInFlight) || maxInFlight < 1)) {
    throw errors.config('apple-sim maxInFlight', 'must be a positive integer or false');
  }
  if (rateLimit !== false && (!Number.isInteger(rateLimit) || rateLimit < 1)) {
    throw errors.config('apple-sim rate limit', 'must be a positive integer or false');
  }
  const state = new SimState({
    seed: options.seed ?? 'vppd',
    locations: options.locations ?? defaultSimLocations(),
    pageSizes: resolvePageSizes(options.pageSize),
    rateLimit,
    clock: options.clock ?? (() => new Date()),
    monotonicNow: options.monotonicNow ?? (() => performance.now()),
    sleep: options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    eventPolls: options.eventPolls ?? 1,
    eventDelayMs: options.eventDelayMs ?? 2000,
    maxInFlight,
    ...(options.notifications !== undefined ? { notifications: options.notifications } : {}),
  });
  const faults = createSimFaults(state);
  const urls = { url: '', baseUrl: '', metadataUrl: '' };

  const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    handle(req).then(
      (response) => send(res, response),
      (error: unknown) => {
        // A bug in the simulator: answer like Apple's internal error, never hang the client.
        send(res, errorResponse(simErrors.internalError.errorNumber, String(error), 500));
      },
    );
  });

  async function handle(req: IncomingMessage): Promise<SimResponse> {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));
    const method = req.method ?? 'GET';
    let body = '';
    if (method !== 'GET' && method !== 'HEAD') {
      try {
        body = await readBody(req);
      } catch {
        return errorResponse(simErrors.invalidArgument.errorNumber, 'The request body is too large', 413);
      }
    }

    if (path === '/_sim' || path.startsWith('/_sim/')) {
      if (!loopback.has(req.socket.remoteAddress ?? '')) {
        return {
          status: 403,
          headers: { 'content-type': 'application/json' },
          body: '{"error":"loopback only"}',
        };
      }
      return serveAdmin(state, faults, method, path, body);
    }
    if (path === '/lookup') {
      state.count(globalKey, method, 'lookup');
      const fault = await globalFault('lookup');
      if (fault !== undefined) return fault;
      return metadataLookup(state, query);
    }
    if (!path.startsWith('/mdm/v2/')) return notFound();
    const endpoint = path.slice('/mdm/v2/'.length) as SimEndpoint;
    if (!simEndpoints.includes(endpoint) || endpoint === 'lookup') return notFound();
    if (endpoint === 'service/config') {
      state.count(globalKey, method, endpoint);
      if (method !== 'GET') return errorResponse(simErrors.methodNotAllowed.errorNumber);
      const fault = await globalFault(endpoint);
      if (fault !== undefined) return fault;
      return serviceConfig(state, urls.baseUrl, urls.metadataUrl);
    }
    return serveAuthenticated(state, {
      method,
      endpoint,
      query,
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
      body,
    });
  }

  /** Scripted faults of the endpoints without a token (service/config, lookup). */
  async function globalFault(endpoint: SimEndpoint): Promise<SimResponse | undefined> {
    const globalFaults = state.faults(globalKey);
    if (globalFaults.latencyMs > 0) await state.sleep(globalFaults.latencyMs);
    const fault = globalFaults.take(endpoint);
    switch (fault?.type) {
      case undefined:
        return undefined;
      case 'serverError':
        return serverErrorResponse(fault);
      case 'rateLimitBurst':
        return errorResponse(simErrors.tooManyRequests.errorNumber, undefined, 429);
      case 'errorInBody':
        return errorResponse(fault.errorNumber, fault.errorMessage, 200);
      default: {
        const never: never = fault;
        throw new Error(`unknown fault ${String(never)}`);
      }
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  urls.url = `http://${host}:${address.port}`;
  urls.baseUrl = `${urls.url}/mdm/v2`;
  urls.metadataUrl = `${urls.url}/lookup`;

  return {
    url: urls.url,
    baseUrl: urls.baseUrl,
    metadataUrl: urls.metadataUrl,
    adminUrl: `${urls.url}/_sim`,
    get locations() {
      return [...state.locations.values()].map(locationInfo);
    },
    tokenFor(locationId, index = 0) {
      const token = state.location(locationId).tokenFiles[index];
      if (token === undefined) throw errors.notFound('apple-sim token', `${locationId}#${index}`);
      return token;
    },
    faults,
    requestCounts: () => state.requestCounts(),
    peakInFlight: () => state.peakInFlight(),
    rateStats: () => state.rateStats(),
    resetRequestCounts: () => state.resetRequestCounts(),
    setRateLimit(limit) {
      if (limit !== false && (!Number.isInteger(limit) || limit < 1)) {
        throw errors.badRequest('rate limit must be a positive integer or false');
      }
      state.rateLimit = limit;
      state.limiter.clear();
    },
    purchase: (locationId, change) => purchaseLicenses(state, locationId, change),
    refund: (locationId, change) => refundLicenses(state, locationId, change),
    transfer: (locationId, change) => transferLicenses(state, locationId, change),
    notifications: () => state.notifier.list(),
    notificationsIdle: () => state.notifier.idle(),
    reset: () => state.reset(),
    close: () =>
      new Promise<void>((resolve, reject) => {
        state.notifier.close();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function notFound(): SimResponse {
  return {
    status: 404,
    headers: { 'content-type': 'application/json;charset=UTF-8' },
    body: JSON.stringify({ errorNumber: simErrors.invalidArgument.errorNumber, errorMessage: 'Not found' }),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        reject(errors.badRequest('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, response: SimResponse): void {
  if (res.headersSent || res.destroyed) return;
  const body = Buffer.from(response.body, 'utf8');
  res.writeHead(response.status, { ...response.headers, 'content-length': String(body.length) });
  res.end(body);
}
