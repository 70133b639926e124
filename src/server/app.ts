import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { AppContext } from '../context.js';
import { registerGraphRoutes } from '../graph/graph-routes.js';
import { clientRequestIdOf, handleError, sendGraphError } from '../http/graph-error.js';
import { createSegmentIndex } from '../http/not-found.js';
import { type Readiness, registerHealthRoutes } from '../ops/health.js';
import { registerLogBindings, registerMetricsRoutes } from '../ops/metrics-routes.js';
import { registerVppdApiRoutes } from '../vppd-api/vppd-api-routes.js';
import { registerDashboardRoutes } from '../web/dashboard-routes.js';

export interface BuildAppOptions {
  /** TLS key and certificate: serve HTTPS (the JS Graph client only behaves over HTTPS). */
  readonly https?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  /** Largest accepted request body in bytes (default 256 KiB; a `.vpptoken` is under 1 KiB). */
  readonly bodyLimit?: number;
  /** Readiness flag shared with `/healthz`; default: ready as soon as the app is built. */
  readonly readiness?: Readiness;
}

/** Default request body limit. */
export const defaultBodyLimit = 256 * 1024;

/**
 * Builds the HTTP app on a context: `/healthz`, and Graph's routes under `/beta` and `/v1.0`, with
 * Graph's conventions (request ids, error JSON, 404/405/413/415). Call `listen()` or `inject()` on it.
 */
export function buildApp(context: AppContext, options: BuildAppOptions = {}): FastifyInstance {
  const serverOptions: FastifyServerOptions & { https?: BuildAppOptions['https'] } = {
    loggerInstance: context.logger,
    genReqId: () => context.newId(),
    bodyLimit: options.bodyLimit ?? defaultBodyLimit,
    return503OnClosing: true,
    // `/vppTokens/` is `/vppTokens`, as on Graph.
    routerOptions: { ignoreTrailingSlash: true },
    ...(options.https ? { https: { key: options.https.key, cert: options.https.cert } } : {}),
  };
  const app = Fastify(serverOptions) as unknown as FastifyInstance;
  const readiness = options.readiness ?? { ready: true };

  // Only JSON bodies exist on this API; anything else is a 415 from the central handler.
  app.removeContentTypeParser(['text/plain']);
  app.decorateRequest('principal', null);

  // A callback hook, not an async one: it runs on every request and has nothing to await.
  app.addHook('onRequest', (request, reply, done) => {
    // Sync work in this process holds back while requests are coming in (sync/background-lane.ts).
    context.lane.noteRequest();
    reply.header('request-id', request.id);
    const clientRequestId = clientRequestIdOf(request);
    if (clientRequestId !== undefined) reply.header('client-request-id', clientRequestId);
    done();
  });

  // Every route registered below is recorded, so 404s name the wrong segment of exactly what is served.
  const servedSegments = createSegmentIndex();
  app.addHook('onRoute', (route) => servedSegments.add(route.url));

  app.setErrorHandler((error, request, reply) => handleError(error, request, reply, context.clock()));
  app.setNotFoundHandler((request, reply) => {
    const segment = servedSegments.unknownSegmentOf(request.url);
    const shown = segment.length > 100 ? `${segment.slice(0, 100)}…` : segment;
    return sendGraphError(
      request,
      reply,
      404,
      'ResourceNotFound',
      `Resource not found for the segment '${shown}'.`,
      context.clock(),
    );
  });

  registerHealthRoutes(app, { db: context.db, readiness });
  registerMetricsRoutes(app, {
    metrics: context.metrics,
    token: context.config.metricsToken,
    clock: context.clock,
  });
  registerLogBindings(app);
  registerVppdApiRoutes(app, context);
  registerDashboardRoutes(app, context);

  registerGraphRoutes(app, context);
  return app;
}
