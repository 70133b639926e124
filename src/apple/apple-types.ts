/**
 * Apple Apps and Books v2 wire types and their parsers. Parsers check only what vppd relies on, so a
 * field Apple adds later passes through untouched; a missing required field is an `AppleShapeError`.
 * See docs/apple.md, "Calls".
 */

/** Thrown by the parsers when Apple's JSON lacks a field vppd relies on. Never carries the body. */
export class AppleShapeError extends Error {
  override readonly name = 'AppleShapeError';
}

type Json = Record<string, unknown>;

export interface AppleServiceConfig {
  /** Requests per second allowed per location (sToken). */
  readonly maxRequestPerSecond: number | undefined;
  /** Every numeric limit Apple listed (`maxAssets`, `maxRevokeSerialNumbers`, ...). */
  readonly limits: Readonly<Record<string, number>>;
  /** The content metadata lookup URL, when listed. */
  readonly contentMetadataLookupUrl: string | undefined;
  readonly errorCodes: readonly { readonly errorNumber: number; readonly errorMessage: string }[];
}

export interface AppleMdmInfo {
  readonly id: string;
  readonly name: string;
  readonly metadata?: string;
}

export interface AppleClientConfig {
  /** Apple's library (location) id; stable across renewals of the token. */
  readonly uId: string;
  readonly locationName: string;
  readonly countryISO2ACode: string | undefined;
  readonly defaultPlatform: string | undefined;
  readonly websiteURL: string | undefined;
  readonly tokenExpirationDate: string | undefined;
  /** The MDM that claimed this location, if any. */
  readonly mdmInfo: AppleMdmInfo | undefined;
  readonly notificationUrl: string | undefined;
  readonly notificationTypes: readonly string[] | undefined;
}

export interface AppleSetClientConfigInput {
  readonly mdmInfo: AppleMdmInfo;
  readonly notificationUrl?: string;
  readonly notificationAuthToken?: string;
  readonly notificationTypes?: readonly string[];
}

export interface AppleAsset {
  readonly adamId: string;
  readonly pricingParam: string;
  readonly productType: string | undefined;
  readonly totalCount: number;
  readonly assignedCount: number;
  readonly availableCount: number;
  readonly retiredCount: number;
  readonly deviceAssignable: boolean | undefined;
  readonly revocable: boolean | undefined;
  readonly supportedPlatforms: readonly string[];
}

/** A license held by a device (`serialNumber`) or a user (`clientUserId`): exactly one of them is set. */
export interface AppleAssignment {
  readonly adamId: string;
  readonly pricingParam: string;
  readonly serialNumber?: string;
  readonly clientUserId?: string;
}

export interface AppleUser {
  readonly clientUserId: string;
  readonly email: string | undefined;
  readonly status: string | undefined;
  readonly userId: string | undefined;
}

/** One page of a paged endpoint, envelope fields plus the records. */
export interface ApplePage<T> {
  readonly currentPageIndex: number;
  /** Absent on the last page. */
  readonly nextPageIndex: number | undefined;
  readonly totalPages: number;
  readonly versionId: string;
  /** Records on this page as Apple counted them (`size`). */
  readonly size: number;
  readonly records: readonly T[];
  readonly uId: string | undefined;
  readonly tokenExpirationDate: string | undefined;
  /**
   * True when the page's text had no backslash, so no string in it (no serial number, no
   * clientUserId) has a character JSON escapes: `JSON.stringify(s)` is `s` in quotes. Absent when the
   * text was not seen.
   */
  readonly escapeFree?: boolean;
}

export interface AppleEventStatus {
  readonly eventStatus: string;
  readonly eventType: string | undefined;
  readonly numRequested: number | undefined;
  readonly numCompleted: number | undefined;
  readonly failures: readonly Readonly<Record<string, unknown>>[];
}

export interface AppleEventId {
  readonly eventId: string;
}

/** What the content metadata lookup says about one adamId. */
export interface AppleContentMetadata {
  readonly adamId: string;
  readonly name: string | undefined;
  readonly bundleId: string | undefined;
  readonly kind: string | undefined;
  readonly artworkUrl: string | undefined;
  readonly deviceFamilies: readonly string[];
  /** The whole entry as Apple sent it, for fields vppd does not model yet. */
  readonly raw: Readonly<Record<string, unknown>>;
}

function object(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AppleShapeError(`${what} is not a JSON object`);
  }
  return value as Json;
}

function str(o: Json, key: string, what: string): string {
  const v = o[key];
  if (typeof v === 'string') return v;
  // Apple documents ids as strings, but a numeric id is unambiguous; accept it rather than fail a sync.
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  throw new AppleShapeError(`${what}.${key} is missing or not a string`);
}

