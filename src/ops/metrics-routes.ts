import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { sendGraphError } from '../http/graph-error.js';
import { isLoopbackAddress } from '../http/loopback.js';
import type { VppdMetrics } from './metrics.js';

export interface MetricsRouteOptions {
  readonly metrics: VppdMetrics;
  /** `VPPD_METRICS_TOKEN`: when set, scrapes must send it as a bearer token. */
  readonly token: string | undefined;
  readonly clock: () => Date;
}

/**
 * `GET /metrics` (Prometheus text) and the HTTP request metrics of every route. Access: with
 * `VPPD_METRICS_TOKEN` set, `Authorization: Bearer <token>` from anywhere; without it, loopback
 * clients only (vppd listens on 127.0.0.1 by default; a Prometheus elsewhere needs the token).
 * The metrics name tenants and tokens by id only: never an sToken, JWT or webhook secret.
 */
export function registerMetricsRoutes(app: FastifyInstance, options: MetricsRouteOptions): void {
  const { metrics } = options;
  const expected = options.token === undefined ? undefined : Buffer.from(`Bearer ${options.token}`, 'utf8');

  // Callback-style hooks: they run on every request, and an async hook costs a promise each time.
  app.addHook('onResponse', (request, reply, done) => {
    // Route patterns, not raw URLs, keep label cardinality bounded (ids stay out of labels).
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.observeHttpRequest(
      { method: request.method, route, status: reply.statusCode },
      reply.elapsedTime / 1000,
    );
    done();
  });

  app.get('/metrics', async (request, reply) => {
    reply.header('cache-control', 'no-store');
    if (!allowed(request, expected)) {
      if (expected !== undefined) reply.header('www-authenticate', 'Bearer');
      return expected === undefined
        ? sendGraphError(
            request,
            reply,
            403,
            'Forbidden',
            'Metrics are served to loopback clients only; set VPPD_METRICS_TOKEN to scrape from elsewhere.',
            options.clock(),
          )
        : sendGraphError(
            request,
            reply,
            401,
            'InvalidAuthenticationToken',
            'A valid metrics bearer token is required.',
            options.clock(),
          );
    }
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
}

function allowed(request: FastifyRequest, expected: Buffer | undefined): boolean {
  if (expected === undefined) {
    return isLoopbackAddress(request.socket.remoteAddress);
  }
  const given = Buffer.from(request.headers.authorization ?? '', 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Log bindings for a request once it is authorized: the tenant and, on a token's routes, the token
 * id, next to Fastify's own `reqId`. Ids only: credentials never enter the bindings.
 */
export function registerLogBindings(app: FastifyInstance, logger: Logger): void {
  // A logger that writes nothing at any level (logging off) needs no bindings, nor a hook per request.
  if (!logger.isLevelEnabled('fatal')) return;
  app.addHook('preHandler', (request, _reply, done) => {
    const principal = request.principal;
    // pino turns bindings into JSON (through the redaction paths) as soon as they are set, ~2 µs a
    // request: a logger that writes nothing at any level (logging off) needs none.
    const log = request.log as Logger;
    if (principal && log.isLevelEnabled('fatal')) {
      const route = request.routeOptions.url ?? '';
      const params = request.params as Record<string, unknown> | undefined;
      const tokenId =
        route.includes('/vppTokens/:id') && typeof params?.id === 'string' ? params.id : undefined;
      // The request's logger is already a per-request child (reply.log is the same one, which writes
      // Fastify's "request completed" line): add the bindings to it instead of creating another child.
      log.setBindings({ tenantId: principal.tenantId, ...(tokenId ? { tokenId } : {}) });
    }
    done();
  });
}
