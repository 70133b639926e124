import { errors } from '../domain/errors.js';
import type { FaultSpec, SimEndpoint } from './sim-faults.js';
import { type MdmInfo, type SimTokenState, simTokenStates } from './sim-location.js';
import { globalKey, type SimState } from './sim-state.js';

/**
 * Fault scripting, the programmatic twin of the `/_sim/` admin routes. `locationId` may be `'*'` for
 * the endpoints without a token (service/config, lookup).
 */
export interface SimFaults {
  /** Adds any fault (the admin API's `POST /_sim/locations/:id/faults` body). */
  add(locationId: string, fault: FaultSpec): void;
  /** The next `count` calls answer 5xx (default 503) with `Retry-After` (default 1 s) and errorNumber 9603. */
  serverError(
    locationId: string,
    count: number,
    options?: { status?: number; retryAfter?: number; errorNumber?: number; endpoint?: SimEndpoint },
  ): void;
  /** The next `count` calls answer 429 / 9646. */
  rateLimitBurst(
    locationId: string,
    count: number,
    options?: { retryAfter?: number; endpoint?: SimEndpoint },
  ): void;
  /** The next `count` calls answer HTTP 200 with `{errorNumber}` in the body (e.g. 9622, 9722). */
  errorInBody(locationId: string, errorNumber: number, count?: number, endpoint?: SimEndpoint): void;
  /** Adds `ms` of latency to every call of the location (0 removes it). */
  latency(locationId: string, ms: number): void;
  /** After page `page` of `endpoint` (default assignments) is served, the data and the versionId change. */
  changeDataAfterPage(
    locationId: string,
    page: number,
    options?: { endpoint?: 'assets' | 'assignments' | 'users'; times?: number },
  ): void;
  /** Sets what Apple answers for the location's tokens: active, expired (9621), revoked (9625), invalid (9622). */
  setTokenState(locationId: string, state: SimTokenState): void;
  /** Sets (or with null clears) the MDM that claims the location, as another MDM's POST client/config would. */
  setMdmInfo(locationId: string, mdmInfo: MdmInfo | null): void;
  /** Clears the pending faults of one location, or of all when no id is given. */
  clear(locationId?: string): void;
  /** What is pending per location. */
  describe(): Record<string, unknown>;
}

/** Builds the {@link SimFaults} API over the simulator state. */
export function createSimFaults(state: SimState): SimFaults {
  const keys = () => [globalKey, ...state.locations.keys()];
  const faults: SimFaults = {
    add: (locationId, fault) => state.faults(locationId).add(fault),
    serverError: (locationId, count, options = {}) =>
      faults.add(locationId, { type: 'serverError', count, ...options }),
    rateLimitBurst: (locationId, count, options = {}) =>
      faults.add(locationId, { type: 'rateLimitBurst', count, ...options }),
    errorInBody: (locationId, errorNumber, count = 1, endpoint) =>
      faults.add(locationId, { type: 'errorInBody', count, errorNumber, ...(endpoint ? { endpoint } : {}) }),
    latency: (locationId, ms) => faults.add(locationId, { type: 'latency', ms }),
    changeDataAfterPage: (locationId, page, options = {}) =>
      faults.add(locationId, { type: 'changeDataAfterPage', page, ...options }),
    setTokenState: (locationId, tokenState) => {
      if (!simTokenStates.includes(tokenState)) {
        throw errors.badRequest(`token state must be one of: ${simTokenStates.join(', ')}`);
      }
      state.location(locationId).tokenState = tokenState;
    },
    setMdmInfo: (locationId, mdmInfo) => {
      const location = state.location(locationId);
      if (mdmInfo === null) {
        location.mdmInfo = undefined;
        return;
      }
      if (typeof mdmInfo?.id !== 'string' || typeof mdmInfo.name !== 'string') {
        throw errors.badRequest('mdmInfo needs string id and name');
      }
      if (mdmInfo.metadata !== undefined && typeof mdmInfo.metadata !== 'string') {
        throw errors.badRequest('mdmInfo.metadata must be a string');
      }
      location.mdmInfo = {
        id: mdmInfo.id,
        name: mdmInfo.name,
        ...(mdmInfo.metadata !== undefined ? { metadata: mdmInfo.metadata } : {}),
      };
    },
    clear: (locationId) => {
      for (const key of locationId === undefined ? keys() : [locationId]) state.faults(key).clear();
    },
    describe: () => Object.fromEntries(keys().map((key) => [key, state.faults(key).describe()])),
  };
  return faults;
}
