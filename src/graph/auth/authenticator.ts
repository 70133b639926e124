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
}

/** Verifies bearer tokens and turns them into a {@link Principal}. */
export interface Authenticator {
  /** Verifies the `Authorization` header value; throws VppdError(unauthenticated) when it fails. */
  authenticate(authorization: string | undefined): Promise<Principal>;
}

export interface AuthenticatorOptions {
  /** The fetch used to download the JWKS (injected so tests can serve keys locally). */
  readonly fetch?: typeof fetch;
  /** The clock that decides `exp`/`nbf`. */
  readonly clock?: () => Date;
}

const maxTenantIdLength = 128;
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
  const verify =
    config.kind === 'hs256'
      ? (jwt: string) =>
          jwtVerify(jwt, config.secret, {
            algorithms: ['HS256'],
            currentDate: clock(),
            clockTolerance: clockToleranceSeconds,
          })
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
              currentDate: clock(),
              clockTolerance: clockToleranceSeconds,
            });
        })();

  return {
    async authenticate(authorization) {
      if (authorization === undefined || authorization.trim() === '') {
        throw unauthenticated('Access token is empty.');
      }
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!match?.[1]) throw unauthenticated('The Authorization header must be `Bearer <access token>`.');
      let payload: JWTPayload;
      try {
        ({ payload } = await verify(match[1]));
      } catch (error) {
        // Name the problem, never the token.
        const reason =
          error instanceof joseErrors.JWTExpired
            ? 'Lifetime validation failed, the token is expired.'
            : error instanceof joseErrors.JWTClaimValidationFailed
              ? `Access token validation failed: claim '${error.claim}' is not valid.`
              : error instanceof joseErrors.JOSEError && error.code === 'ERR_JWKS_NO_MATCHING_KEY'
                ? 'Access token validation failed: no signing key matches.'
                : error instanceof joseErrors.JWKSTimeout || error instanceof TypeError
                  ? 'Access token validation failed: the signing keys could not be fetched.'
                  : 'Access token validation failure. Invalid signature or malformed token.';
        throw unauthenticated(reason, error);
      }
      const tid = payload.tid;
      if (typeof tid !== 'string' || tid.trim() === '' || tid.length > maxTenantIdLength) {
        throw unauthenticated("Access token validation failed: the 'tid' claim (tenant) is missing.");
      }
      return {
        tenantId: tid,
        permissions: permissionsOf(payload),
        clientId: firstString(payload.appid, payload.azp, payload.sub),
      };
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

function firstString(...values: unknown[]): string | undefined {
  return values.find((v): v is string => typeof v === 'string');
}
