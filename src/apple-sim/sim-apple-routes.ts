import type { BaseAsset } from './sim-base-data.js';
import { catalogIndexOf, catalogItem, lookupRecord } from './sim-catalog.js';
import {
  httpStatusForErrorNumber,
  messageForErrorNumber,
  SimApiError,
  type SimErrorEntry,
  simErrors,
} from './sim-errors.js';
import type { CountedFault, PagedEndpoint, SimEndpoint } from './sim-faults.js';
import type { JsonList, MdmInfo, SimEvent, SimEventFailure, SimLocation } from './sim-location.js';
import { globalKey, type SimState } from './sim-state.js';
import { readBearer } from './sim-token.js';

// Apple's v2 endpoints as the simulator serves them. See docs/apple.md, "Calls".

/** A response the HTTP layer writes as is. */
export interface SimResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: string;
}

/** The parts of a request the routes need. */
export interface SimRequest {
  readonly method: string;
  readonly endpoint: SimEndpoint;
  readonly query: URLSearchParams;
  readonly authorization: string | undefined;
  readonly contentType: string | undefined;
  /** Raw request body (empty for GET). */
  readonly body: string;
}

/** Service limits published by `service/config` (Apple's documented example values). */
export function serviceLimits(rateLimit: number | false): Record<string, number> {
  return {
    maxAssets: 25,
    maxClientUserIds: 1000,
    maxMdmIdLength: 100,
    maxMdmMetadataLength: 255,
    maxMdmNameLength: 100,
    // With the limiter switched off the simulator still advertises Apple's value.
    maxRequestPerSecond: rateLimit === false ? 15 : rateLimit,
    maxRevokeClientUserIds: 100,
    maxRevokeSerialNumbers: 100,
    maxSerialNumbers: 1000,
    maxUsers: 100,
  };
}

export const notificationTypes = ['ASSET_MANAGEMENT', 'ASSET_COUNT', 'USER_ASSOCIATED', 'USER_MANAGEMENT'];

const jsonHeaders = { 'content-type': 'application/json;charset=UTF-8' };

/** An Apple error response with the HTTP status of Apple's table (or a forced one). */
export function errorResponse(
  errorNumber: number,
  errorMessage?: string,
  status?: number,
  headers?: Record<string, string>,
): SimResponse {
  return {
    status: status ?? httpStatusForErrorNumber(errorNumber),
    headers: { ...jsonHeaders, ...headers },
    body: JSON.stringify({ errorNumber, errorMessage: errorMessage ?? messageForErrorNumber(errorNumber) }),
  };
}

/**
 * The answer of a scripted 5xx: Apple's JSON error (default 9603) with `Retry-After`, or with
 * `errorNumber: 0` an HTML page without any Apple error, as a front-end proxy would send.
 */
export function serverErrorResponse(fault: Extract<CountedFault, { type: 'serverError' }>): SimResponse {
  const retryAfter = fault.retryAfter ?? 1;
  const headers: Record<string, string> = retryAfter > 0 ? { 'retry-after': String(retryAfter) } : {};
  const status = fault.status ?? 503;
  if (fault.errorNumber === 0) {
    return {
      status,
      headers: { ...headers, 'content-type': 'text/html' },
      body: `<html><body><h1>${status} Service Unavailable</h1></body></html>`,
    };
  }
  return errorResponse(fault.errorNumber ?? simErrors.internalError.errorNumber, undefined, status, headers);
}

function entryResponse(entry: SimErrorEntry, message?: string): SimResponse {
  return errorResponse(entry.errorNumber, message ?? entry.errorMessage, entry.httpStatus);
}

function json(value: unknown): SimResponse {
  return { status: 200, headers: jsonHeaders, body: JSON.stringify(value) };
}

/** `GET service/config`: limits, URLs and the error table. No token needed. */
export function serviceConfig(state: SimState, baseUrl: string, metadataUrl: string): SimResponse {
  const errorCodes = (Object.values(simErrors) as SimErrorEntry[]).map((e) => ({
    errorMessage: e.errorMessage,
    errorNumber: e.errorNumber,
  }));
  return json({
    errorCodes,
    limits: serviceLimits(state.rateLimit),
    notificationTypes,
    urls: {
      assets: `${baseUrl}/assets`,
      assignments: `${baseUrl}/assignments`,
      associateAssets: `${baseUrl}/assets/associate`,
      clientConfig: `${baseUrl}/client/config`,
      contentMetadataLookup: metadataUrl,
      disassociateAssets: `${baseUrl}/assets/disassociate`,
      revokeAssets: `${baseUrl}/assets/revoke`,
      serviceConfig: `${baseUrl}/service/config`,
      status: `${baseUrl}/status`,
      users: `${baseUrl}/users`,
    },
  });
}

