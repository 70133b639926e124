import { createHmac, timingSafeEqual } from 'node:crypto';
import { formatGraphDateTime } from '../domain/graph-date-time.js';

/** The alerts vppd sends (issue 6, item 4). */
export const alertEventTypes = [
  'syncFailed',
  'syncRecovered',
  'stateChanged',
  'tokenExpiring',
  'tokenExpired',
  'operationFailed',
  'operationCompleted',
  // License alerts (license-alerts.ts): once per crossing of an app's available licenses.
  'licensesLow',
  'licensesExhausted',
  'licensesAvailable',
] as const;
export type AlertEventType = (typeof alertEventTypes)[number];

/**
 * Sent only to endpoints that list them in `events`: a busy MDM ends many license operations, and
 * license alerts are per app and can be many.
 */
export const optInAlertEventTypes: readonly AlertEventType[] = [
  'operationFailed',
  'operationCompleted',
  'licensesLow',
  'licensesExhausted',
  'licensesAvailable',
];

/** What an endpoint created without `events` receives. */
export const defaultAlertEventTypes: readonly AlertEventType[] = alertEventTypes.filter(
  (type) => !optInAlertEventTypes.includes(type),
);

/** What an ended license operation contributes to its alert. */
export interface EndedOperationFacts {
  readonly id: string;
  readonly tenantId: string;
  readonly tokenId: string;
  readonly kind: string;
  readonly status: string;
  readonly requestedCount: number;
  readonly completedCount: number;
  readonly failedCount: number;
  readonly finishedAt: Date;
  /** Apple's error numbers of the listed failed items (null: Apple never answered for the item). */
  readonly failureErrorNumbers: readonly (number | null)[];
}

/** `operationCompleted` for a completed operation, `operationFailed` for a failed or partially failed one. */
export function operationAlertOf(operation: EndedOperationFacts): AlertEvent {
  const type: AlertEventType = operation.status === 'completed' ? 'operationCompleted' : 'operationFailed';
  const byNumber: Record<string, number> = {};
  for (const n of operation.failureErrorNumbers) {
    const key = n === null ? 'none' : String(n);
    byNumber[key] = (byNumber[key] ?? 0) + 1;
  }
  const numbers = Object.entries(byNumber)
    .map(([n, count]) => `${n} ×${count}`)
    .join(', ');
  const text =
    type === 'operationCompleted'
      ? `License ${operation.kind} ${operation.id} completed: ${operation.completedCount} of ${operation.requestedCount} items.`
      : `License ${operation.kind} ${operation.id} ${operation.status === 'failed' ? 'failed' : 'partially failed'}: ` +
        `${operation.failedCount} of ${operation.requestedCount} items failed${numbers ? ` (Apple errors ${numbers})` : ''}.`;
  return {
    eventId: `${type}:${operation.id}`,
    type,
    tenantId: operation.tenantId,
    tokenId: operation.tokenId,
    occurredAt: operation.finishedAt,
    text,
    data: {
      operationId: operation.id,
      kind: operation.kind,
      status: operation.status,
      requestedCount: operation.requestedCount,
      completedCount: operation.completedCount,
      failedCount: operation.failedCount,
      errorNumbers: byNumber,
    },
  };
}

/** Days before expiry at which `tokenExpiring` fires, once per token, expiry date and threshold. */
export const expiryThresholdDays = [30, 14, 5] as const;

/** One alert, as derived from the database; `eventId` is stable, so deriving it twice changes nothing. */
export interface AlertEvent {
  /** Deterministic id, e.g. `syncFailed:<runId>`, `tokenExpiring:<tokenId>:<expiry>:<days>`. */
  readonly eventId: string;
  readonly type: AlertEventType;
  readonly tenantId: string;
  readonly tokenId: string;
  readonly occurredAt: Date;
  /** One human sentence: what Slack/Teams incoming webhooks show as the message. */
  readonly text: string;
  /** Type-specific details (never a secret). */
  readonly data: Readonly<Record<string, unknown>>;
}

/** The JSON body POSTed to a webhook: `text` first so chat incoming webhooks read it as-is. */
export interface AlertPayload {
  readonly text: string;
  readonly eventId: string;
  readonly type: AlertEventType;
  readonly tenantId: string;
  readonly tokenId: string;
  readonly occurredAt: string;
  readonly data: Readonly<Record<string, unknown>>;
}

/** The wire body of an event. */
export function alertPayloadOf(event: AlertEvent): AlertPayload {
  return {
    text: event.text,
    eventId: event.eventId,
    type: event.type,
    tenantId: event.tenantId,
    tokenId: event.tokenId,
    occurredAt: formatGraphDateTime(event.occurredAt),
    data: event.data,
  };
}

/** Header names of a delivery. */
export const alertHeaders = {
  eventId: 'x-vppd-event-id',
  eventType: 'x-vppd-event-type',
  signature: 'x-vppd-signature',
  timestamp: 'x-vppd-timestamp',
} as const;

/** `sha256=<hex>`: HMAC-SHA256 of the exact body bytes with the endpoint's secret. */
export function signAlertBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/** Checks a received `x-vppd-signature` against the body in constant time (what a receiver does). */
export function verifyAlertSignature(body: string, secret: string, signature: string): boolean {
  const expected = Buffer.from(signAlertBody(body, secret), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/**
 * The tightest threshold (days) the token is inside of, or undefined when it has more than 30 days
 * left or has already expired. Only the tightest fires: a token first seen 3 days before expiry gets
 * one `tokenExpiring` (5), not three.
 */
export function expiryThresholdOf(expiresAt: Date, now: Date): number | undefined {
  const left = expiresAt.getTime() - now.getTime();
  if (left <= 0) return undefined;
  let hit: number | undefined;
  for (const days of expiryThresholdDays) {
    if (left <= days * 86_400_000) hit = days;
  }
  return hit;
}

/** How a token is named in alert sentences: its display name, else organization, else its id. */
export function tokenLabel(token: {
  readonly id: string;
  readonly displayName: string | null;
  readonly organizationName: string | null;
}): string {
  const name = token.displayName ?? token.organizationName;
  return name ? `"${name}" (${token.id})` : token.id;
}
