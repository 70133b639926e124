import { isVppdError } from '../domain/errors.js';
import type { SimResponse } from './sim-apple-routes.js';
import { serveAssetCountAdmin } from './sim-asset-count-routes.js';
import type { SimFaults } from './sim-faults-api.js';
import type { MdmInfo, SimLocation, SimTokenState } from './sim-location.js';
import { globalKey, type SimState } from './sim-state.js';

/** What the admin API and `AppleSim.locations` tell about a location (includes its token files: test use only). */
export interface SimLocationInfo {
  readonly id: string;
  readonly name: string;
  readonly orgName: string;
  readonly countryCode: string;
  readonly uId: string;
  /** Apple's format, e.g. `2027-11-08T22:33:22+0000`. */
  readonly tokenExpirationDate: string;
  readonly tokenState: SimTokenState;
  readonly mdmInfo: MdmInfo | null;
  readonly versionId: string;
  readonly assets: number;
  /** Live assignments (seeded plus changes). */
  readonly assignments: number;
  readonly users: number;
  /** `.vpptoken` file contents, one per token of the location. */
  readonly tokens: readonly string[];
}

/** Summarises a location for the admin API. */
export function locationInfo(location: SimLocation): SimLocationInfo {
  return {
    id: location.id,
    name: location.seed.name,
    orgName: location.seed.orgName,
    countryCode: location.seed.countryCode,
    uId: location.uId,
    tokenExpirationDate: location.tokenExpirationDate,
    tokenState: location.tokenState,
    mdmInfo: location.mdmInfo ?? null,
    versionId: location.versionId,
    assets: location.base.assets.length,
    assignments: location.assignmentTotal,
    users: location.base.userCount,
    tokens: location.tokenFiles,
  };
}

function reply(status: number, value?: unknown): SimResponse {
  return value === undefined
    ? { status, body: '' }
    : { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) };
}

function parseJson(body: string): unknown {
  if (body.trim() === '') return {};
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

/**
 * Serves `/_sim/...` (documented in docs/apple-sim.md). Answers JSON; errors are `{"error": "..."}`
 * with 400 (bad input) or 404 (unknown route or location).
 */
export function serveAdmin(
  state: SimState,
  faults: SimFaults,
  method: string,
  path: string,
  body: string,
): SimResponse {
  try {
    return routeAdmin(
      state,
      faults,
      method,
      path
        .split('/')
        .filter((p) => p.length > 0)
        .slice(1),
      body,
    );
  } catch (error) {
    if (isVppdError(error)) {
      return reply(error.code === 'notFound' ? 404 : 400, { error: error.message });
    }
    throw error;
  }
}

function routeAdmin(
  state: SimState,
  faults: SimFaults,
  method: string,
  parts: string[],
  rawBody: string,
): SimResponse {
  const body = parseJson(rawBody);
  if (body === undefined) return reply(400, { error: 'the body is not JSON' });
  const input = (body ?? {}) as Record<string, unknown>;
  const [first, id, sub, extra] = parts;
  const route = `${method} ${first ?? ''}${sub !== undefined ? `/:id/${sub}` : id !== undefined ? '/:id' : ''}`;
  switch (route) {
    case 'GET locations':
      return reply(200, [...state.locations.values()].map(locationInfo));
    case 'GET locations/:id':
      return reply(200, locationInfo(state.location(decodeURIComponent(id!))));
    case 'GET locations/:id/token': {
      const location = state.location(decodeURIComponent(id!));
      const index = extra === undefined ? 0 : Number(extra);
      const token = location.tokenFiles[index];
      if (token === undefined) return reply(404, { error: `location ${location.id} has no token ${extra}` });
      return { status: 200, headers: { 'content-type': 'text/plain' }, body: token };
    }
    case 'GET locations/:id/faults':
      return reply(200, state.faults(decodeURIComponent(id!)).describe());
    case 'POST locations/:id/faults':
      faults.add(decodeURIComponent(id!), input as never);
      return reply(200, state.faults(decodeURIComponent(id!)).describe());
    case 'DELETE locations/:id/faults':
      faults.clear(decodeURIComponent(id!));
      return reply(204);
    case 'GET faults':
      return reply(200, faults.describe());
    case 'POST faults':
      faults.add(globalKey, input as never);
      return reply(200, state.faults(globalKey).describe());
    case 'DELETE faults':
      faults.clear();
      return reply(204);
    case 'PUT locations/:id/token-state':
      faults.setTokenState(decodeURIComponent(id!), input.state as SimTokenState);
      return reply(200, locationInfo(state.location(decodeURIComponent(id!))));
    case 'PUT locations/:id/mdm-info':
      faults.setMdmInfo(decodeURIComponent(id!), (input.mdmInfo ?? null) as MdmInfo | null);
      return reply(200, locationInfo(state.location(decodeURIComponent(id!))));
    case 'POST locations/:id/change-data':
      state.location(decodeURIComponent(id!)).simulateExternalChange();
      return reply(200, locationInfo(state.location(decodeURIComponent(id!))));
    case 'GET requests':
      return reply(200, state.requestCounts());
    case 'GET in-flight':
      return reply(200, state.peakInFlight());
    case 'GET rate':
      return reply(200, state.rateStats());
    case 'DELETE requests':
      state.resetRequestCounts();
      return reply(204);
    case 'PUT rate-limit': {
      const limit = input.maxRequestPerSecond;
      if (limit !== false && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1)) {
        return reply(400, { error: 'maxRequestPerSecond must be a positive integer or false' });
      }
      state.rateLimit = limit;
      state.limiter.clear();
      return reply(200, { maxRequestPerSecond: limit });
    }
    case 'POST reset':
      state.reset();
      return reply(204);
    default: {
      const answer = serveAssetCountAdmin(
        state,
        route,
        id === undefined ? undefined : decodeURIComponent(id),
        input,
      );
      if (answer !== undefined) return reply(answer.status, answer.value);
      return reply(404, { error: `no admin route ${method} /_sim/${parts.join('/')}` });
    }
  }
}