/** The content-metadata lookup (`?version=2&p=mdm-lockup&caller=MDM&platform=…&cc=…&l=en&id=a,b`). */
export function metadataLookup(state: SimState, query: URLSearchParams): SimResponse {
  const ids = (query.get('id') ?? '')
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id.length > 0);
  const results: Record<string, unknown> = {};
  for (const id of ids) {
    const c = catalogIndexOf(state.seedKey, id);
    // Only items some location licenses are "in the store"; any other id is absent, as with Apple.
    if (c !== undefined && state.knownCatalogIndex(c))
      results[id] = lookupRecord(catalogItem(state.seedKey, c));
  }
  return json({ results });
}

/**
 * Serves one authenticated v2 call: token check, scripted faults, rate limit, then the endpoint.
 * Counts every request that names a location, whatever the outcome.
 */
export async function serveAuthenticated(state: SimState, request: SimRequest): Promise<SimResponse> {
  const bearer = readBearer(request.authorization);
  if (!bearer.ok) {
    state.count(globalKey, request.method, request.endpoint);
    return entryResponse(simErrors.malformedAuthorization);
  }
  const location = state.locationByToken(bearer.token);
  if (location === undefined) {
    state.count(globalKey, request.method, request.endpoint);
    return entryResponse(simErrors.invalidToken);
  }
  state.count(location.id, request.method, request.endpoint);
  const inFlight = state.enter(location.id);
  try {
    // Apple asks for at most 5 requests at once; with `maxInFlight` set the simulator enforces it.
    if (state.maxInFlight !== false && inFlight > state.maxInFlight) {
      return entryResponse(simErrors.tooManyRequests);
    }
    return await serveLocation(state, location, request);
  } finally {
    state.leave(location.id);
  }
}

async function serveLocation(
  state: SimState,
  location: SimLocation,
  request: SimRequest,
): Promise<SimResponse> {
  // Apple counts a request against the location's rate when it arrives, before any time spent on it.
  const arrived = state.monotonicNow();
  const admitted =
    state.rateLimit === false || state.limiter.tryAcquire(location.id, arrived, state.rateLimit);
  state.noteArrival(location.id, arrived, !admitted);
  if (!admitted) return entryResponse(simErrors.tooManyRequests);
  const faults = state.faults(location.id);
  if (faults.latencyMs > 0) await state.sleep(faults.latencyMs);

  const fault = faults.take(request.endpoint);
  if (fault?.type === 'serverError') return serverErrorResponse(fault);
  if (fault?.type === 'rateLimitBurst') {
    return errorResponse(
      simErrors.tooManyRequests.errorNumber,
      undefined,
      429,
      fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : {},
    );
  }
  switch (location.tokenState) {
    case 'invalid':
      return entryResponse(simErrors.invalidToken);
    case 'revoked':
      return entryResponse(simErrors.tokenRevoked);
    case 'expired':
      return entryResponse(simErrors.tokenExpired);
    case 'active':
      break;
    default: {
      const never: never = location.tokenState;
      throw new Error(`unknown token state ${String(never)}`);
    }
  }
  const now = state.clock();
  if (now.getTime() >= location.expiresAt.getTime()) return entryResponse(simErrors.tokenExpired);
  if (fault?.type === 'errorInBody') {
    // Apple sometimes answers an error with HTTP 200: clients must check every body.
    return errorResponse(fault.errorNumber, fault.errorMessage, 200);
  }
  settleEvents(state, location, now.getTime());
  try {
    return route(state, location, request, now.getTime());
  } catch (error) {
    if (error instanceof SimApiError)
      return errorResponse(error.errorNumber, error.message, error.httpStatus);
    throw error;
  }
}

