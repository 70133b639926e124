import { errors } from '../domain/errors.js';
import { type Logger, silentLogger } from '../domain/logger.js';
import {
  type AppleAttemptFailure,
  appleErrorNumbers,
  appleFailureError,
  syncFailureOfAppleAttempt,
} from './apple-failure.js';
import { type AppleHttp, createUndiciHttp } from './apple-http.js';
import {
  type AppleAsset,
  type AppleAssignment,
  type AppleClientConfig,
  type AppleContentMetadata,
  type AppleEventId,
  type AppleEventStatus,
  type ApplePage,
  type AppleServiceConfig,
  type AppleSetClientConfigInput,
  AppleShapeError,
  type AppleUser,
  parseAsset,
  parseAssignment,
  parseClientConfig,
  parseContentMetadata,
  parseEventId,
  parseEventStatus,
  parsePage,
  parseServiceConfig,
  parseUser,
} from './apple-types.js';
import { streamPages } from './page-stream.js';
import { InProcessRateLimiter, locationKeyOf, type RateLimiter } from './rate-limiter.js';
import { decideRetry, defaultRetryPolicy, parseRetryAfter, type RetryPolicy } from './retry-policy.js';

/** Apple's production Apps and Books v2 base URL. */
export const appleProductionBaseUrl = 'https://vpp.itunes.apple.com/mdm/v2';

/** Requests per second per location when service/config has not said otherwise. */
export const defaultMaxRequestPerSecond = 15;

/** One HTTP exchange with Apple, reported to {@link AppleObserver.request} (no sToken, no URL query). */
export interface AppleRequestObservation {
  /** e.g. `GET /assignments`. */
  readonly endpoint: string;
  /** Apple's HTTP status, or undefined when no answer came (network error, timeout). */
  readonly status: number | undefined;
  /** Apple's `errorNumber` when the body carried one. */
  readonly errorNumber: number | undefined;
  readonly durationMs: number;
}

/** Optional hooks for metrics: every attempt sent to Apple and every wait for the rate limit. */
export interface AppleObserver {
  request?(observation: AppleRequestObservation): void;
  rateLimitWait?(observation: { readonly endpoint: string; readonly waitedMs: number }): void;
}

/** Sleeps `ms`, rejecting with the signal's reason when it aborts first. */
export function realSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface AppleClientOptions {
  /** Apps and Books v2 base URL; default {@link appleProductionBaseUrl}. */
  readonly baseUrl?: string;
  /** Content metadata lookup URL; default: the one service/config lists. */
  readonly metadataUrl?: string;
  /** Transport; default an owned undici keep-alive agent (closed by {@link AppleClient.close}). */
  readonly http?: AppleHttp;
  /**
   * Connections per origin of the default transport (default 16). Size it to the work: Apple allows
   * 5 requests in flight per location, so 5 x the syncs running at once (vppd caps it at 256).
   */
  readonly connections?: number;
  /**
   * Awaited before a response body larger than 16 KiB is parsed (a page of records): vppd passes its
   * background lane, so parsing pages waits while requests to vppd are being answered.
   */
  readonly beforeParse?: () => Promise<void>;
  /**
   * Per-location limiter shared by every caller in the process; default an in-process limiter.
   * `null` disables client-side limiting (benchmarks only: Apple's limit still applies).
   */
  readonly rateLimiter?: RateLimiter | null;
  /**
   * Window of the default in-process limiter. Slightly over a second (default 1050 ms) so that network
   * jitter between this process and Apple never makes Apple see `limit + 1` requests in its own window.
   */
  readonly rateLimitWindowMs?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly random?: () => number;
  readonly logger?: Logger;
  readonly retry?: Partial<RetryPolicy>;
  /** Per-request timeout (headers and body), default 30 s. */
  readonly timeoutMs?: number;
  /** Pages fetched at once by the paged calls, 1–5 (default 5). */
  readonly pageConcurrency?: number;
  /** Used until service/config gives `maxRequestPerSecond`; default 15. */
  readonly defaultMaxRequestPerSecond?: number;
  /** How long a service/config answer is trusted; default 5 minutes. */
  readonly serviceConfigTtlMs?: number;
  /** adamIds per content metadata lookup request; default 50. */
  readonly metadataBatchSize?: number;
  readonly userAgent?: string;
  /** Metrics hooks (requests by endpoint, status and errorNumber; rate-limit waits). */
  readonly observer?: AppleObserver;
}

