import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { demoTenantId } from '../config.js';
import type { AppContext } from '../context.js';
import { issueAccessToken } from '../http/auth/issue-access-token.js';
import { isLoopbackAddress } from '../http/loopback.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { dashboardStrings } from './dashboard-strings.js';

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

/**
 * The dashboard's page at `/` and its files under `/dashboard/`; the data it shows comes from vppd's own API
 * (`/vppd/v1/dashboard/tokens`, `/vppd/v1/events`). In demo mode `/dashboard/session` hands the page a bearer
 * token for the demo tenant, so the demo opens signed in.
 */
export function registerDashboardRoutes(app: FastifyInstance, context: AppContext): void {
  const { clock, config } = context;
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

  const sessionPath = '/dashboard/session';
  const session = demoSessionOf(config);
  if (session === 'off-not-loopback') {
    context.logger.warn(
      { host: config.host },
      `demo: ${sessionPath} is off: vppd listens on ${config.host}, not on loopback; sign in to the dashboard with the printed bearer token`,
    );
  }
  app.get(sessionPath, async (request, reply) => {
    reply.header('cache-control', 'no-store');
    // Only in demo mode on a loopback listener, only to a loopback client (the Host header alone is
    // the client's word), and only to a page loaded from a loopback name (no DNS rebinding to it).
    if (
      session !== 'on' ||
      !isLoopbackAddress(request.socket.remoteAddress) ||
      !isLoopbackHost(request.headers.host)
    ) {
      return reply.send({ demo: false });
    }
    if (config.auth.kind !== 'hs256') return reply.send({ demo: false });
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

/**
 * Whether the demo's `/dashboard/session` hands out tokens: only in demo mode with HS256, and only
 * when vppd listens on loopback; on any other interface (0.0.0.0 included) it is off.
 */
export function demoSessionOf(
  config: Pick<Config, 'demo' | 'auth' | 'host'>,
): 'on' | 'off' | 'off-not-loopback' {
  if (!config.demo || config.auth.kind !== 'hs256') return 'off';
  return isLoopbackAddress(config.host) || config.host === 'localhost' ? 'on' : 'off-not-loopback';
}

/** True for `localhost`, `127.x.x.x` and `[::1]`, with or without a port. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : (host.split(':')[0] ?? '');
  return name === 'localhost' || name === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(name);
}
