import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { errors } from '../domain/errors.js';
import { formatGraphDateTime } from '../domain/graph-date-time.js';
import { authorize, principalOf } from '../http/request.js';
import { vppdApiPrefix } from './prefix.js';

/**
 * `GET /vppd/v1/tokens/{id}/notifications`: whether Apple pushes this token's changes to vppd — the
 * registration's status (`notConfigured` without VPPD_PUBLIC_URL, `notRegistered` until the token's
 * first successful sync, then `pending` | `registered` | `failed`), the URL Apple calls and, when
 * Apple refused it, the reason in words with Apple's error number. Never the notification token.
 */
export function registerNotificationStatusRoutes(app: FastifyInstance, context: AppContext): void {
  const { tokens, notifications, authenticator } = context;
  const read = authorize(authenticator, 'read');

  app.get<{ Params: { id: string } }>(
    `${vppdApiPrefix}/tokens/:id/notifications`,
    { onRequest: read },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const id = request.params.id;
      if ((await tokens.get(tenantId, id)) === undefined) throw errors.notFound('vppToken', id);
      const registration = await notifications.store.registrationOf(tenantId, id);
      const configured = notifications.registrar !== undefined;
      return reply.type('application/json').send({
        status: !configured ? 'notConfigured' : (registration?.status ?? 'notRegistered'),
        notificationUrl: registration?.notificationUrl ?? null,
        subscribedNotificationTypes:
          registration?.status === 'registered' ? ['ASSET_MANAGEMENT', 'ASSET_COUNT'] : [],
        failureReason: registration?.failureMessage ?? null,
        appleErrorNumber: registration?.appleErrorNumber ?? null,
        lastChangedDateTime:
          registration === undefined ? null : formatGraphDateTime(new Date(registration.updatedAt)),
      });
    },
  );
}
