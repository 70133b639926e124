import { routeAssetOperations, settleEvents } from './sim-asset-operations.js';
import { unlimitedTotalCount } from './sim-base-data.js';
import { catalogIndexOf, catalogItem, lookupRecord } from './sim-catalog.js';
import {
  httpStatusForErrorNumber,
  messageForErrorNumber,
  SimApiError,
  type SimErrorEntry,
  simErrors,
} from './sim-errors.js';
import type { CountedFault, PagedEndpoint } from './sim-faults.js';
import type { JsonList, MdmInfo, SimLocation } from './sim-location.js';
import { simNotificationErrors, simNotificationTypes } from './sim-notifications.js';
import {
  invalid,
  parseBody,
  type SimRequest,
  type SimResponse,
  serviceLimits,
  stringList,
} from './sim-request.js';
import { globalKey, type SimState } from './sim-state.js';
import { readBearer } from './sim-token.js';

// Apple's v2 endpoints as the simulator serves them. See docs/apple.md, "Calls".

export type { SimRequest, SimResponse } from './sim-request.js';
export { serviceLimits } from './sim-request.js';

export const notificationTypes: readonly string[] = simNotificationTypes;

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
    return await route(state, location, request, now.getTime());
  } catch (error) {
    if (error instanceof SimApiError)
      return errorResponse(error.errorNumber, error.message, error.httpStatus);
    throw error;
  }
}