/** Per-call options. */
export interface AppleCallOptions {
  readonly signal?: AbortSignal;
}

/** Options of the paged calls. */
export interface ApplePagedOptions extends AppleCallOptions {
  /** Pages fetched at once, 1–5; default the client's `pageConcurrency`. */
  readonly concurrency?: number;
  /** Pages buffered ahead of the consumer; default twice the concurrency. */
  readonly lookahead?: number;
  /**
   * How many pages the caller expects (what an earlier read of the same listing found): the pages
   * after the first are requested with it instead of once it answered (see {@link streamPages}).
   */
  readonly expectedPages?: number;
}

export interface AppleAssetFilters {
  readonly adamId?: string;
  readonly pricingParam?: string;
  readonly productType?: string;
  readonly deviceAssignable?: boolean;
  readonly revocable?: boolean;
  readonly maxAvailableCount?: number;
}

export interface AppleAssignmentFilters {
  readonly adamId?: string;
  readonly serialNumber?: string;
  readonly clientUserId?: string;
  /** Only changes since this version (a response with zero records is normal). */
  readonly sinceVersionId?: string;
}

export interface AppleUserFilters {
  readonly clientUserId?: string;
  readonly email?: string;
  readonly includeRetired?: boolean;
  readonly sinceVersionId?: string;
}

export interface AppleRevokeInput {
  readonly serialNumbers?: readonly string[];
  readonly clientUserIds?: readonly string[];
}

/** An asset as associate/disassociate name it: `(adamId, pricingParam)`. */
export interface AppleAssetRef {
  readonly adamId: string;
  readonly pricingParam: string;
}

/** The body of `POST /assets/associate` and `/assets/disassociate`: exactly one holder list. */
export interface AppleAssociationInput {
  readonly assets: readonly AppleAssetRef[];
  readonly serialNumbers?: readonly string[];
  readonly clientUserIds?: readonly string[];
}

/** Apple's per-call limits of associate/disassociate (`service/config`, Apple's documented defaults). */
export interface AppleAssociationLimits {
  readonly maxAssets: number;
  readonly maxSerialNumbers: number;
  readonly maxClientUserIds: number;
}

export interface AppleMetadataOptions extends AppleCallOptions {
  /** The location's `defaultPlatform`, e.g. `volumestore` or `enterprisestore`. */
  readonly platform: string;
  /** The location's country (ISO 3166-1 alpha-2, any case). */
  readonly country: string;
  readonly language?: string;
  /** Sent as the `itvt` cookie some lookups expect; never logged. */
  readonly sToken?: string;
}

interface CallSpec<T> {
  readonly method: 'GET' | 'POST';
  readonly url: URL;
  /** Label for logs and errors, e.g. `GET /assignments`. */
  readonly endpoint: string;
  readonly sToken?: string;
  /** Send the sToken as the bearer credential (all v2 calls but service/config). */
  readonly bearer: boolean;
  readonly cookie?: string;
  readonly body?: unknown;
  /** `text` is the body `json` was parsed from. */
  readonly parse: (json: unknown, text: string) => T;
  readonly signal: AbortSignal | undefined;
  /** Rate-limit key; absent for calls not counted per location. */
  readonly locationKey?: string;
  readonly pageIndex?: number;
  readonly maxAttempts?: number;
}

type AttemptOutcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly failure: AppleAttemptFailure };

function withoutSecret(text: string, secret: string | undefined): string {
  if (secret === undefined || secret.length < 8) return text;
  return text.split(secret).join('[redacted]');
}

function errorNumberOf(json: unknown): { errorNumber: number; errorMessage: string | undefined } | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const o = json as Record<string, unknown>;
  const raw = o.errorNumber;
  const errorNumber =
    typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : undefined;
  if (errorNumber === undefined) return undefined;
  return { errorNumber, errorMessage: typeof o.errorMessage === 'string' ? o.errorMessage : undefined };
}

function networkErrorText(error: unknown): { message: string; code: string | undefined } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { message: error.message || error.name, code: typeof code === 'string' ? code : undefined };
  }
  return { message: String(error), code: undefined };
}

