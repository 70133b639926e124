import { formatGraphDateTime } from '../domain/graph-date-time.js';
import type { Logger } from '../domain/logger.js';
import type { VppdDatabase } from '../storage/open-database.js';
import { alertHeaders, signAlertBody } from './alert-events.js';
import { type AlertOutboxRow, type AlertsDatabase, alertsDatabaseOf } from './alert-tables.js';
import { webhookRefusedCode } from './webhook-fetch.js';
import type { AlertWebhookWithSecret, WebhookStore } from './webhook-store.js';

/** Retry policy of deliveries. */
export interface DeliveryPolicy {
  /** First retry delay (default 10 s), doubled per attempt... */
  readonly baseDelayMs: number;
  /** ...up to this (default 1 h). */
  readonly maxDelayMs: number;
  /** An alert still undelivered this long after it was queued is given up (default 24 h). */
  readonly maxAgeMs: number;
  /** Per-request timeout (default 10 s): a slow receiver never holds the loop. */
  readonly timeoutMs: number;
  /** Lease of a claimed row (default 60 s, well over the timeout): a dead process's rows come back. */
  readonly leaseMs: number;
  /** Rows claimed per pass (default 20), delivered concurrently. */
  readonly batchSize: number;
}

export const defaultDeliveryPolicy: DeliveryPolicy = {
  baseDelayMs: 10_000,
  maxDelayMs: 3_600_000,
  maxAgeMs: 24 * 3_600_000,
  timeoutMs: 10_000,
  leaseMs: 60_000,
  batchSize: 20,
};

/** What happened to one delivery attempt, for metrics. */
export interface DeliveryAttempt {
  readonly tenantId: string;
  readonly eventType: string;
  readonly result: 'delivered' | 'retry' | 'failed';
  readonly status: number | undefined;
  readonly durationMs: number;
}

export interface AlertDelivererOptions {
  readonly db: VppdDatabase;
  readonly webhooks: WebhookStore;
  readonly clock: () => Date;
  readonly fetch: typeof fetch;
  readonly random: () => number;
  readonly logger: Logger;
  /** This process's name in leases. */
  readonly owner: string;
  readonly policy?: Partial<DeliveryPolicy>;
  readonly onAttempt?: (attempt: DeliveryAttempt) => void;
}

/** Backoff before retry number `attempts` (1-based): doubling from the base, capped, with +-25% jitter. */
export function deliveryDelayMs(attempts: number, policy: DeliveryPolicy, random: () => number): number {
  const raw = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(30, Math.max(0, attempts - 1)));
  return Math.round(raw * (0.75 + random() * 0.5));
}

/** 4xx answers other than these say the request itself is wrong: retrying cannot help. */
const retryable4xx = new Set([408, 409, 425, 429]);

/**
 * Delivers outbox rows: claims due rows with a lease (any process may run it; a dead one's rows come
 * back when the lease ends), POSTs the stored JSON signed with the endpoint's secret, marks 2xx as
 * delivered and anything else for a retry with exponential backoff until the alert's max age. Runs in
 * its own loop with timeouts, so a dead receiver never slows a sync.
 */
export class AlertDeliverer {
  readonly #db: AlertsDatabase;
  readonly #o: AlertDelivererOptions;
  readonly #policy: DeliveryPolicy;

  constructor(options: AlertDelivererOptions) {
    this.#db = alertsDatabaseOf(options.db);
    this.#o = options;
    this.#policy = { ...defaultDeliveryPolicy, ...options.policy };
  }

