import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { errorCodes, errors, VppdError } from '../domain/errors.js';
import type { Logger } from '../domain/logger.js';
import type {
  AppleNotificationStore,
  NotificationRegistration,
} from '../storage/apple-notification-store.js';
import type { TokenCipher } from '../storage/token-cipher.js';
import { appleNotificationsPath } from './notification-registrar.js';

export interface NotificationReceiverOptions {
  readonly store: AppleNotificationStore;
  readonly cipher: TokenCipher;
  readonly clock: () => Date;
  readonly logger: Logger;
  /** Called after a new notification was stored and acknowledged (the processor drains it). */
  readonly onStored: () => void;
}

const registrationKey = Symbol('appleNotificationRegistration');
type WithRegistration = FastifyRequest & { [registrationKey]?: NotificationRegistration };

/** A fingerprint-sized value compared when the URL names no registration, so both paths cost the same. */
const decoyHash = '0'.repeat(64);

/**
 * `POST /apple/notifications/{registrationId}`: where Apple delivers a location's notifications. Its
 * own prefix, outside Graph and `/vppd/v1`: Apple authenticates with the registration's bearer token,
 * not a tenant's JWT, and an operator can expose just this prefix to the internet.
 *
 * The bearer token is checked (keyed hash, constant-time) before the body is read; the notification is
 * stored, then acknowledged with 204 and applied in the background. A notificationId already stored
 * for the token is acknowledged again and changes nothing.
 */
export function registerNotificationReceiverRoutes(
  app: FastifyInstance,
  options: NotificationReceiverOptions,
): void {
  const { store, cipher, clock, logger } = options;

  const authenticate = async (request: FastifyRequest) => {
    const { registrationId } = request.params as { registrationId: string };
    const header = request.headers.authorization;
    const bearer =
      typeof header === 'string' && /^Bearer [^\s]+$/i.test(header) ? header.slice(7) : undefined;
    const registration =
      registrationId.length <= 64 ? await store.findRegistration(registrationId) : undefined;
    const presented = Buffer.from(bearer === undefined ? decoyHash : cipher.fingerprint(bearer), 'utf8');
    const expected = Buffer.from(registration?.authTokenHash ?? decoyHash, 'utf8');
    const matches =
      presented.length === expected.length && timingSafeEqual(presented, expected) && bearer !== undefined;
    if (registration === undefined || !matches) {
      logger.warn(
        {
          registrationId: registrationId.slice(0, 64),
          remoteAddress: request.ip,
          reason:
            bearer === undefined
              ? 'no bearer token'
              : registration === undefined
                ? 'unknown registration'
                : 'wrong notification token',
        },
        'Apple notification refused',
      );
      throw new VppdError(errorCodes.unauthenticated, 'The notification token is not valid for this URL.');
    }
    (request as WithRegistration)[registrationKey] = registration;
  };

  app.post(
    `${appleNotificationsPath}/:registrationId`,
    { onRequest: authenticate },
    async (request, reply) => {
      const registration = (request as WithRegistration)[registrationKey]!;
      const envelope = parseEnvelope(request.body);
      if (envelope.uId !== undefined && envelope.uId !== registration.locationUid) {
        throw errors.badRequest("The notification's uId is not the location registered at this URL.");
      }
      const stored = await store.recordNotification(registration, envelope, clock());
      logger.debug(
        {
          tenantId: registration.tenantId,
          tokenId: registration.tokenId,
          notificationId: envelope.notificationId,
          notificationType: envelope.notificationType,
          stored,
        },
        'Apple notification received',
      );
      if (stored === 'stored') options.onStored();
      return reply.status(204).send();
    },
  );
}

/** Apple's envelope `{notificationId, notificationType, uId, notification}`, checked. */
function parseEnvelope(body: unknown): {
  notificationId: string;
  notificationType: string;
  uId: string | undefined;
  payload: unknown;
} {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw errors.badRequest(
      'The body must be a JSON object: {notificationId, notificationType, uId, notification}.',
    );
  }
  const o = body as Record<string, unknown>;
  const { notificationId, notificationType, uId, notification } = o;
  if (typeof notificationId !== 'string' || notificationId.length === 0 || notificationId.length > 128) {
    throw errors.badRequest("'notificationId' must be a string of 1 to 128 characters.");
  }
  if (typeof notificationType !== 'string' || !/^[A-Z_]{1,64}$/.test(notificationType)) {
    throw errors.badRequest("'notificationType' must be one of Apple's notification types.");
  }
  if (uId !== undefined && typeof uId !== 'string') throw errors.badRequest("'uId' must be a string.");
  if (notification !== undefined && (typeof notification !== 'object' || Array.isArray(notification))) {
    throw errors.badRequest("'notification' must be a JSON object.");
  }
  return { notificationId, notificationType, uId, payload: notification ?? {} };
}