function appendQuery(url: URL, query: Readonly<Record<string, string | number | boolean | undefined>>): URL {
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) url.searchParams.set(key, String(value));
  }
  return url;
}

/**
 * Client of Apple's Apps and Books for Organizations API v2 (docs/apple.md): typed
 * calls, paging with at most 5 requests in flight, a per-location rate limit, retries with backoff and
 * classified failures (`VppdError` code `appleFailure`, see {@link appleFailureOf}). The sToken is sent
 * as the bearer credential and never appears in logs or errors.
 */
export class AppleClient {
  readonly baseUrl: string;
  readonly #metadataUrl: string | undefined;
  readonly #http: AppleHttp;
  readonly #ownsHttp: boolean;
  readonly #limiter: RateLimiter | null;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #random: () => number;
  readonly #log: Logger;
  readonly #policy: RetryPolicy;
  readonly #timeoutMs: number;
  readonly #pageConcurrency: number;
  readonly #defaultRps: number;
  readonly #configTtlMs: number;
  readonly #metadataBatchSize: number;
  readonly #userAgent: string;
  readonly #closing = new AbortController();
  readonly #observer: AppleObserver | undefined;
  readonly #beforeParse: (() => Promise<void>) | undefined;
  #serviceConfig: AppleServiceConfig | undefined;
  #nextConfigRefresh = Number.NEGATIVE_INFINITY;
  #refreshing: Promise<void> | undefined;