  /** Claims and delivers one batch of due rows; answers how many were attempted. */
  async deliverDue(signal?: AbortSignal): Promise<number> {
    const claimed = await this.#claim();
    const endpoints = new Map<string, Promise<AlertWebhookWithSecret | undefined>>();
    const endpointOf = (row: AlertOutboxRow) => {
      let found = endpoints.get(row.webhook_id);
      if (found === undefined) {
        found = this.#o.webhooks.withSecret(row.tenant_id, row.webhook_id);
        endpoints.set(row.webhook_id, found);
      }
      return found;
    };
    await Promise.all(claimed.map(async (row) => this.#deliver(row, await endpointOf(row), signal)));
    return claimed.length;
  }

  async #claim(): Promise<AlertOutboxRow[]> {
    const now = this.#o.clock();
    const nowText = now.toISOString();
    const due = await this.#db
      .selectFrom('alert_outbox')
      .selectAll()
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', nowText)
      .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', nowText)]))
      .orderBy('next_attempt_at')
      .orderBy('id')
      .limit(this.#policy.batchSize)
      .execute();
    const leaseUntil = new Date(now.getTime() + this.#policy.leaseMs).toISOString();
    const claimed: AlertOutboxRow[] = [];
    for (const row of due) {
      // Compare-and-set on the lease seen: of two processes, exactly one takes the row.
      let query = this.#db
        .updateTable('alert_outbox')
        .set({ lease_owner: this.#o.owner, lease_expires_at: leaseUntil })
        .where('id', '=', row.id)
        .where('status', '=', 'pending');
      query =
        row.lease_expires_at === null
          ? query.where('lease_expires_at', 'is', null)
          : query.where('lease_expires_at', '=', row.lease_expires_at);
      const taken = await query.executeTakeFirst();
      if (Number(taken.numUpdatedRows) === 1)
        claimed.push({ ...row, lease_owner: this.#o.owner, lease_expires_at: leaseUntil });
    }
    return claimed;
  }

  async #deliver(
    row: AlertOutboxRow,
    endpoint: AlertWebhookWithSecret | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const log = {
      eventId: row.event_id,
      eventType: row.event_type,
      tenantId: row.tenant_id,
      webhookId: row.webhook_id,
    };
    if (endpoint === undefined) return; // deleted meanwhile: its rows went with it (cascade)
    const started = performance.now();
    let status: number | undefined;
    let error: string | undefined;
    const timeout = AbortSignal.timeout(this.#policy.timeoutMs);
    try {
      const response = await this.#o.fetch(endpoint.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'vppd-alerts',
          [alertHeaders.eventId]: row.event_id,
          [alertHeaders.eventType]: row.event_type,
          [alertHeaders.timestamp]: formatGraphDateTime(this.#o.clock()),
          [alertHeaders.signature]: signAlertBody(row.payload, endpoint.secret),
        },
        body: row.payload,
        // A receiver's redirect is not followed: the signed alert goes only where the tenant said.
        redirect: 'manual',
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      status = response.status;
      // Read (and drop) the body so the connection is reused; receivers' answers are not logged.
      await response.arrayBuffer().catch(() => undefined);
    } catch (caught) {
      // The URL (a Slack/Teams URL is itself a credential) is never recorded, only what failed.
      error = timeout.aborted ? `timed out after ${this.#policy.timeoutMs} ms` : describeFetchError(caught);
    }
    const durationMs = performance.now() - started;
    const now = this.#o.clock();
    const nowText = now.toISOString();
    const attempts = row.attempts + 1;
    const mine = (q: ReturnType<typeof this.updateRow>) =>
      q.where('id', '=', row.id).where('lease_owner', '=', this.#o.owner).where('status', '=', 'pending');
    if (status !== undefined && status >= 200 && status < 300) {
      await mine(this.updateRow())
        .set({
          status: 'delivered',
          delivered_at: nowText,
          attempts,
          last_status: status,
          last_error: null,
          lease_owner: null,
          lease_expires_at: null,
        })
        .execute();
      this.#o.logger.info({ ...log, attempts, status }, 'alert delivered');
      this.#o.onAttempt?.({
        tenantId: row.tenant_id,
        eventType: row.event_type,
        result: 'delivered',
        status,
        durationMs,
      });
      return;
    }
    const reason = error ?? `HTTP ${status}`;
    // An address the policy refuses stays refused: no retries against an internal service.
    const permanent =
      error === refusedReason ||
      (status !== undefined && status >= 400 && status < 500 && !retryable4xx.has(status));
    const tooOld = now.getTime() - new Date(row.created_at).getTime() >= this.#policy.maxAgeMs;
    if (permanent || tooOld) {
      await mine(this.updateRow())
        .set({
          status: 'failed',
          attempts,
          last_status: status ?? null,
          last_error: reason,
          lease_owner: null,
          lease_expires_at: null,
        })
        .execute();
      this.#o.logger.error(
        { ...log, attempts, status, reason },
        permanent
          ? 'alert rejected by the receiver; not retried'
          : 'alert given up: undelivered past its max age',
      );
      this.#o.onAttempt?.({
        tenantId: row.tenant_id,
        eventType: row.event_type,
        result: 'failed',
        status,
        durationMs,
      });
      return;
    }
    const next = new Date(now.getTime() + deliveryDelayMs(attempts, this.#policy, this.#o.random));
    await mine(this.updateRow())
      .set({
        attempts,
        next_attempt_at: next.toISOString(),
        last_status: status ?? null,
        last_error: reason,
        lease_owner: null,
        lease_expires_at: null,
      })
      .execute();
    this.#o.logger.warn(
      { ...log, attempts, status, reason, nextAttemptAt: next.toISOString() },
      'alert delivery failed; will retry',
    );
    this.#o.onAttempt?.({
      tenantId: row.tenant_id,
      eventType: row.event_type,
      result: 'retry',
      status,
      durationMs,
    });
  }

  private updateRow() {
    return this.#db.updateTable('alert_outbox');
  }
}

/** The recorded reason of a delivery refused by the address policy (no host or address: the URL stays out). */
const refusedReason = 'refused: the webhook host is not a public address';

function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return 'request failed';
  const cause = (error as { cause?: unknown }).cause;
  const code = typeof cause === 'object' && cause !== null ? (cause as { code?: unknown }).code : undefined;
  if (code === webhookRefusedCode) return refusedReason;
  return typeof code === 'string' ? `request failed (${code})` : `request failed (${error.name})`;
}
