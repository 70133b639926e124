import type { FastifyInstance } from 'fastify';
import {
  type LicenseThreshold,
  type LicenseThresholds,
  parseLicenseThreshold,
} from '../alerts/license-alerts.js';
import type { AppContext } from '../context.js';
import { errors } from '../domain/errors.js';
import { authorize, principalOf } from '../http/request.js';
import { vppdApiPrefix } from './prefix.js';

/** Most per-app thresholds one token may have. */
const maxAppThresholds = 1000;

/**
 * `GET` / `PUT /vppd/v1/tokens/{id}/license-alerts`: when `licensesLow` fires for the token's apps —
 * `{"threshold": {"percent": 10}, "apps": {"<adamId>": {"count": 5}}}` (percent of the total, or a count
 * of available licenses; the token's threshold applies to every app without its own). PUT replaces both;
 * the token's apps are evaluated again at the next alert scan.
 */
export function registerLicenseAlertRoutes(app: FastifyInstance, context: AppContext): void {
  const { tokens, alerts, authenticator } = context;
  const path = `${vppdApiPrefix}/tokens/:id/license-alerts`;

  app.get<{ Params: { id: string } }>(
    path,
    { onRequest: authorize(authenticator, 'read') },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const id = request.params.id;
      if ((await tokens.get(tenantId, id)) === undefined) throw errors.notFound('vppToken', id);
      const thresholds = await alerts.licenses.thresholds(tenantId, id);
      return reply.type('application/json').send({ threshold: thresholds.token, apps: thresholds.apps });
    },
  );

  app.put<{ Params: { id: string } }>(
    path,
    { onRequest: authorize(authenticator, 'write') },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const id = request.params.id;
      if ((await tokens.get(tenantId, id)) === undefined) throw errors.notFound('vppToken', id);
      const thresholds = parseThresholds(request.body);
      await alerts.licenses.setThresholds(tenantId, id, thresholds);
      return reply.type('application/json').send({ threshold: thresholds.token, apps: thresholds.apps });
    },
  );
}

function parseThresholds(body: unknown): LicenseThresholds {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw errors.badRequest(
      'The body must be a JSON object: {"threshold": {...}, "apps": {"<adamId>": {...}}}.',
    );
  }
  const { threshold, apps, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw errors.badRequest(`Unknown property '${unknown[0]}'.`);
  const one = (value: unknown, where: string): LicenseThreshold => {
    const parsed = parseLicenseThreshold(value);
    if (typeof parsed === 'string') throw errors.badRequest(`'${where}': ${parsed}.`);
    return parsed;
  };
  const token = threshold === undefined ? { percent: 10 } : one(threshold, 'threshold');
  const perApp: Record<string, LicenseThreshold> = {};
  if (apps !== undefined) {
    if (typeof apps !== 'object' || apps === null || Array.isArray(apps)) {
      throw errors.badRequest("'apps' must be an object keyed by adamId.");
    }
    const entries = Object.entries(apps as Record<string, unknown>);
    if (entries.length > maxAppThresholds) {
      throw errors.badRequest(`'apps' may hold at most ${maxAppThresholds} thresholds.`);
    }
    for (const [adamId, value] of entries) {
      if (!/^\d{1,20}$/.test(adamId))
        throw errors.badRequest(`'apps': '${adamId.slice(0, 40)}' is not an adamId.`);
      perApp[adamId] = one(value, `apps.${adamId}`);
    }
  }
  return { token, apps: perApp };
}