  constructor(options: AppleClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? appleProductionBaseUrl).replace(/\/+$/, '');
    this.#metadataUrl = options.metadataUrl;
    this.#ownsHttp = options.http === undefined;
    this.#http =
      options.http ??
      createUndiciHttp(options.connections === undefined ? {} : { connections: options.connections });
    this.#beforeParse = options.beforeParse;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? realSleep;
    this.#random = options.random ?? Math.random;
    this.#log = options.logger ?? silentLogger;
    this.#limiter =
      options.rateLimiter === undefined
        ? new InProcessRateLimiter({
            now: this.#now,
            sleep: this.#sleep,
            windowMs: options.rateLimitWindowMs ?? 1050,
          })
        : options.rateLimiter;
    this.#policy = { ...defaultRetryPolicy, ...options.retry };
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#pageConcurrency = Math.min(5, Math.max(1, Math.floor(options.pageConcurrency ?? 5)));
    this.#defaultRps = options.defaultMaxRequestPerSecond ?? defaultMaxRequestPerSecond;
    this.#configTtlMs = options.serviceConfigTtlMs ?? 5 * 60_000;
    this.#metadataBatchSize = Math.max(1, options.metadataBatchSize ?? 50);
    this.#userAgent = options.userAgent ?? 'vppd';
    this.#observer = options.observer;
  }

  /** Reads `GET /service/config` (limits, error codes, URLs) and refreshes the cached limits. */
  async getServiceConfig(options: AppleCallOptions = {}): Promise<AppleServiceConfig> {
    const config = await this.#call({
      method: 'GET',
      url: new URL(`${this.baseUrl}/service/config`),
      endpoint: 'GET /service/config',
      bearer: false,
      parse: parseServiceConfig,
      signal: options.signal,
    });
    this.#serviceConfig = config;
    this.#nextConfigRefresh = this.#now() + this.#configTtlMs;
    return config;
  }

  /** The requests-per-second limit in force for one location (service/config, else the default). */
  async maxRequestPerSecond(): Promise<number> {
    if (this.#now() >= this.#nextConfigRefresh && this.#refreshing === undefined) {
      this.#refreshing = this.#refreshServiceConfig().finally(() => {
        this.#refreshing = undefined;
      });
    }
    // Only the very first call waits; later refreshes happen while requests keep the old limit.
    if (this.#serviceConfig === undefined && this.#refreshing !== undefined) await this.#refreshing;
    return this.#serviceConfig?.maxRequestPerSecond ?? this.#defaultRps;
  }

  /** Reads `GET /client/config`: who this location is and which MDM claimed it. */
  getClientConfig(sToken: string, options: AppleCallOptions = {}): Promise<AppleClientConfig> {
    return this.#call({
      ...this.#located(sToken),
      method: 'GET',
      url: new URL(`${this.baseUrl}/client/config`),
      endpoint: 'GET /client/config',
      parse: parseClientConfig,
      signal: options.signal,
    });
  }

  /** Writes `POST /client/config`: claims the location with this server's `mdmInfo`. */
  setClientConfig(
    sToken: string,
    input: AppleSetClientConfigInput,
    options: AppleCallOptions = {},
  ): Promise<AppleClientConfig> {
    return this.#call({
      ...this.#located(sToken),
      method: 'POST',
      url: new URL(`${this.baseUrl}/client/config`),
      endpoint: 'POST /client/config',
      body: input,
      parse: parseClientConfig,
      signal: options.signal,
    });
  }

  /** Streams every page of `GET /assets` in order (see {@link streamPages}). */
  assets(
    sToken: string,
    filters: AppleAssetFilters = {},
    options: ApplePagedOptions = {},
  ): AsyncGenerator<ApplePage<AppleAsset>, void, undefined> {
    return this.#paged(sToken, 'assets', { ...filters }, parseAsset, options);
  }

  /** Streams every page of `GET /assignments` in order; fails with `snapshotMoved` if data changes. */
  assignments(
    sToken: string,
    filters: AppleAssignmentFilters = {},
    options: ApplePagedOptions = {},
  ): AsyncGenerator<ApplePage<AppleAssignment>, void, undefined> {
    return this.#paged(sToken, 'assignments', { ...filters }, parseAssignment, options);
  }

  /** Streams every page of `GET /users` in order. */
  users(
    sToken: string,
    filters: AppleUserFilters = {},
    options: ApplePagedOptions = {},
  ): AsyncGenerator<ApplePage<AppleUser>, void, undefined> {
    return this.#paged(sToken, 'users', { ...filters }, parseUser, options);
  }

  /** `POST /assets/revoke`: revokes every revocable license of the given devices/users (asynchronous). */
  async revokeAssets(
    sToken: string,
    input: AppleRevokeInput,
    options: AppleCallOptions = {},
  ): Promise<AppleEventId> {
    const serialNumbers = input.serialNumbers ?? [];
    const clientUserIds = input.clientUserIds ?? [];
    if (serialNumbers.length === 0 && clientUserIds.length === 0) {
      throw errors.badRequest('revokeAssets needs at least one serial number or client user id.');
    }
    const limits = this.#serviceConfig?.limits ?? {};
    const maxSerials = limits.maxRevokeSerialNumbers ?? 100;
    const maxUsers = limits.maxRevokeClientUserIds ?? 100;
    if (serialNumbers.length > maxSerials || clientUserIds.length > maxUsers) {
      throw errors.badRequest(
        `revokeAssets accepts at most ${maxSerials} serial numbers and ${maxUsers} client user ids per call.`,
        { serialNumbers: serialNumbers.length, clientUserIds: clientUserIds.length },
      );
    }
    return this.#call({
      ...this.#located(sToken),
      method: 'POST',
      url: new URL(`${this.baseUrl}/assets/revoke`),
      endpoint: 'POST /assets/revoke',
      body: {
        ...(serialNumbers.length > 0 ? { serialNumbers } : {}),
        ...(clientUserIds.length > 0 ? { clientUserIds } : {}),
      },
      parse: parseEventId,
      signal: options.signal,
    });
  }

  /**
   * The associate/disassociate limits from `service/config` (read when none is cached or the cached one
   * is older than the refresh interval; Apple's documented values when it lists none).
   */
  async associationLimits(options: AppleCallOptions = {}): Promise<AppleAssociationLimits> {
    if (this.#serviceConfig === undefined || this.#now() >= this.#nextConfigRefresh) {
      await this.getServiceConfig(options);
    }
    const limits = this.#serviceConfig?.limits ?? {};
    return {
      maxAssets: limits.maxAssets ?? 25,
      maxSerialNumbers: limits.maxSerialNumbers ?? 1000,
      maxClientUserIds: limits.maxClientUserIds ?? 1000,
    };
  }

  /** `POST /assets/associate`: gives licenses of `assets` to the devices or users (asynchronous). */
  associateAssets(sToken: string, input: AppleAssociationInput, options: AppleCallOptions = {}) {
    return this.#associationCall(sToken, 'associate', input, options);
  }

  /** `POST /assets/disassociate`: takes licenses of `assets` back from the devices or users (asynchronous). */
  disassociateAssets(sToken: string, input: AppleAssociationInput, options: AppleCallOptions = {}) {
    return this.#associationCall(sToken, 'disassociate', input, options);
  }

  async #associationCall(
    sToken: string,
    verb: 'associate' | 'disassociate',
    input: AppleAssociationInput,
    options: AppleCallOptions,
  ): Promise<AppleEventId> {
    const serialNumbers = input.serialNumbers ?? [];
    const clientUserIds = input.clientUserIds ?? [];
    if ((serialNumbers.length === 0) === (clientUserIds.length === 0)) {
      throw errors.badRequest(
        `${verb}Assets needs serial numbers or client user ids, exactly one of the two.`,
      );
    }
    const limits = await this.associationLimits(options);
    if (
      input.assets.length === 0 ||
      input.assets.length > limits.maxAssets ||
      serialNumbers.length > limits.maxSerialNumbers ||
      clientUserIds.length > limits.maxClientUserIds
    ) {
      throw errors.badRequest(
        `${verb}Assets accepts 1 to ${limits.maxAssets} assets and at most ${limits.maxSerialNumbers} serial numbers or ${limits.maxClientUserIds} client user ids per call.`,
        {
          assets: input.assets.length,
          serialNumbers: serialNumbers.length,
          clientUserIds: clientUserIds.length,
        },
      );
    }
    return this.#call({
      ...this.#located(sToken),
      method: 'POST',
      url: new URL(`${this.baseUrl}/assets/${verb}`),
      endpoint: `POST /assets/${verb}`,
      body: {
        assets: input.assets.map((a) => ({ adamId: a.adamId, pricingParam: a.pricingParam })),
        ...(serialNumbers.length > 0 ? { serialNumbers } : { clientUserIds }),
      },
      parse: parseEventId,
      signal: options.signal,
    });
  }

  /** `GET /assets/eventStatus?eventId=`: the outcome of an associate or disassociate. */
  getAssetEventStatus(
    sToken: string,
    eventId: string,
    options: AppleCallOptions = {},
  ): Promise<AppleEventStatus> {
    return this.#call({
      ...this.#located(sToken),
      method: 'GET',
      url: appendQuery(new URL(`${this.baseUrl}/assets/eventStatus`), { eventId }),
      endpoint: 'GET /assets/eventStatus',
      parse: parseEventStatus,
      signal: options.signal,
    });
  }

  /** `GET /status?eventId=`: the outcome of an asynchronous call. */
  getEventStatus(sToken: string, eventId: string, options: AppleCallOptions = {}): Promise<AppleEventStatus> {
    return this.#call({
      ...this.#located(sToken),
      method: 'GET',
      url: appendQuery(new URL(`${this.baseUrl}/status`), { eventId }),
      endpoint: 'GET /status',
      parse: parseEventStatus,
      signal: options.signal,
    });
  }

  /**
   * Looks up names, bundle ids and icons of `adamIds` (batched). Ids Apple does not know are absent
   * from the result. See docs/apple.md, "A sync, call by call".
   */
  async lookupMetadata(
    adamIds: readonly string[],
    options: AppleMetadataOptions,
  ): Promise<Map<string, AppleContentMetadata>> {
    const result = new Map<string, AppleContentMetadata>();
    const unique = [...new Set(adamIds)];
    if (unique.length === 0) return result;
    const base = await this.#metadataBase(options.signal);
    for (let i = 0; i < unique.length; i += this.#metadataBatchSize) {
      const ids = unique.slice(i, i + this.#metadataBatchSize);
      const url = appendQuery(new URL(base), {
        version: 2,
        p: 'mdm-lockup',
        caller: 'MDM',
        platform: options.platform,
        cc: options.country.toLowerCase(),
        l: options.language ?? 'en',
        id: ids.join(','),
      });
      const batch = await this.#call({
        method: 'GET',
        url,
        endpoint: 'GET content metadata lookup',
        bearer: false,
        ...(options.sToken === undefined ? {} : { sToken: options.sToken, cookie: `itvt=${options.sToken}` }),
        parse: parseContentMetadata,
        signal: options.signal,
      });
      for (const [id, metadata] of batch) result.set(id, metadata);
    }
    return result;
  }

  /** Stops background work and closes the transport if the client created it. */
  async close(): Promise<void> {
    this.#closing.abort();
    await this.#refreshing;
    if (this.#ownsHttp) await this.#http.close();
  }

  #located(sToken: string): { sToken: string; bearer: true; locationKey: string } {
    const token = sToken.trim();
    return { sToken: token, bearer: true, locationKey: locationKeyOf(token) };
  }

  #paged<T>(
    sToken: string,
    resource: 'assets' | 'assignments' | 'users',
    filters: Record<string, string | number | boolean | undefined>,
    parseRecord: (value: unknown) => T,
    options: ApplePagedOptions,
  ): AsyncGenerator<ApplePage<T>, void, undefined> {
    const located = this.#located(sToken);
    const endpoint = `GET /${resource}`;
    return streamPages(
      (pageIndex, signal) =>
        this.#call({
          ...located,
          method: 'GET',
          url: appendQuery(new URL(`${this.baseUrl}/${resource}`), { ...filters, pageIndex }),
          endpoint,
          parse: (json, text) => parsePage(json, resource, parseRecord, text),
          signal,
          pageIndex,
        }),
      {
        concurrency: options.concurrency ?? this.#pageConcurrency,
        ...(options.lookahead === undefined ? {} : { lookahead: options.lookahead }),
        ...(options.expectedPages === undefined ? {} : { expectedPages: options.expectedPages }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        endpoint,
        locationKey: located.locationKey,
      },
    );
  }

  async #refreshServiceConfig(): Promise<void> {
    try {
      await this.#getServiceConfigOnce();
    } catch (error) {
      // Keep the previous (or default) limit and try again soon rather than on every request.
      this.#nextConfigRefresh = this.#now() + Math.min(this.#configTtlMs, 60_000);
      if (this.#closing.signal.aborted) return;
      this.#log.warn({ err: { message: String(error) } }, 'Apple service/config could not be read');
    }
  }

  async #getServiceConfigOnce(): Promise<void> {
    const config = await this.#call({
      method: 'GET',
      url: new URL(`${this.baseUrl}/service/config`),
      endpoint: 'GET /service/config',
      bearer: false,
      parse: parseServiceConfig,
      signal: this.#closing.signal,
      maxAttempts: 2,
    });
    this.#serviceConfig = config;
    this.#nextConfigRefresh = this.#now() + this.#configTtlMs;
  }

  async #metadataBase(signal: AbortSignal | undefined): Promise<string> {
    if (this.#metadataUrl !== undefined) return this.#metadataUrl;
    const config = this.#serviceConfig ?? (await this.getServiceConfig(signal ? { signal } : {}));
    if (config.contentMetadataLookupUrl === undefined) {
      throw errors.config(
        'VPPD_APPLE_METADATA_URL',
        'Apple service/config lists no content metadata lookup URL; set one explicitly',
      );
    }
    return config.contentMetadataLookupUrl;
  }

  /** Sends one call with rate limiting and retries; throws a classified `appleFailure` when it gives up. */
  async #call<T>(spec: CallSpec<T>): Promise<T> {
    const policy =
      spec.maxAttempts === undefined ? this.#policy : { ...this.#policy, maxAttempts: spec.maxAttempts };
    let internalErrors = 0;
    for (let attempt = 1; ; attempt++) {
      spec.signal?.throwIfAborted();
      if (spec.locationKey !== undefined && this.#limiter !== null) {
        const limit = await this.maxRequestPerSecond();
        const waitStarted = this.#now();
        await this.#limiter.acquire(spec.locationKey, limit, spec.signal);
        const waitedMs = this.#now() - waitStarted;
        if (waitedMs > 0) this.#observer?.rateLimitWait?.({ endpoint: spec.endpoint, waitedMs });
      }
      const attemptStarted = this.#now();
      const outcome = await this.#attempt(spec);
      // A success carries no status out of #attempt; Apple answers every successful v2 call with 200.
      this.#observer?.request?.({
        endpoint: spec.endpoint,
        status: outcome.ok
          ? 200
          : outcome.failure.type === 'apple' || outcome.failure.type === 'malformed'
            ? outcome.failure.httpStatus
            : undefined,
        errorNumber: outcome.ok || outcome.failure.type !== 'apple' ? undefined : outcome.failure.errorNumber,
        durationMs: this.#now() - attemptStarted,
      });
      if (outcome.ok) return outcome.value;
      const { failure } = outcome;
      const is9603 = failure.type === 'apple' && failure.errorNumber === appleErrorNumbers.internalError;
      internalErrors = is9603 ? internalErrors + 1 : 0;
      const decision = decideRetry(failure, { attempt, internalErrors }, policy, this.#random);
      const classified = syncFailureOfAppleAttempt(failure);
      if (!decision.retry) {
        const error = appleFailureError({
          failure: classified,
          endpoint: spec.endpoint,
          attempts: attempt,
          ...(spec.locationKey === undefined ? {} : { locationKey: spec.locationKey }),
          ...(spec.pageIndex === undefined ? {} : { pageIndex: spec.pageIndex }),
        });
        this.#log.warn(
          { endpoint: spec.endpoint, locationKey: spec.locationKey, attempts: attempt, failure: classified },
          'Apple call failed',
        );
        throw error;
      }
      this.#log.warn(
        {
          endpoint: spec.endpoint,
          locationKey: spec.locationKey,
          pageIndex: spec.pageIndex,
          attempt,
          delayMs: decision.delayMs,
          reason: decision.reason,
          appleErrorNumber: classified.appleErrorNumber,
          httpStatus: classified.httpStatus,
        },
        'Apple call failed; retrying',
      );
      await this.#sleep(decision.delayMs, spec.signal);
    }
  }

  async #attempt<T>(spec: CallSpec<T>): Promise<AttemptOutcome<T>> {
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.#userAgent };
    if (spec.bearer && spec.sToken !== undefined) headers.authorization = `Bearer ${spec.sToken}`;
    if (spec.cookie !== undefined) headers.cookie = spec.cookie;
    let body: string | undefined;
    if (spec.body !== undefined) {
      body = JSON.stringify(spec.body);
      headers['content-type'] = 'application/json';
    }
    // One controller per attempt, fed by the caller's signal and the timeout; listeners are removed
    // afterwards so long-lived caller signals do not collect them.
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#timeoutMs);
    const onAbort = () => controller.abort(spec.signal?.reason);
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    let response: { status: number; retryAfter: string | undefined; body: string };
    try {
      response = await this.#http.request({
        method: spec.method,
        url: spec.url,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: controller.signal,
      });
    } catch (error) {
      if (spec.signal?.aborted) throw spec.signal.reason;
      if (timedOut) return { ok: false, failure: { type: 'timeout', timeoutMs: this.#timeoutMs } };
      const { message, code } = networkErrorText(error);
      return {
        ok: false,
        failure: { type: 'network', message: withoutSecret(message, spec.sToken), code },
      };
    } finally {
      clearTimeout(timer);
      spec.signal?.removeEventListener('abort', onAbort);
    }

    if (this.#beforeParse !== undefined && response.body.length > 16_384) await this.#beforeParse();
    let json: unknown;
    let notJson = false;
    try {
      json = response.body.length === 0 ? undefined : JSON.parse(response.body);
    } catch {
      notJson = true;
    }
    const appleError = errorNumberOf(json);
    const ok = response.status >= 200 && response.status < 300;
    if (appleError !== undefined || !ok) {
      const fallback = ok ? 'error' : `HTTP ${response.status}`;
      return {
        ok: false,
        failure: {
          type: 'apple',
          httpStatus: response.status,
          errorNumber: appleError?.errorNumber,
          message: withoutSecret(appleError?.errorMessage ?? fallback, spec.sToken),
          retryAfterMs: parseRetryAfter(response.retryAfter, this.#now()),
        },
      };
    }
    if (notJson) {
      return {
        ok: false,
        failure: {
          type: 'malformed',
          httpStatus: response.status,
          message: 'the body is not JSON',
          notJson: true,
        },
      };
    }
    try {
      return { ok: true, value: spec.parse(json, response.body) };
    } catch (error) {
      if (!(error instanceof AppleShapeError)) throw error;
      return {
        ok: false,
        failure: { type: 'malformed', httpStatus: response.status, message: error.message, notJson: false },
      };
    }
  }
}

/** Creates an {@link AppleClient}; see {@link AppleClientOptions} for what can be injected. */
export function createAppleClient(options: AppleClientOptions = {}): AppleClient {
  return new AppleClient(options);
}
