import Fastify, {
  type FastifyInstance,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import type { SecurityConfig } from '../config.js';
import type { AppContext } from '../context.js';
import { registerGraphRoutes } from '../graph/graph-routes.js';
import { createGraphUrlNormaliser } from '../graph/odata/normalise-url.js';
import { createExternalBaseResolver } from '../http/external-base.js';
import { clientRequestIdOf, handleError, sendGraphError } from '../http/graph-error.js';
import { createInnerRequests } from '../http/inner-requests.js';
import { createSegmentIndex } from '../http/not-found.js';
import { registerBodyParsers } from '../http/request-body.js';
import { registerNotificationReceiverRoutes } from '../notifications/notification-receiver-routes.js';
import { type Readiness, registerHealthRoutes } from '../ops/health.js';
import { registerLogBindings, registerMetricsRoutes } from '../ops/metrics-routes.js';
import { registerRequestLog } from '../ops/request-log.js';
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

/** The socket limits of the HTTP server, from the configuration. */
export interface ConnectionLimits {
  readonly requestTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConnections: number;
  /** Options of node's `http(s).createServer`: headers timeout and how often timeouts are checked. */
  readonly nodeServerOptions: {
    readonly headersTimeout: number;
    readonly connectionsCheckingInterval: number;
  };
}

/**
 * Headers get at most 10 s (and never more than the whole request), idle keep-alive connections 5 s;
 * node checks the timeouts every second (its default, 30 s, let an idle socket live ~87 s).
 */
export function connectionLimitsOf(security: SecurityConfig): ConnectionLimits {
  const requestTimeoutMs = security.requestTimeoutMs;
  const headersTimeoutMs = Math.min(10_000, requestTimeoutMs);
  return {
    requestTimeoutMs,
    headersTimeoutMs,
    keepAliveTimeoutMs: Math.min(5_000, requestTimeoutMs),
    maxConnections: security.maxConnections,
    nodeServerOptions: {
      headersTimeout: headersTimeoutMs,
      connectionsCheckingInterval: Math.min(1_000, Math.max(100, Math.floor(headersTimeoutMs / 4))),
    },
  };
}

/** The request field that holds its external base once worked out (see `externalBase` below). */
const externalBaseMemo = 'vppdExternalBase';

/** Default request body limit. */
export const defaultBodyLimit = 256 * 1024;

/**
 * Builds the HTTP app on a context: `/healthz`, and Graph's routes under `/beta` and `/v1.0`, with
 * Graph's conventions (request ids, error JSON, 404/405/413/415). Call `listen()` or `inject()` on it.
 */
export function buildApp(context: AppContext, options: BuildAppOptions = {}): FastifyInstance {
  // Graph's spellings of a path (any case, `microsoft.graph.` on operations, `vppTokens('{id}')`) are
  // rewritten to the one each route is registered under, from the routes themselves (onRoute below).
  const graphUrls = createGraphUrlNormaliser();
  const limits = connectionLimitsOf(context.config.security);
  const quiet = !context.logger.isLevelEnabled('fatal');
  const serverOptions: FastifyServerOptions & {
    https?: Record<string, unknown>;
    http?: Record<string, unknown>;
  } = {
    rewriteUrl: (request) => graphUrls.normalise(request.url ?? '/'),
    // Each request's logger is a child carrying its id, built (bindings serialized through the
    // redaction paths) before any hook runs. A logger that writes nothing (`VPPD_LOG_LEVEL=silent`)
    // is not handed to fastify at all: requests then get fastify's no-op logger and no child.
    ...(quiet ? {} : { loggerInstance: context.logger }),
    // Slow clients (issue 17): a request must arrive whole within the request timeout, its headers
    // sooner; an idle keep-alive connection closes after a few seconds.
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: limits.nodeServerOptions,
    genReqId: () => context.newId(),
    bodyLimit: options.bodyLimit ?? defaultBodyLimit,
    return503OnClosing: true,
    // Per-request lines at debug and a per-route summary at info (ops/request-log.ts).
    logController: new LogController({ disableRequestLogging: true }),
    // `/vppTokens/` is `/vppTokens`, as on Graph.
    routerOptions: { ignoreTrailingSlash: true },
    ...(options.https
      ? { https: { key: options.https.key, cert: options.https.cert, ...limits.nodeServerOptions } }
      : {}),
  };
  const app = Fastify(serverOptions as FastifyServerOptions) as unknown as FastifyInstance;
  // Past this many open connections node closes new ones at once: the process keeps descriptors for
  // its database, its outgoing requests and its health checks (sized for a 1,024 file limit).
  app.server.maxConnections = limits.maxConnections;
  const readiness = options.readiness ?? { ready: true };

  // Only JSON bodies exist on this API; another content type with a body is a 415 from the central
  // handler, and an empty body is no parameters whatever type it declares (as on Graph).
  registerBodyParsers(app);
  app.decorateRequest('principal', null);
  // Links start with the external base: pinned, from a trusted proxy's headers, or the socket's own.
  // A $batch step inherits its outer request's base (never its own forwarded headers).
  const innerRequests = createInnerRequests();
  const resolveExternalBase = createExternalBaseResolver(context.config.externalUrl);
  // Worked out once per request, however many links the answer holds: kept on the request itself (a
  // field every request object is built with), not in a WeakMap entry per request.
  app.decorateRequest(externalBaseMemo, null);
  app.decorateRequest('externalBase', {
    getter(this: FastifyRequest) {
      const memo = this as unknown as Record<typeof externalBaseMemo, string | null>;
      let base = memo[externalBaseMemo];
      if (base === null) {
        base = innerRequests.lookup(this.headers)?.externalBase ?? resolveExternalBase(this);
        memo[externalBaseMemo] = base;
      }
      return base;
    },
  });

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
  app.addHook('onRoute', (route) => {
    servedSegments.add(route.url);
    graphUrls.add(route.url);
  });

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

  registerHealthRoutes(app, {
    db: context.db,
    readiness,
    syncThreadFailing: () => context.sync.worker?.health?.().failing === true,
  });
  registerMetricsRoutes(app, {
    metrics: context.metrics,
    token: context.config.metricsToken,
    clock: context.clock,
  });
  registerLogBindings(app, context.logger);
  registerRequestLog(app, context.logger);
  registerVppdApiRoutes(app, context);
  registerNotificationReceiverRoutes(app, {
    store: context.notifications.store,
    cipher: context.notifications.cipher,
    clock: context.clock,
    logger: context.logger.child({ component: 'apple-notifications' }),
    onStored: () => context.notifications.wake(),
  });
  registerDashboardRoutes(app, context);

  registerGraphRoutes(app, context, { innerRequests });
  return app;
}
