import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { graphVersions } from '../domain/graph-enum.js';
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
  for (const version of graphVersions) {
    const metadata = buildMetadataDocument(version);
    app.register(
      async (scope) => {
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