function route(state: SimState, location: SimLocation, request: SimRequest, now: number): SimResponse {
  const { method, endpoint } = request;
  if (method === 'GET') {
    switch (endpoint) {
      case 'client/config':
        return json(clientConfig(location));
      case 'assets':
      case 'assignments':
      case 'users':
        return paged(state, location, endpoint, request.query);
      case 'status':
        return status(state, location, request.query, now);
      default:
        break;
    }
  } else if (method === 'POST') {
    const body = parseBody(request);
    switch (endpoint) {
      case 'client/config':
        return json(setClientConfig(location, body));
      case 'assets/associate':
        return json(envelope(location, { eventId: associate(location, body, now, 'ASSOCIATE') }));
      case 'assets/disassociate':
        return json(envelope(location, { eventId: associate(location, body, now, 'DISASSOCIATE') }));
      case 'assets/revoke':
        return json(envelope(location, { eventId: revoke(location, body, now) }));
      default:
        break;
    }
  }
  return entryResponse(simErrors.methodNotAllowed);
}

function envelope(location: SimLocation, fields: Record<string, unknown>): Record<string, unknown> {
  return { ...fields, tokenExpirationDate: location.tokenExpirationDate, uId: location.uId };
}

function clientConfig(location: SimLocation): Record<string, unknown> {
  const seed = location.seed;
  const config: Record<string, unknown> = {
    countryISO2ACode: seed.countryCode,
    defaultPlatform: seed.defaultPlatform ?? 'volumestore',
    locationName: seed.name,
    tokenExpirationDate: location.tokenExpirationDate,
    uId: location.uId,
    websiteURL: seed.websiteURL ?? `https://${seed.id.toLowerCase()}.example.org`,
  };
  if (location.mdmInfo !== undefined) config.mdmInfo = location.mdmInfo;
  if (location.notificationUrl !== undefined) config.notificationUrl = location.notificationUrl;
  if (location.notificationTypes !== undefined) config.notificationTypes = location.notificationTypes;
  return config;
}

