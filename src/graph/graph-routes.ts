import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.js';
import { graphVersions } from '../domain/graph-enum.js';
import { sendGraphError } from '../http/graph-error.js';
import { createGraphThrottle, type GraphThrottle } from '../http/graph-throttle.js';
import type { InnerRequests } from '../http/inner-requests.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { registerBatchRoutes } from './batch-routes.js';
import { registerDepOnboardingRoutes } from './dep-onboarding-routes.js';
import { buildMetadataDocument } from './metadata-document.js';
import { registerMobileAppRoutes } from './mobile-apps-routes.js';
import { registerVppTokenActionRoutes } from './vpp-token-actions-routes.js';
import { registerVppTokenCollectionActionRoutes } from './vpp-token-collection-actions-routes.js';
import { registerVppTokenRevokeRoutes } from './vpp-token-revoke-routes.js';
import { registerVppTokenRoutes } from './vpp-tokens-routes.js';

export interface GraphRoutesOptions {
  /** Where `$batch` registers its steps (so they inherit the outer request's external base). */
  readonly innerRequests: InnerRequests;
}

/** Microsoft Graph's surface under `/beta` and `/v1.0`: `$metadata`, vppTokens, mobileApps, depOnboardingSettings. */
export function registerGraphRoutes(
  app: FastifyInstance,
  context: AppContext,
  options: GraphRoutesOptions,
): void {
  const throttle =
    context.config.graphThrottling === 'intune' ? createGraphThrottle(context.clock) : undefined;
  for (const version of graphVersions) {
    const metadata = buildMetadataDocument(version);
    app.register(
      async (scope) => {
        if (throttle) scope.addHook('preHandler', throttleHook(throttle, context));
        // $metadata is public, as on Graph: it describes types, never data.
        scope.get('/$metadata', async (_request, reply) => reply.type('application/xml').send(metadata));
        methodNotAllowed(scope, '/$metadata', ['GET'], context.clock);
        registerVppTokenRoutes(scope, context, version);
        registerVppTokenCollectionActionRoutes(scope, context, version);
        registerVppTokenRevokeRoutes(scope, context, version);
        registerVppTokenActionRoutes(scope, context, version);
        registerDepOnboardingRoutes(scope, context, version);
        registerMobileAppRoutes(scope, context, version);
        registerBatchRoutes(scope, context, version, { root: app, innerRequests: options.innerRequests });
      },
      { prefix: `/${version}` },
    );
  }
}

const writeMethods = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);

/**
 * Counts every authorized Graph request against the tenant's and the app's limits (after
 * authorization, so the principal is known; `$metadata` and the `$batch` envelope are not counted,
 * a batch's steps are). Over a limit: 429 `TooManyRequests` with `Retry-After` in seconds.
 */
function throttleHook(throttle: GraphThrottle, context: AppContext) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const principal = request.principal;
    if (principal === null) return undefined;
    const decision = throttle.take({
      tenantId: principal.tenantId,
      appId: principal.appId,
      write: writeMethods.has(request.method),
    });
    if (decision.allowed) return undefined;
    context.metrics.observeThrottled({ scope: decision.scope, kind: decision.kind });
    reply.header('retry-after', String(decision.retryAfterSeconds));
    const who = decision.scope === 'tenant' ? 'this tenant' : 'this application in this tenant';
    const what = decision.kind === 'write' ? 'write requests' : 'requests';
    // Returning the reply ends the request here (fastify's rule for async hooks that answer).
    return sendGraphError(
      request,
      reply,
      429,
      'TooManyRequests',
      `Too many ${what} from ${who}. Retry after ${decision.retryAfterSeconds} seconds.`,
      context.clock(),
    );
  };
}