function route(
  state: SimState,
  location: SimLocation,
  request: SimRequest,
  now: number,
): SimResponse | Promise<SimResponse> {
  const { method, endpoint } = request;
  const assetOperation = routeAssetOperations(state, location, request, now);
  if (assetOperation !== undefined) return assetOperation;
  if (method === 'GET') {
    switch (endpoint) {
      case 'client/config':
        return json(clientConfig(location));
      case 'assets':
      case 'assignments':
      case 'users':
        return paged(state, location, endpoint, request.query);
      default:
        break;
    }
  } else if (method === 'POST') {
    const body = parseBody(request);
    switch (endpoint) {
      case 'client/config':
        return setClientConfig(state, location, body).then(json);
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
  // Apple reports the notification settings back under these names (docs/apple.md, "Notifications").
  if (location.notificationUrl !== undefined) config.notificationUrl = location.notificationUrl;
  if (location.notificationAuthToken !== undefined)
    config.notificationAuthToken = location.notificationAuthToken;
  if (location.notificationTypes !== undefined)
    config.subscribedNotificationTypes = location.notificationTypes;
  return config;
}

function boundedString(value: unknown, name: string, max: number, optional = false): string | undefined {
  if (value === undefined && optional) return undefined;
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${name} must be a non-empty string`);
  if (value.length > max) throw invalid(`${name} is longer than ${max} characters`);
  return value;
}

async function setClientConfig(
  state: SimState,
  location: SimLocation,
  body: Record<string, unknown>,
): Promise<Record<string, unknown>> {
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
  const notification = readNotificationSettings(state, body);
  // Validate everything, and deliver the test notification, before changing anything.
  if (notification.url !== undefined && notification.authToken !== undefined) {
    await state.notifier.sendTest(location, notification.url, notification.authToken);
  }
  if (mdmInfo !== undefined) location.mdmInfo = mdmInfo;
  if (notification.url !== undefined) location.notificationUrl = notification.url;
  if (notification.types !== undefined) location.notificationTypes = notification.types;
  if (notification.authToken !== undefined) location.notificationAuthToken = notification.authToken;
  return clientConfig(location);
}

function readNotificationSettings(
  state: SimState,
  body: Record<string, unknown>,
): { url?: string; authToken?: string; types?: string[] } {
  const tooLong = (name: string, value: unknown, max: number) => {
    if (typeof value !== 'string' || value.length === 0) throw invalid(`${name} must be a non-empty string`);
    if (value.length > max)
      throw new SimApiError(simNotificationErrors.tooLong, `${name} is longer than ${max} characters`);
    return value;
  };
  const url =
    body.notificationUrl === undefined ? undefined : tooLong('notificationUrl', body.notificationUrl, 2048);
  const authToken =
    body.notificationAuthToken === undefined
      ? undefined
      : tooLong('notificationAuthToken', body.notificationAuthToken, 1024);
  if ((url === undefined) !== (authToken === undefined)) {
    throw new SimApiError(simNotificationErrors.urlAndTokenTogether);
  }
  if (url !== undefined) state.notifier.checkUrl(url);
  let types: string[] | undefined;
  if (body.notificationTypes !== undefined) {
    if (
      !Array.isArray(body.notificationTypes) ||
      !body.notificationTypes.every((t) => typeof t === 'string' && notificationTypes.includes(t))
    ) {
      throw invalid(`notificationTypes must be a list of: ${notificationTypes.join(', ')}`);
    }
    types = [...new Set(body.notificationTypes as string[])];
  }
  return {
    ...(url !== undefined ? { url } : {}),
    ...(authToken !== undefined ? { authToken } : {}),
    ...(types !== undefined ? { types } : {}),
  };
}

function paged(state: SimState, location: SimLocation, endpoint: PagedEndpoint, query: URLSearchParams) {
  const rawIndex = query.get('pageIndex') ?? '0';
  if (!/^\d{1,9}$/.test(rawIndex)) throw new SimApiError(simErrors.badPageIndex);
  const pageIndex = Number(rawIndex);
  if (pageIndex === 0) state.noteFirstPage(location.id, endpoint);
  if (endpoint === 'assets' && booleanParam(query, 'unlimited') === true) {
    return unlimitedAssetsPage(state, location, query, pageIndex);
  }
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

/**
 * `GET assets?unlimited=true`: unlimited licenses move from `assets` to `unlimitedAssets`, without
 * `totalCount`, `availableCount` and `retiredCount` (Apple's UnlimitedResponseAsset); paged together.
 */
function unlimitedAssetsPage(
  state: SimState,
  location: SimLocation,
  query: URLSearchParams,
  pageIndex: number,
): SimResponse {
  const records = location.assets(assetFilter(query));
  const pageSize = state.pageSizes.assets;
  const totalPages = Math.ceil(records.length / pageSize);
  if (pageIndex > 0 && pageIndex >= totalPages) throw new SimApiError(simErrors.badPageIndex);
  const items = records.slice(pageIndex * pageSize, (pageIndex + 1) * pageSize);
  const assets: Record<string, unknown>[] = [];
  const unlimitedAssets: Record<string, unknown>[] = [];
  for (const item of items) {
    if (item.totalCount === unlimitedTotalCount) {
      const { totalCount: _t, availableCount: _a, retiredCount: _r, ...rest } = item;
      unlimitedAssets.push(rest);
    } else {
      assets.push(item);
    }
  }
  return json({
    assets,
    unlimitedAssets,
    currentPageIndex: pageIndex,
    ...(pageIndex + 1 < totalPages ? { nextPageIndex: pageIndex + 1 } : {}),
    size: items.length,
    totalPages,
    tokenExpirationDate: location.tokenExpirationDate,
    uId: location.uId,
    versionId: location.versionId,
  });
}

function assetFilter(query: URLSearchParams) {
  return {
    adamId: stringParam(query, 'adamId'),
    pricingParam: stringParam(query, 'pricingParam'),
    productType: stringParam(query, 'productType'),
    deviceAssignable: booleanParam(query, 'deviceAssignable'),
    revocable: booleanParam(query, 'revocable'),
  };
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
      // Only the requested page is turned into text, as Apple's servers send only that page.
      const matching = location.assetsMatching(assetFilter(query));
      return {
        length: matching.length,
        slice: (from, to) => matching.slice(from, to).map((a) => JSON.stringify(location.assetRecord(a))),
      };
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