function parseBody(request: SimRequest): Record<string, unknown> {
  if (!/^application\/json\b/i.test(request.contentType ?? '')) {
    throw new SimApiError(simErrors.unsupportedMediaType);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(request.body);
  } catch {
    throw new SimApiError(simErrors.invalidArgument, 'The request body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SimApiError(simErrors.invalidArgument, 'The request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

function invalid(message: string): SimApiError {
  return new SimApiError(simErrors.invalidArgument, message);
}

function boundedString(value: unknown, name: string, max: number, optional = false): string | undefined {
  if (value === undefined && optional) return undefined;
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${name} must be a non-empty string`);
  if (value.length > max) throw invalid(`${name} is longer than ${max} characters`);
  return value;
}

function setClientConfig(location: SimLocation, body: Record<string, unknown>): Record<string, unknown> {
  const limits = serviceLimits(15);
  let mdmInfo: MdmInfo | undefined;
  if (body.mdmInfo !== undefined) {
    if (typeof body.mdmInfo !== 'object' || body.mdmInfo === null) throw invalid('mdmInfo must be an object');
    const info = body.mdmInfo as Record<string, unknown>;
    const id = boundedString(info.id, 'mdmInfo.id', limits.maxMdmIdLength!)!;
    const name = boundedString(info.name, 'mdmInfo.name', limits.maxMdmNameLength!)!;
    const metadata = boundedString(info.metadata, 'mdmInfo.metadata', limits.maxMdmMetadataLength!, true);
    mdmInfo = metadata === undefined ? { id, name } : { id, name, metadata };
  }
  let notificationUrl: string | undefined;
  if (body.notificationUrl !== undefined) {
    notificationUrl = boundedString(body.notificationUrl, 'notificationUrl', 2048)!;
    let url: URL;
    try {
      url = new URL(notificationUrl);
    } catch {
      throw invalid('notificationUrl is not a URL');
    }
    if (url.protocol !== 'https:') throw invalid('notificationUrl must use HTTPS');
  }
  let types: string[] | undefined;
  if (body.notificationTypes !== undefined) {
    if (
      !Array.isArray(body.notificationTypes) ||
      !body.notificationTypes.every((t) => typeof t === 'string' && notificationTypes.includes(t))
    ) {
      throw invalid(`notificationTypes must be a list of: ${notificationTypes.join(', ')}`);
    }
    types = body.notificationTypes as string[];
  }
  const authToken = boundedString(body.notificationAuthToken, 'notificationAuthToken', 1024, true);
  // Validate everything before changing anything.
  if (mdmInfo !== undefined) location.mdmInfo = mdmInfo;
  if (notificationUrl !== undefined) location.notificationUrl = notificationUrl;
  if (types !== undefined) location.notificationTypes = types;
  if (authToken !== undefined) location.notificationAuthToken = authToken;
  return clientConfig(location);
}

function paged(state: SimState, location: SimLocation, endpoint: PagedEndpoint, query: URLSearchParams) {
  const rawIndex = query.get('pageIndex') ?? '0';
  if (!/^\d{1,9}$/.test(rawIndex)) throw new SimApiError(simErrors.badPageIndex);
  const pageIndex = Number(rawIndex);
  if (pageIndex === 0) state.noteFirstPage(location.id, endpoint);
  const list = listFor(location, endpoint, query);
  const pageSize = state.pageSizes[endpoint];
  const totalPages = Math.ceil(list.length / pageSize);
  if (pageIndex > 0 && pageIndex >= totalPages) throw new SimApiError(simErrors.badPageIndex);
  const items = list.slice(pageIndex * pageSize, (pageIndex + 1) * pageSize);
  const next = pageIndex + 1 < totalPages ? `"nextPageIndex":${pageIndex + 1},` : '';
  // Built as text: assignments pages are the hot path of the benchmarks.
  const body =
    `{"${endpoint}":[${items.join(',')}],"currentPageIndex":${pageIndex},${next}"size":${items.length},` +
    `"totalPages":${totalPages},"tokenExpirationDate":"${location.tokenExpirationDate}",` +
    `"uId":"${location.uId}","versionId":"${location.versionId}"}`;
  if (state.faults(location.id).takeChangeAfter(endpoint, pageIndex)) location.simulateExternalChange();
  return { status: 200, headers: jsonHeaders, body };
}

function stringParam(query: URLSearchParams, name: string): string | undefined {
  const value = query.get(name);
  return value === null || value === '' ? undefined : value;
}

function booleanParam(query: URLSearchParams, name: string): boolean | undefined {
  const value = stringParam(query, name);
  if (value === undefined) return undefined;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw invalid(`${name} must be true or false`);
}

function listFor(location: SimLocation, endpoint: PagedEndpoint, query: URLSearchParams): JsonList {
  switch (endpoint) {
    case 'assets': {
      const filter = {
        adamId: stringParam(query, 'adamId'),
        pricingParam: stringParam(query, 'pricingParam'),
        productType: stringParam(query, 'productType'),
        deviceAssignable: booleanParam(query, 'deviceAssignable'),
        revocable: booleanParam(query, 'revocable'),
      };
      const records = location.assets(filter).map((a) => JSON.stringify(a));
      return { length: records.length, slice: (from, to) => records.slice(from, to) };
    }
    case 'assignments':
      return location.assignments({
        adamId: stringParam(query, 'adamId'),
        serialNumber: stringParam(query, 'serialNumber'),
        clientUserId: stringParam(query, 'clientUserId'),
        sinceVersionId: stringParam(query, 'sinceVersionId'),
      });
    case 'users':
      return location.users({
        clientUserId: stringParam(query, 'clientUserId'),
        sinceVersionId: stringParam(query, 'sinceVersionId'),
      });
    default: {
      const never: never = endpoint;
      throw new Error(`not a paged endpoint: ${String(never)}`);
    }
  }
}

function stringList(value: unknown, name: string, max: number): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) {
    throw invalid(`${name} must be a list of non-empty strings`);
  }
  if (value.length > max) throw invalid(`${name} has more than ${max} entries`);
  return [...new Set(value as string[])];
}

function associate(
  location: SimLocation,
  body: Record<string, unknown>,
  now: number,
  eventType: 'ASSOCIATE' | 'DISASSOCIATE',
): string {
  const limits = serviceLimits(15);
  if (!Array.isArray(body.assets) || body.assets.length === 0)
    throw invalid('assets must be a non-empty list');
  if (body.assets.length > limits.maxAssets!)
    throw invalid(`assets has more than ${limits.maxAssets} entries`);
  const assets = body.assets.map((a: unknown) => {
    const asset = a as Record<string, unknown> | null;
    if (typeof asset?.adamId !== 'string' || typeof asset.pricingParam !== 'string') {
      throw invalid('each asset needs adamId and pricingParam');
    }
    return { adamId: asset.adamId, pricingParam: asset.pricingParam };
  });
  const serialNumbers = stringList(body.serialNumbers, 'serialNumbers', limits.maxSerialNumbers!);
  const clientUserIds = stringList(body.clientUserIds, 'clientUserIds', limits.maxClientUserIds!);
  if (serialNumbers.length + clientUserIds.length === 0) {
    throw invalid('serialNumbers or clientUserIds must list at least one entry');
  }
  const holders = [
    ...serialNumbers.map((serialNumber) => ({ serialNumber })),
    ...clientUserIds.map((clientUserId) => ({ clientUserId })),
  ];
  const event = location.createEvent(eventType, assets.length * holders.length, now, () => {
    let completed = 0;
    const failures: SimEventFailure[] = [];
    for (const ref of assets) {
      const asset = location.findAsset(ref.adamId, ref.pricingParam);
      for (const holder of holders) {
        const fail = (entry: SimErrorEntry) =>
          failures.push({
            ...ref,
            ...holder,
            errorNumber: entry.errorNumber,
            errorMessage: entry.errorMessage,
          });
        if (asset === undefined) {
          fail(simErrors.licenseNotFound);
        } else if (eventType === 'DISASSOCIATE') {
          if (location.removeAssignment(asset, holder)) completed++;
          else fail(simErrors.licenseNotFound);
        } else {
          const problem = associationProblem(location, asset, holder);
          if (problem !== undefined) fail(problem);
          else {
            location.addAssignment(asset, holder);
            completed++;
          }
        }
      }
    }
    return { completed, failures };
  });
  return event.eventId;
}

function associationProblem(
  location: SimLocation,
  asset: BaseAsset,
  holder: { serialNumber?: string; clientUserId?: string },
): SimErrorEntry | undefined {
  // Assigning what is already assigned succeeds without using a license, as Apple does.
  if (location.hasAssignment(asset, holder)) return undefined;
  if (holder.serialNumber !== undefined && !asset.deviceAssignable) {
    return { ...simErrors.invalidArgument, errorMessage: 'This asset cannot be assigned to a device' };
  }
  if (holder.clientUserId !== undefined && location.liveUser(holder.clientUserId) === undefined) {
    return simErrors.userNotFound;
  }
  if (location.availableCount(asset) < 1) return simErrors.notEnoughLicenses;
  return undefined;
}

function revoke(location: SimLocation, body: Record<string, unknown>, now: number): string {
  const limits = serviceLimits(15);
  const serialNumbers = stringList(body.serialNumbers, 'serialNumbers', limits.maxRevokeSerialNumbers!);
  const clientUserIds = stringList(body.clientUserIds, 'clientUserIds', limits.maxRevokeClientUserIds!);
  if (serialNumbers.length + clientUserIds.length === 0) {
    throw invalid('serialNumbers or clientUserIds must list at least one entry');
  }
  const holders = [
    ...serialNumbers.map((serialNumber) => ({ serialNumber })),
    ...clientUserIds.map((clientUserId) => ({ clientUserId })),
  ];
  const event = location.createEvent('REVOKE', holders.length, now, () => {
    for (const holder of holders) {
      for (const asset of location.assetsHeldBy(holder)) {
        if (asset.revocable) location.removeAssignment(asset, holder);
      }
    }
    // Revoking from a holder with no revocable license is not an error: there is nothing left to revoke.
    return { completed: holders.length, failures: [] };
  });
  return event.eventId;
}

/** Completes events whose time has come; bumps the versionId when their work changed data. */
export function settleEvents(state: SimState, location: SimLocation, now: number): void {
  for (const event of location.events.values()) {
    if (event.eventStatus === 'PENDING' && now - event.createdAt >= state.eventDelayMs)
      complete(location, event);
  }
}

function complete(location: SimLocation, event: SimEvent): void {
  const changesBefore = location.changeCount;
  location.completeEvent(event);
  // One new versionId per event that changed anything, as one batch of Apple's.
  if (location.changeCount !== changesBefore) location.bumpVersion();
}

function status(state: SimState, location: SimLocation, query: URLSearchParams, now: number): SimResponse {
  const eventId = stringParam(query, 'eventId');
  if (eventId === undefined) throw invalid('eventId is required');
  const event = location.events.get(eventId);
  if (event === undefined) throw invalid('Unknown eventId');
  if (event.eventStatus === 'PENDING') {
    event.polls += 1;
    // The first `eventPolls` polls see PENDING; the next one finds the work done.
    if (event.polls > state.eventPolls || now - event.createdAt >= state.eventDelayMs)
      complete(location, event);
  }
  return json(
    envelope(location, {
      eventId: event.eventId,
      eventStatus: event.eventStatus,
      eventType: event.eventType,
      failures: event.failures,
      numCompleted: event.numCompleted,
      numRequested: event.numRequested,
    }),
  );
}
