import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import { demoTenantId } from '../config.js';
import type { AppContext } from '../context.js';
import { issueAccessToken } from '../graph/auth/issue-access-token.js';
import { authorize, principalOf } from '../graph/graph-request.js';
import { methodNotAllowed } from '../graph/method-not-allowed.js';
import { vppdApiPrefix } from '../graph/vppd-sync-progress-routes.js';
import { createChangeStamp } from '../storage/change-stamp.js';
import { createSyncProgressStore } from '../storage/sync-progress-store.js';
import { dashboardStrings } from './dashboard-strings.js';
import { createTokenFeed, type TokenFeedEvent } from './token-feed.js';
import { createTokenSummaryLoader } from './token-summaries.js';

/** The files of the page, beside this module in `public/` (copied next to the compiled module by the build). */
const publicDir = new URL('./public/', import.meta.url);

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

function asset(body: Buffer | string, type: string): Asset {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const etag = `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 22)}"`;
  return { body: bytes, type, etag };
}

function publicAsset(name: string, type: string): Asset {
  return asset(readFileSync(new URL(name, publicDir)), type);
}

/** The page may load only its own files and talk only to this server. */
const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export interface DashboardOptions {
  /** How often the live feed checks the database for commits (ms; default 250). */
  readonly checkEveryMs?: number;
  /** How often the live feed re-reads even without commits (ms; default 30 s). */
  readonly refreshEveryMs?: number;
  /** Comment lines keeping idle event streams open through proxies (ms; default 20 s). */
  readonly heartbeatMs?: number;
}

/**
 * The dashboard: the page at `/` and its files under `/dashboard/`, the token table at
 * `GET /vppd/v1/dashboard/tokens` and its live changes as server-sent events at `GET /vppd/v1/events`
 * (same bearer tokens and tenant scoping as the Graph routes). In demo mode `/dashboard/session` hands
 * the page a bearer token for the demo tenant, so the demo opens signed in.
 */
export function registerDashboardRoutes(
  app: FastifyInstance,
  context: AppContext,
  options: DashboardOptions = {},
): void {
  const { tokens, sync, clock, authenticator, db, logger, config } = context;
  const files = new Map<string, Asset>([
    ['/', publicAsset('index.html', 'text/html; charset=utf-8')],
    ['/dashboard/app.js', publicAsset('app.js', 'text/javascript; charset=utf-8')],
    ['/dashboard/app.css', publicAsset('app.css', 'text/css; charset=utf-8')],
    ['/dashboard/strings.json', asset(JSON.stringify(dashboardStrings()), 'application/json; charset=utf-8')],
  ]);
  for (const [path, file] of files) {
    app.get(path, (request, reply) => sendAsset(request, reply, file));
    methodNotAllowed(app, path, ['GET'], clock);
  }

  const loadSummaries = createTokenSummaryLoader({
    tokens,
    jobs: sync.jobs,
    progress: createSyncProgressStore({ db }),
    clock,
  });
  const feed = createTokenFeed({
    load: loadSummaries,
    changeStamp: createChangeStamp(db),
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
  const streams = new Set<() => void>();
  app.addHook('preClose', (done) => {
    for (const end of streams) end();
    feed.close();
    done();
  });

  const eventsPath = `${vppdApiPrefix}/events`;
  app.get(eventsPath, { onRequest: read }, async (request, reply) => {
    const { tenantId } = principalOf(request);
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
      clearInterval(heartbeat);
      clearTimeout(expiry);
      unsubscribe?.();
      streams.delete(end);
      raw.end();
    };
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

  const sessionPath = '/dashboard/session';
  app.get(sessionPath, async (request, reply) => {
    reply.header('cache-control', 'no-store');
    const demo = config.demo && config.auth.kind === 'hs256';
    // Only in demo mode, and only to a page loaded from a loopback name (no DNS rebinding to it).
    if (!demo || !isLoopbackHost(request.headers.host)) return reply.send({ demo: false });
    const accessToken = await issueAccessToken({
      secret: config.auth.secret,
      tenantId: demoTenantId,
      ttlSeconds: 12 * 3600,
      now: clock(),
    });
    return reply.send({ demo: true, tenantId: demoTenantId, accessToken });
  });
  methodNotAllowed(app, sessionPath, ['GET'], clock);
}

function sendAsset(request: FastifyRequest, reply: FastifyReply, file: Asset) {
  reply
    .header('etag', file.etag)
    .header('cache-control', 'no-cache')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer');
  if (file.type.startsWith('text/html')) {
    reply.header('content-security-policy', contentSecurityPolicy).header('x-frame-options', 'DENY');
  }
  if (request.headers['if-none-match'] === file.etag) return reply.code(304).send();
  return reply.type(file.type).send(file.body);
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

/** True for `localhost`, `127.x.x.x` and `[::1]`, with or without a port. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : (host.split(':')[0] ?? '');
  return name === 'localhost' || name === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(name);
}
