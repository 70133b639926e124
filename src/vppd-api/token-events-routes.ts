import type { FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import type { AppContext } from '../context.js';
import { sendGraphError } from '../http/graph-error.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { authorize, principalOf } from '../http/request.js';
import { createTenantChangeStamp } from '../storage/change-stamp.js';
import { createSyncProgressStore } from '../storage/sync-progress-store.js';
import { vppdApiPrefix } from './prefix.js';
import { createTokenFeed, type TokenFeedEvent } from './token-feed.js';
import { createTokenSummaryLoader } from './token-summaries.js';

export interface TokenEventOptions {
  /** How often the live feed checks the database for commits (ms; default 250). */
  readonly checkEveryMs?: number;
  /** How often the live feed re-reads even without commits (ms; default 30 s). */
  readonly refreshEveryMs?: number;
  /** Comment lines keeping idle event streams open through proxies (ms; default 20 s). */
  readonly heartbeatMs?: number;
}

/**
 * The token table the dashboard draws, `GET /vppd/v1/dashboard/tokens`, and its live changes as
 * server-sent events at `GET /vppd/v1/events` (same bearer tokens and tenant scoping as the Graph routes).
 */
export function registerTokenEventRoutes(
  app: FastifyInstance,
  context: AppContext,
  options: TokenEventOptions = {},
): void {
  const { tokens, sync, clock, authenticator, logger } = context;
  const loadSummaries = createTokenSummaryLoader({
    tokens,
    jobs: sync.jobs,
    progress: createSyncProgressStore({ storage: context.storage }),
    clock,
  });
  const feed = createTokenFeed({
    load: loadSummaries,
    changeStamp: createTenantChangeStamp(context.storage),
    notifier: context.storage.notifier,
    checkEveryMs: options.checkEveryMs ?? 250,
    refreshEveryMs: options.refreshEveryMs ?? 30_000,
    logger: logger.child({ component: 'dashboard-feed' }),
  });
  const read = authorize(authenticator, 'read');

  const tablePath = `${vppdApiPrefix}/dashboard/tokens`;
  app.get(tablePath, { onRequest: read }, async (request, reply) => {
    const { tenantId } = principalOf(request);
    return reply.type('application/json').send({ value: await loadSummaries(tenantId) });
  });
  methodNotAllowed(app, tablePath, ['GET'], clock);

  // Open event streams end when the server closes, or it would wait for them forever.
  // A stream whose request was still being authorized when closing began would open after the ends below
  // and hold the server open: `closing` ends it at once.
  const streams = new Set<() => void>();
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    for (const end of streams) end();
    feed.close();
    done();
  });

  // Each stream holds a socket and a feed subscription: a tenant gets a bounded number of them.
  const maxPerTenant = context.config.security.maxStreamsPerTenant;
  const openPerTenant = new Map<string, number>();
  const eventsPath = `${vppdApiPrefix}/events`;
  app.get(eventsPath, { onRequest: read }, async (request, reply) => {
    const { tenantId } = principalOf(request);
    const open = openPerTenant.get(tenantId) ?? 0;
    if (open >= maxPerTenant) {
      reply.header('retry-after', '30');
      return sendGraphError(
        request,
        reply,
        429,
        'TooManyRequests',
        `Too many open event streams: a tenant may have at most ${maxPerTenant} (VPPD_MAX_STREAMS_PER_TENANT); close one and retry.`,
        clock(),
      );
    }
    openPerTenant.set(tenantId, open + 1);
    const raw = reply.raw;
    const send = (event: TokenFeedEvent) => {
      raw.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
    };
    reply.hijack();
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'request-id': request.id,
    });
    // How long a browser waits before reconnecting after the stream broke.
    raw.write('retry: 2000\n\n');
    let ended = false;
    let unsubscribe: (() => void) | undefined;
    const heartbeat = setInterval(() => raw.write(': keep-alive\n\n'), options.heartbeatMs ?? 20_000);
    heartbeat.unref();
    // The stream lives no longer than the bearer token that opened it: from its `exp` on, the token is
    // checked again (the authenticator's own rules, clock tolerance included) until it fails, and the
    // stream ends then; the browser reconnects and gets its 401.
    const authorization = request.headers.authorization;
    const recheck = () => {
      authenticator.authenticate(authorization).then(
        () => {
          if (!ended) expiry = setTimeout(recheck, 5_000).unref();
        },
        () => end(),
      );
    };
    let expiry = setTimeout(recheck, msUntilExpiry(authorization, clock())).unref();
    const end = () => {
      if (ended) return;
      ended = true;
      const left = (openPerTenant.get(tenantId) ?? 1) - 1;
      if (left > 0) openPerTenant.set(tenantId, left);
      else openPerTenant.delete(tenantId);
      clearInterval(heartbeat);
      clearTimeout(expiry);
      unsubscribe?.();
      streams.delete(end);
      raw.end();
    };
    if (closing) {
      end();
      return;
    }
    streams.add(end);
    request.raw.on('close', end);
    try {
      const stop = await feed.subscribe(tenantId, send);
      if (ended) stop();
      else unsubscribe = stop;
    } catch (error) {
      request.log.warn({ err: error }, 'dashboard event stream could not start');
      end();
    }
  });
  methodNotAllowed(app, eventsPath, ['GET'], clock);
}

/** Milliseconds until the bearer token's `exp` (already verified), at most a day; a day when it has none. */
export function msUntilExpiry(authorization: string | undefined, now: Date): number {
  const day = 86_400_000;
  const jwt = authorization?.replace(/^Bearer\s+/i, '') ?? '';
  try {
    const { exp } = decodeJwt(jwt);
    return exp === undefined ? day : Math.max(0, Math.min(day, exp * 1000 - now.getTime()));
  } catch {
    return 0;
  }
}
