import { webcrypto } from 'node:crypto';
import {
  createRemoteJWKSet,
  customFetch,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import type { AuthConfig } from '../../config.js';
import { errorCodes, VppdError } from '../../domain/errors.js';

/** Who is calling: the tenant (`tid`) and the Graph permissions the token grants. */
export interface Principal {
  readonly tenantId: string;
  readonly permissions: ReadonlySet<string>;
  /** The calling application (`appid`/`azp`) or subject, for logs; never a secret. */
  readonly clientId: string | undefined;
  /** The calling application (`appid`, else `azp`): per-app throttling counts by it. */
  readonly appId?: string | undefined;
}

/** Verifies bearer tokens and turns them into a {@link Principal}. */
export interface Authenticator {
  /** Verifies the `Authorization` header value; throws VppdError(unauthenticated) when it fails. */
  authenticate(authorization: string | undefined): Promise<Principal>;
  /**
   * The principal of a header whose token passed verification before and still holds now (the
   * remembered verifications of {@link AuthenticatorOptions.verifiedTokens}), at once; undefined for
   * anything else, which {@link authenticate} then decides. Never throws.
   */
  recall(authorization: string | undefined): Principal | undefined;
}

export interface AuthenticatorOptions {
  /** The fetch used to download the JWKS (injected so tests can serve keys locally). */
  readonly fetch?: typeof fetch;
  /** The clock that decides `exp`/`nbf`. */
  readonly clock?: () => Date;
  /** Verified tokens remembered so a repeated bearer skips the signature check (default: a small cache). */
  readonly verifiedTokens?: VerifiedTokenCache;
  /**
   * Longest lifetime of an accepted token in seconds, `exp` minus `iat` (or `nbf`; or now, when it
   * carries neither): default 90 days (`VPPD_JWT_MAX_LIFETIME`). A leaked token minted to live for
   * years would otherwise stay a credential for years.
   */
  readonly maxLifetimeSeconds?: number;
}

/** Default of {@link AuthenticatorOptions.maxLifetimeSeconds}: 90 days. */
export const defaultMaxTokenLifetimeSeconds = 90 * 86_400;

const maxTenantIdLength = 128;
/** `Bearer <token>` (the scheme in any case): the token. */
const bearerPattern = /^Bearer\s+(\S+)\s*$/i;
/** Leeway for `exp`/`nbf` between vppd's clock and the issuer's. */
const clockToleranceSeconds = 60;

function unauthenticated(message: string, cause?: unknown): VppdError {
  return new VppdError(errorCodes.unauthenticated, message, cause === undefined ? {} : { cause });
}

/**
 * Builds the authenticator for the configured mode: HS256 with a shared secret, or RS256 (and the
 * other asymmetric algorithms Entra ID uses) with a remote JWKS, issuer and audience.
 */
export function createAuthenticator(config: AuthConfig, options: AuthenticatorOptions = {}): Authenticator {
  const clock = options.clock ?? (() => new Date());
  const verifiedTokens = options.verifiedTokens ?? createVerifiedTokenCache();
  const maxLifetimeSeconds = options.maxLifetimeSeconds ?? defaultMaxTokenLifetimeSeconds;
  const verify =
    config.kind === 'hs256'
      ? (() => {
          // Imported once: given raw bytes (or a KeyObject), jose imports the HMAC key on every call.
          const key = webcrypto.subtle.importKey(
            'raw',
            config.secret,
            { name: 'HMAC', hash: 'SHA-256' },
            false,
            ['verify'],
          );
          // Awaited on every verification; this only keeps a failed import from being "unhandled".
          key.catch(() => undefined);
          return async (jwt: string) =>
            jwtVerify(jwt, await key, {
              algorithms: ['HS256'],
              requiredClaims: ['exp'],
              currentDate: clock(),
              clockTolerance: clockToleranceSeconds,
            });
        })()
      : (() => {
          const keys: JWTVerifyGetKey = createRemoteJWKSet(
            config.jwksUrl,
            options.fetch ? { [customFetch]: options.fetch } : {},
          );
          return (jwt: string) =>
            jwtVerify(jwt, keys, {
              algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'ES256'],
              issuer: config.issuer,
              audience: config.audience,
              requiredClaims: ['exp'],
              currentDate: clock(),
              clockTolerance: clockToleranceSeconds,
            });
        })();

  return {
    recall(authorization) {
      if (authorization === undefined) return undefined;
      const jwt = bearerPattern.exec(authorization)?.[1];
      return jwt === undefined ? undefined : verifiedTokens.get(jwt, clock());
    },
    async authenticate(authorization) {
      if (authorization === undefined || authorization.trim() === '') {
        throw unauthenticated('Access token is empty.');
      }
      const match = bearerPattern.exec(authorization);
      if (!match?.[1]) throw unauthenticated('The Authorization header must be `Bearer <access token>`.');
      const jwt = match[1];
      const now = clock();
      const remembered = verifiedTokens.get(jwt, now);
      if (remembered) return remembered;
      let payload: JWTPayload;
      try {
        ({ payload } = await verify(jwt));
      } catch (error) {
        // Name the problem, never the token.
        const reason =
          error instanceof joseErrors.JWTExpired
            ? 'Lifetime validation failed, the token is expired.'
            : error instanceof joseErrors.JWTClaimValidationFailed && error.reason === 'missing'
              ? `Access token validation failed: the '${error.claim}' claim is missing; tokens must expire.`
              : error instanceof joseErrors.JWTClaimValidationFailed
                ? `Access token validation failed: claim '${error.claim}' is not valid.`
                : error instanceof joseErrors.JOSEError && error.code === 'ERR_JWKS_NO_MATCHING_KEY'
                  ? 'Access token validation failed: no signing key matches.'
                  : error instanceof joseErrors.JWKSTimeout || error instanceof TypeError
                    ? 'Access token validation failed: the signing keys could not be fetched.'
                    : 'Access token validation failure. Invalid signature or malformed token.';
        throw unauthenticated(reason, error);
      }
      // `exp` is required above; its distance from the issue time is bounded too.
      const exp = payload.exp as number;
      const issuedAt =
        typeof payload.iat === 'number'
          ? payload.iat
          : typeof payload.nbf === 'number'
            ? payload.nbf
            : Math.floor(now.getTime() / 1000);
      if (exp - issuedAt > maxLifetimeSeconds) {
        throw unauthenticated(
          `Lifetime validation failed, the token lives longer than the maximum of ${describeSeconds(maxLifetimeSeconds)}.`,
        );
      }
      const tid = payload.tid;
      if (typeof tid !== 'string' || tid.trim() === '' || tid.length > maxTenantIdLength) {
        throw unauthenticated("Access token validation failed: the 'tid' claim (tenant) is missing.");
      }
      const principal: Principal = {
        tenantId: tid,
        permissions: permissionsOf(payload),
        clientId: firstString(payload.appid, payload.azp, payload.sub),
        appId: firstString(payload.appid, payload.azp),
      };
      // Only a token that passed every check above is remembered.
      verifiedTokens.set(jwt, principal, { verifiedAt: now, exp: payload.exp, nbf: payload.nbf });
      return principal;
    },
  };
}

