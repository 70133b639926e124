import type { FastifyInstance } from 'fastify';
import type { AlertService } from '../alerts/alert-service.js';
import type { AlertWebhook } from '../alerts/webhook-store.js';
import { errors } from '../domain/errors.js';
import { formatGraphDateTime } from '../domain/graph-date-time.js';
import type { Authenticator } from '../http/auth/authenticator.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { authorize, externalBaseOf, principalOf } from '../http/request.js';
import { vppdApiPrefix } from './prefix.js';

/** vppd's own namespace (not Graph's): alert webhook endpoints of the caller's tenant. */
export const alertWebhooksPath = `${vppdApiPrefix}/alerts/webhooks`;

export interface AlertRoutesContext {
  readonly authenticator: Authenticator;
  readonly alerts: AlertService;
  readonly clock: () => Date;
}

function present(webhook: AlertWebhook): Record<string, unknown> {
  return {
    id: webhook.id,
    url: webhook.url,
    events: webhook.events,
    createdDateTime: formatGraphDateTime(webhook.createdAt),
  };
}

/**
 * `POST` (create; the signing secret is in this response only), `GET` (list, get) and `DELETE` of
 * webhook endpoints. Same bearer auth and permissions as Graph's routes (writes need ReadWrite),
 * tenant-scoped, Graph-style error JSON from the central handler.
 */
export function registerAlertRoutes(app: FastifyInstance, context: AlertRoutesContext): void {
  const { alerts, authenticator } = context;
  const read = authorize(authenticator, 'read');
  const write = authorize(authenticator, 'write');

  app.post(alertWebhooksPath, { onRequest: write }, async (request, reply) => {
    const { tenantId } = principalOf(request);
    const body = request.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw errors.badRequest("The body must be a JSON object with 'url' and optionally 'events'.");
    }
    const { url, events, ...rest } = body as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) throw errors.badRequest(`Unknown property '${unknown[0]}'.`);
    const created = await alerts.webhooks.create(tenantId, { url, events });
    reply.header('location', `${externalBaseOf(request)}${alertWebhooksPath}/${created.webhook.id}`);
    return reply
      .status(201)
      .type('application/json')
      .send({ ...present(created.webhook), secret: created.secret });
  });

  app.get(alertWebhooksPath, { onRequest: read }, async (request, reply) => {
    const { tenantId } = principalOf(request);
    const webhooks = await alerts.webhooks.list(tenantId);
    return reply.type('application/json').send({ value: webhooks.map(present) });
  });

  app.get<{ Params: { id: string } }>(
    `${alertWebhooksPath}/:id`,
    { onRequest: read },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const webhook = await alerts.webhooks.get(tenantId, request.params.id);
      if (!webhook) throw errors.notFound('alert webhook', request.params.id);
      return reply.type('application/json').send(present(webhook));
    },
  );

  app.delete<{ Params: { id: string } }>(
    `${alertWebhooksPath}/:id`,
    { onRequest: write },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const deleted = await alerts.webhooks.delete(tenantId, request.params.id);
      if (!deleted) throw errors.notFound('alert webhook', request.params.id);
      return reply.status(204).send();
    },
  );

  methodNotAllowed(app, alertWebhooksPath, ['GET', 'POST'], context.clock);
  methodNotAllowed(app, `${alertWebhooksPath}/:id`, ['GET', 'DELETE'], context.clock);
}