function optStr(o: Json, key: string): string | undefined {
  const v = o[key];
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

function num(o: Json, key: string, what: string): number {
  const v = o[key];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  throw new AppleShapeError(`${what}.${key} is missing or not a number`);
}

function optNum(o: Json, key: string): number | undefined {
  const v = o[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function optBool(o: Json, key: string): boolean | undefined {
  const v = o[key];
  return typeof v === 'boolean' ? v : undefined;
}

function strArray(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** Parses `GET /service/config`. */
export function parseServiceConfig(body: unknown): AppleServiceConfig {
  const o = object(body, 'service config');
  const limits: Record<string, number> = {};
  if (typeof o.limits === 'object' && o.limits !== null) {
    for (const [k, v] of Object.entries(o.limits as Json)) {
      if (typeof v === 'number' && Number.isFinite(v)) limits[k] = v;
    }
  }
  const urls = typeof o.urls === 'object' && o.urls !== null ? (o.urls as Json) : {};
  const rps = limits.maxRequestPerSecond ?? optNum(o, 'maxRequestPerSecond');
  const errorCodes = Array.isArray(o.errorCodes)
    ? o.errorCodes.flatMap((e) => {
        if (typeof e !== 'object' || e === null) return [];
        const entry = e as Json;
        const errorNumber = optNum(entry, 'errorNumber');
        return errorNumber === undefined
          ? []
          : [{ errorNumber, errorMessage: optStr(entry, 'errorMessage') ?? '' }];
      })
    : [];
  return {
    maxRequestPerSecond: rps !== undefined && rps > 0 ? rps : undefined,
    limits,
    contentMetadataLookupUrl: optStr(urls, 'contentMetadataLookup'),
    errorCodes,
  };
}

function parseMdmInfo(v: unknown): AppleMdmInfo | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Json;
  const id = optStr(o, 'id');
  if (id === undefined || id === '') return undefined;
  const metadata = optStr(o, 'metadata');
  return { id, name: optStr(o, 'name') ?? '', ...(metadata === undefined ? {} : { metadata }) };
}

/** Parses `GET`/`POST /client/config`. */
export function parseClientConfig(body: unknown): AppleClientConfig {
  const o = object(body, 'client config');
  return {
    uId: str(o, 'uId', 'client config'),
    locationName: optStr(o, 'locationName') ?? '',
    countryISO2ACode: optStr(o, 'countryISO2ACode'),
    defaultPlatform: optStr(o, 'defaultPlatform'),
    websiteURL: optStr(o, 'websiteURL'),
    tokenExpirationDate: optStr(o, 'tokenExpirationDate'),
    mdmInfo: parseMdmInfo(o.mdmInfo),
    notificationUrl: optStr(o, 'notificationUrl'),
    // Apple reports the subscription as `subscribedNotificationTypes` (the request names it `notificationTypes`).
    notificationTypes: Array.isArray(o.subscribedNotificationTypes)
      ? strArray(o.subscribedNotificationTypes)
      : Array.isArray(o.notificationTypes)
        ? strArray(o.notificationTypes)
        : undefined,
  };
}

/** Parses one record of `GET /assets`. */
export function parseAsset(value: unknown): AppleAsset {
  const o = object(value, 'asset');
  return {
    adamId: str(o, 'adamId', 'asset'),
    pricingParam: str(o, 'pricingParam', 'asset'),
    productType: optStr(o, 'productType'),
    totalCount: num(o, 'totalCount', 'asset'),
    assignedCount: num(o, 'assignedCount', 'asset'),
    availableCount: num(o, 'availableCount', 'asset'),
    retiredCount: optNum(o, 'retiredCount') ?? 0,
    deviceAssignable: optBool(o, 'deviceAssignable'),
    revocable: optBool(o, 'revocable'),
    supportedPlatforms: strArray(o.supportedPlatforms),
  };
}

/** Parses one record of `GET /assignments`; exactly one of serialNumber/clientUserId must be present. */
export function parseAssignment(value: unknown): AppleAssignment {
  // The sync's hot path (one call per license): the usual all-strings record is checked with plain
  // property reads (monomorphic, unlike the keyed reads of the helpers); anything else takes the
  // general path below, which applies the same rules and raises the errors.
  if (typeof value === 'object' && value !== null) {
    const r = value as {
      adamId?: unknown;
      pricingParam?: unknown;
      serialNumber?: unknown;
      clientUserId?: unknown;
    };
    const adamId = r.adamId;
    const pricingParam = r.pricingParam;
    const serialNumber = r.serialNumber;
    const clientUserId = r.clientUserId;
    if (typeof adamId === 'string' && typeof pricingParam === 'string' && !Array.isArray(value)) {
      if (typeof serialNumber === 'string' && clientUserId === undefined) {
        return { adamId, pricingParam, serialNumber };
      }
      if (typeof clientUserId === 'string' && serialNumber === undefined) {
        return { adamId, pricingParam, clientUserId };
      }
    }
  }
  return parseAssignmentChecked(value);
}

function parseAssignmentChecked(value: unknown): AppleAssignment {
  const o = object(value, 'assignment');
  const adamId = str(o, 'adamId', 'assignment');
  const pricingParam = str(o, 'pricingParam', 'assignment');
  const serialNumber = optStr(o, 'serialNumber');
  const clientUserId = optStr(o, 'clientUserId');
  if ((serialNumber === undefined) === (clientUserId === undefined)) {
    throw new AppleShapeError('assignment must have exactly one of serialNumber and clientUserId');
  }
  return serialNumber !== undefined
    ? { adamId, pricingParam, serialNumber }
    : { adamId, pricingParam, clientUserId: clientUserId as string };
}

/** Parses one record of `GET /users`. */
export function parseUser(value: unknown): AppleUser {
  const o = object(value, 'user');
  return {
    clientUserId: str(o, 'clientUserId', 'user'),
    email: optStr(o, 'email'),
    status: optStr(o, 'status'),
    userId: optStr(o, 'userId'),
  };
}

/**
 * Parses a page envelope and its records with `parseRecord`; `text`, the JSON `body` was parsed from,
 * tells {@link ApplePage.escapeFree}. A JSON text cannot hold a quote, a control character or a lone
 * surrogate in a string without a backslash escape, and the transport decodes UTF-8 with replacement.
 */
export function parsePage<T>(
  body: unknown,
  recordsField: string,
  parseRecord: (value: unknown) => T,
  text?: string,
): ApplePage<T> {
  const o = object(body, 'page');
  const rawRecords = o[recordsField] ?? [];
  if (!Array.isArray(rawRecords)) throw new AppleShapeError(`page.${recordsField} is not an array`);
  const records = new Array<T>(rawRecords.length);
  for (let i = 0; i < rawRecords.length; i++) records[i] = parseRecord(rawRecords[i]);
  const currentPageIndex = optNum(o, 'currentPageIndex') ?? 0;
  const next = optNum(o, 'nextPageIndex');
  return {
    currentPageIndex,
    nextPageIndex: next,
    // An empty result may omit totalPages; one (empty) page is the honest reading.
    totalPages: optNum(o, 'totalPages') ?? 1,
    versionId: optStr(o, 'versionId') ?? '',
    size: optNum(o, 'size') ?? records.length,
    records,
    uId: optStr(o, 'uId'),
    tokenExpirationDate: optStr(o, 'tokenExpirationDate'),
    ...(text === undefined ? {} : { escapeFree: text.indexOf('\\') < 0 }),
  };
}

/** Parses the `{eventId}` answer of the asynchronous calls (associate, disassociate, revoke). */
export function parseEventId(body: unknown): AppleEventId {
  const o = object(body, 'event answer');
  return { eventId: str(o, 'eventId', 'event answer') };
}

/** Parses `GET /status`. */
export function parseEventStatus(body: unknown): AppleEventStatus {
  const o = object(body, 'event status');
  return {
    eventStatus: str(o, 'eventStatus', 'event status'),
    eventType: optStr(o, 'eventType'),
    numRequested: optNum(o, 'numRequested'),
    numCompleted: optNum(o, 'numCompleted'),
    failures: Array.isArray(o.failures)
      ? o.failures.filter((f): f is Json => typeof f === 'object' && f !== null)
      : [],
  };
}

function artworkOf(entry: Json): string | undefined {
  const artwork = entry.artwork;
  if (typeof artwork === 'object' && artwork !== null) {
    const url = optStr(artwork as Json, 'url');
    if (url !== undefined) return url;
  }
  return optStr(entry, 'artworkUrl') ?? optStr(entry, 'artworkUrl512') ?? optStr(entry, 'artworkUrl100');
}

/** Parses the content metadata lookup answer `{results: {<adamId>: {...}}}`; unknown ids are absent. */
export function parseContentMetadata(body: unknown): Map<string, AppleContentMetadata> {
  const o = object(body, 'metadata lookup');
  const results = o.results;
  const out = new Map<string, AppleContentMetadata>();
  if (typeof results !== 'object' || results === null || Array.isArray(results)) return out;
  for (const [adamId, value] of Object.entries(results as Json)) {
    if (typeof value !== 'object' || value === null) continue;
    const entry = value as Json;
    out.set(adamId, {
      adamId,
      name: optStr(entry, 'name'),
      bundleId: optStr(entry, 'bundleId'),
      kind: optStr(entry, 'kind'),
      artworkUrl: artworkOf(entry),
      deviceFamilies: strArray(entry.deviceFamilies),
      raw: entry,
    });
  }
  return out;
}