/** When a verified token was checked and the time claims it carried (seconds since the epoch). */
export interface VerifiedClaims {
  readonly verifiedAt: Date;
  readonly exp: number | undefined;
  readonly nbf: number | undefined;
}

/**
 * Bearer tokens that already passed verification, so a client repeating its bearer does not pay for
 * the signature check again. Keyed by the token itself: it is held only in this process's memory, like
 * the requests carrying it, and never logged or written anywhere (a SHA-256 of it per request cost
 * ~1 µs, a few percent of a cached Graph read).
 */
export interface VerifiedTokenCache {
  /** The principal of a token verified before, if the entry still holds at `now`. */
  get(jwt: string, now: Date): Principal | undefined;
  /** Remembers a token that passed every check. */
  set(jwt: string, principal: Principal, claims: VerifiedClaims): void;
  /** How many entries are held (for tests and metrics). */
  readonly size: number;
}

export interface VerifiedTokenCacheOptions {
  /** Most tokens remembered; the oldest entry goes first (default 1,000). */
  readonly maxEntries?: number;
  /**
   * How long a verification is trusted, in ms (default 60 s): short, so a signing key removed from
   * the JWKS stops being honoured soon even for tokens that do not expire yet.
   */
  readonly ttlMs?: number;
}

interface VerifiedEntry {
  readonly principal: Principal;
  readonly verifiedAtMs: number;
  readonly exp: number | undefined;
  readonly nbf: number | undefined;
}

/** jose's own time checks (whole seconds, with the leeway): true when it would accept the claims now. */
function timeClaimsHold(entry: VerifiedEntry, now: Date): boolean {
  const nowSeconds = Math.floor(now.getTime() / 1000);
  if (entry.exp !== undefined && entry.exp <= nowSeconds - clockToleranceSeconds) return false;
  if (entry.nbf !== undefined && entry.nbf > nowSeconds + clockToleranceSeconds) return false;
  return true;
}

/** Creates the bounded cache of verified tokens the authenticator uses. */
export function createVerifiedTokenCache(options: VerifiedTokenCacheOptions = {}): VerifiedTokenCache {
  const maxEntries = Math.max(0, options.maxEntries ?? 1000);
  const ttlMs = Math.max(0, options.ttlMs ?? 60_000);
  const entries = new Map<string, VerifiedEntry>();
  return {
    get(jwt, now) {
      const entry = entries.get(jwt);
      if (!entry) return undefined;
      const at = now.getTime();
      // Expired, past the trust window, or a clock that went back: forget it and verify in full.
      if (at < entry.verifiedAtMs || at >= entry.verifiedAtMs + ttlMs || !timeClaimsHold(entry, now)) {
        entries.delete(jwt);
        return undefined;
      }
      return entry.principal;
    },
    set(jwt, principal, claims) {
      if (maxEntries === 0 || ttlMs === 0) return;
      const key = jwt;
      entries.delete(key);
      while (entries.size >= maxEntries) {
        const oldest = entries.keys().next();
        if (oldest.done) break;
        entries.delete(oldest.value);
      }
      entries.set(key, {
        principal,
        verifiedAtMs: claims.verifiedAt.getTime(),
        exp: claims.exp,
        nbf: claims.nbf,
      });
    },
    get size() {
      return entries.size;
    },
  };
}

/** Application permissions come in `roles` (array), delegated ones in `scp` (space-separated). */
function permissionsOf(payload: JWTPayload): ReadonlySet<string> {
  const out = new Set<string>();
  if (Array.isArray(payload.roles)) {
    for (const role of payload.roles) if (typeof role === 'string') out.add(role);
  }
  if (typeof payload.scp === 'string') {
    for (const scope of payload.scp.split(' ')) if (scope !== '') out.add(scope);
  }
  return out;
}

/** `90 days`, `12 hours`, `30 minutes`, or seconds: a lifetime as people say it. */
function describeSeconds(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} days`;
  if (seconds % 3600 === 0) return `${seconds / 3600} hours`;
  if (seconds % 60 === 0) return `${seconds / 60} minutes`;
  return `${seconds} seconds`;
}

function firstString(...values: unknown[]): string | undefined {
  return values.find((v): v is string => typeof v === 'string');
}
