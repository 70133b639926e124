import type { FastifyReply, FastifyRequest } from 'fastify';
import { errorCodes, VppdError } from '../domain/errors.js';
import type { GraphVersion } from '../domain/graph-enum.js';
import type { Authenticator, Principal } from './auth/authenticator.js';
import { type AccessLevel, allows, readPermissions, writePermissions } from './auth/permissions.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by {@link authorize} before any Graph handler runs. */
    principal: Principal | null;
    /** The external base URL (see `external-base.ts`); a getter decorated in `buildApp`. */
    readonly externalBase: string;
  }
}

/** The principal of an authorized request (a handler without one is a wiring bug). */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new VppdError(errorCodes.internal, 'route without authorization');
  return request.principal;
}

/**
 * An onRequest hook: authenticates the bearer token and checks the permission the route needs. A
 * callback hook: a bearer verified before (most requests) is settled at once, with no promise and no
 * wait for the microtask queue; any other goes through the full verification.
 */
export function authorize(authenticator: Authenticator, level: AccessLevel) {
  const admit = (request: FastifyRequest, principal: Principal): VppdError | undefined => {
    if (!allows(principal.permissions, level)) {
      const needed = level === 'read' ? readPermissions : writePermissions;
      return new VppdError(
        errorCodes.forbidden,
        `Missing permission: this request needs one of ${needed.join(', ')}.`,
      );
    }
    request.principal = principal;
    return undefined;
  };
  return (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void): void => {
    const authorization = request.headers.authorization;
    const remembered = authenticator.recall(authorization);
    if (remembered !== undefined) {
      done(admit(request, remembered));
      return;
    }
    authenticator.authenticate(authorization).then(
      (principal) => done(admit(request, principal)),
      (error: Error) => done(error),
    );
  };
}

/** The preferences of a `Prefer` header (`return=representation`, `include-unknown-enum-members`). */
export function preferencesOf(request: FastifyRequest): ReadonlySet<string> {
  const header = request.headers.prefer;
  const values = Array.isArray(header) ? header : header === undefined ? [] : [header];
  const out = new Set<string>();
  for (const value of values) {
    for (const item of value.split(',')) {
      const name = item.trim().split(';')[0]?.trim().toLowerCase();
      if (name) out.add(name.replace(/\s+/g, ''));
    }
  }
  return out;
}

/**
 * What every absolute URL vppd writes starts with: `https://host[:port][/prefix]` as the client sees
 * it, behind a reverse proxy too (`VPPD_PUBLIC_URL`, trusted forwarded headers; see `external-base.ts`).
 */
export function externalBaseOf(request: FastifyRequest): string {
  return request.externalBase;
}

/** The absolute URL of the request as the client addressed it (external base + path and query). */
export function externalUrlOf(request: FastifyRequest): string {
  return `${externalBaseOf(request)}${request.url}`;
}

/** `<external base>/<version>/$metadata`, the base of `@odata.context`. */
export function metadataUrlOf(request: FastifyRequest, version: GraphVersion): string {
  return `${externalBaseOf(request)}/${version}/$metadata`;
}

/** The raw query string of a request (without `?`), as the client sent it. */
export function rawQueryOf(request: FastifyRequest): string {
  const index = request.url.indexOf('?');
  return index < 0 ? '' : request.url.slice(index + 1);
}
