import type { Transaction } from 'kysely';
import { vppTokenActionFailureReason, vppTokenState } from '../domain/enums.js';
import type { DatabaseSchema, SyncRunOutcomeColumn } from '../storage/database-schema.js';
import { eventFromRow } from '../storage/event-store.js';
import type { VppdDatabase } from '../storage/open-database.js';
import {
  type AlertEvent,
  type AlertEventType,
  alertPayloadOf,
  expiryThresholdOf,
  tokenLabel,
} from './alert-events.js';
import { type AlertsDatabase, type AlertTables, alertsDatabaseOf } from './alert-tables.js';
import { EventHoles } from './event-holes.js';

/** A finished sync run, reported once across all processes when the scanner turns it into events. */
export interface ScannedRun {
  readonly runId: string;
  readonly tenantId: string;
  readonly tokenId: string;
  readonly outcome: SyncRunOutcomeColumn;
  readonly durationMs: number;
}

export interface AlertScannerOptions {
  readonly db: VppdDatabase;
  readonly clock: () => Date;
  readonly newId: () => string;
  /** Called after the commit that recorded a run as scanned (exactly once per run across processes). */
  readonly onRunScanned?: (run: ScannedRun) => void;
  /** Events read per batch (default 500); each batch is one transaction. */
  readonly batchSize?: number;
  /**
   * How long a hole in the event sequence is waited for before it is taken as never coming (ms;
   * default 30 s). A hole is an append still in flight (its `seq` taken, its commit not yet seen:
   * PostgreSQL hands out `seq` before commit) or one rolled back (its `seq` is never used).
   */
  readonly gapGraceMs?: number;
}

/** What one scan did. */
export interface ScanResult {
  readonly runs: number;
  /** Outbox rows created (one per event and subscribed endpoint). */
  readonly queued: number;
}

/** The settings key of the time alerting started: history before it never alerts. */
export const alertsSinceKey = 'alerts_since';

/** The scanner's row in `event_cursors`: every event up to its `seq` has been turned into alerts. */
export const alertCursorName = 'alerts';

/** Batches read per scan at most; the next scan continues. */
const maxBatchesPerScan = 20;

/** Event types that end a sync run (payload `runId`). */
const runEndingEvents: ReadonlySet<string> = new Set(['syncCompleted', 'syncFailed', 'syncInterrupted']);

type Trx = Transaction<DatabaseSchema & AlertTables>;

/**
 * Derives alerts from the database and queues them in the outbox: `syncFailed` / `syncRecovered`
 * from the event log (storage/event-store.ts), read after a durable cursor, `stateChanged` from token
 * state vs. the state last alerted, `tokenExpiring` (30/14/5 days) and `tokenExpired` from expiry
 * dates. Event ids are deterministic and the outbox is unique per (endpoint, event), so scanning
 * twice, or in two processes, queues nothing twice; the cursor moves in the transaction that queues
 * the alerts (compare-and-swap on its old value), so each event is handled exactly once across
 * processes and a crash loses none.
 */
export class AlertScanner {
  readonly #db: AlertsDatabase;
  readonly #o: AlertScannerOptions;
  readonly #holes: EventHoles;

  constructor(options: AlertScannerOptions) {
    this.#db = alertsDatabaseOf(options.db);
    this.#o = options;
    this.#holes = new EventHoles(options.gapGraceMs ?? 30_000);
  }

  /** One pass over runs, token states and expiry dates. */
  async scanOnce(): Promise<ScanResult> {
    const now = this.#o.clock();
    const runs = await this.#scanRuns(now);
    const states = await this.#scanStates(now);
    const expiry = await this.#scanExpiry(now);
    return { runs: runs.runs, queued: runs.queued + states + expiry };
  }

  /**
   * Deletes what is no longer needed: delivered or failed sync/state alerts after `retentionMs`
   * (default 90 days), and scanned-run marks older than a week (the newest mark keeps the watermark).
   * Token expiry alerts are kept while their token exists: their rows are what makes them once-only.
   */
  async prune(retentionMs = 90 * 86_400_000): Promise<number> {
    const now = this.#o.clock().getTime();
    const before = new Date(now - retentionMs).toISOString();
    const outbox = await this.#db
      .deleteFrom('alert_outbox')
      .where('status', 'in', ['delivered', 'failed'])
      .where('event_type', 'in', ['syncFailed', 'syncRecovered', 'stateChanged'])
      .where('created_at', '<', before)
      .executeTakeFirst();
    // Marks of the scanner that re-read sync_runs (before the event log); nothing writes them now.
    const weekAgo = new Date(now - 7 * 86_400_000).toISOString();
    const marks = await this.#db
      .deleteFrom('alert_scanned_runs')
      .where('finished_at', '<', weekAgo)
      .executeTakeFirst();
    return Number(outbox.numDeletedRows) + Number(marks.numDeletedRows);
  }

  async #alertsSince(now: Date): Promise<string> {
    await this.#db
      .insertInto('vppd_settings')
      .values({ key: alertsSinceKey, value: now.toISOString() })
      .onConflict((oc) => oc.column('key').doNothing())
      .execute();
    const row = await this.#db
      .selectFrom('vppd_settings')
      .select('value')
      .where('key', '=', alertsSinceKey)
      .executeTakeFirstOrThrow();
    return row.value;
  }

  /**
   * The cursor's position; created at 0 on the first pass. The event log starts empty when migration
   * 0008 creates it, so what happened before it existed never alerts, and everything after does,
   * whenever the first scan runs.
   */
  async #cursor(now: Date): Promise<number> {
    await this.#db
      .insertInto('event_cursors')
      .values({ name: alertCursorName, seq: 0, updated_at: now.toISOString() })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    const row = await this.#db
      .selectFrom('event_cursors')
      .select('seq')
      .where('name', '=', alertCursorName)
      .executeTakeFirstOrThrow();
    return Number(row.seq);
  }

  async #scanRuns(now: Date): Promise<ScanResult> {
    await this.#alertsSince(now);
    let runs = 0;
    let queued = 0;
    const batchSize = Math.max(1, this.#o.batchSize ?? 500);
    for (let batch = 0; batch < maxBatchesPerScan; batch++) {
      const cursor = await this.#cursor(now);
      const rows = await this.#db
        .selectFrom('events')
        .selectAll()
        .where('seq', '>', cursor)
        .orderBy('seq')
        .limit(batchSize)
        .execute();
      const events = this.#holes.handleable(cursor, rows.map(eventFromRow), now);
      const last = events.at(-1);
      if (last === undefined) break;
      const result = await this.#db.transaction().execute(async (trx) => {
        // Compare-and-swap: another process that handled these events first moved the cursor already.
        const moved = await trx
          .updateTable('event_cursors')
          .set({ seq: last.seq, updated_at: now.toISOString() })
          .where('name', '=', alertCursorName)
          .where('seq', '=', cursor)
          .executeTakeFirst();
        if (Number(moved.numUpdatedRows) !== 1) return undefined;
        let created = 0;
        const scanned: ScannedRun[] = [];
        for (const event of events) {
          if (!runEndingEvents.has(event.type)) continue;
          const runId = event.payload.runId;
          if (typeof runId !== 'string') continue;
          const handled = await this.#handleRunEnd(trx, now, runId);
          if (handled === undefined) continue;
          created += handled.queued;
          scanned.push(handled.run);
        }
        return { created, scanned };
      });
      if (result === undefined) continue;
      queued += result.created;
      runs += result.scanned.length;
      for (const run of result.scanned) this.#o.onRunScanned?.(run);
      if (rows.length < batchSize || events.length < rows.length) break;
    }
    return { runs, queued };
  }

  /** The alerts of a finished run (syncFailed, syncRecovered); undefined when the run or token is gone. */
  async #handleRunEnd(
    trx: Trx,
    now: Date,
    runId: string,
  ): Promise<{ readonly queued: number; readonly run: ScannedRun } | undefined> {
    const run = await trx
      .selectFrom('sync_runs as r')
      .innerJoin('vpp_tokens as t', (j) =>
        j.onRef('t.id', '=', 'r.token_id').onRef('t.tenant_id', '=', 'r.tenant_id'),
      )
      .select([
        'r.id',
        'r.tenant_id',
        'r.token_id',
        'r.outcome',
        'r.started_at',
        'r.finished_at',
        'r.failure_kind',
        'r.failure_reason',
        'r.error_message',
        'r.apple_error_number',
        'r.http_status',
        'r.asset_count',
        'r.assignment_count',
        't.display_name',
        't.organization_name',
      ])
      .where('r.id', '=', runId)
      .where('r.outcome', 'in', ['completed', 'failed', 'interrupted'])
      .executeTakeFirst();
    if (run === undefined || run.finished_at === null) return undefined;
    const finishedAt = run.finished_at;
    const scanned: ScannedRun = {
      runId: run.id,
      tenantId: run.tenant_id,
      tokenId: run.token_id,
      outcome: run.outcome,
      durationMs: Math.max(0, new Date(finishedAt).getTime() - new Date(run.started_at).getTime()),
    };
    const label = tokenLabel({
      id: run.token_id,
      displayName: run.display_name,
      organizationName: run.organization_name,
    });
    const base = { tenantId: run.tenant_id, tokenId: run.token_id, occurredAt: new Date(finishedAt) };
    if (run.outcome === 'failed') {
      const reason = run.failure_kind ?? 'internal';
      const graphReason =
        run.failure_reason === null ? null : vppTokenActionFailureReason.fromValue(run.failure_reason);
      const apple = run.apple_error_number === null ? '' : ` (Apple error ${run.apple_error_number})`;
      const queued = await enqueue(trx, now, this.#o.newId, {
        ...base,
        eventId: `syncFailed:${run.id}`,
        type: 'syncFailed',
        text: `VPP token ${label} failed to sync: ${run.error_message ?? reason}${apple}.`,
        data: {
          runId: run.id,
          reason,
          failureReason: graphReason,
          message: run.error_message,
          appleErrorNumber: run.apple_error_number,
          httpStatus: run.http_status,
          startedAt: run.started_at,
          finishedAt,
        },
      });
      return { queued, run: scanned };
    }
    if (run.outcome === 'completed') {
      const previous = await trx
        .selectFrom('sync_runs')
        .select(['id', 'outcome'])
        .where('token_id', '=', run.token_id)
        .where('id', '!=', run.id)
        .where('outcome', 'in', ['completed', 'failed'])
        .where('finished_at', '<=', finishedAt)
        .orderBy('finished_at', 'desc')
        .orderBy('id', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (previous?.outcome === 'failed') {
        const queued = await enqueue(trx, now, this.#o.newId, {
          ...base,
          eventId: `syncRecovered:${run.id}`,
          type: 'syncRecovered',
          text: `VPP token ${label} synced successfully again after a failed sync.`,
          data: {
            runId: run.id,
            failedRunId: previous.id,
            assets: run.asset_count,
            assignments: run.assignment_count,
            finishedAt,
          },
        });
        return { queued, run: scanned };
      }
    }
    // Interrupted runs are retried by the worker; they alert only through the state they leave.
    return { queued: 0, run: scanned };
  }

  async #scanStates(now: Date): Promise<number> {
    const nowText = now.toISOString();
    const tokens = await this.#db
      .selectFrom('vpp_tokens as t')
      .leftJoin('alert_token_states as a', 'a.token_id', 't.id')
      .select([
        't.id',
        't.tenant_id',
        't.state',
        't.expiration_date_time',
        't.display_name',
        't.organization_name',
        'a.state as alerted_state',
        'a.seq',
      ])
      .where((eb) => eb.or([eb('a.state', 'is', null), eb('a.state', '!=', eb.ref('t.state'))]))
      .execute();
    let queued = 0;
    for (const token of tokens) {
      // The stored state is the truth: an expiry that passed is stored by the scheduler as `expired`.
      const state = vppTokenState.fromValue(token.state);
      const value = token.state;
      if (token.alerted_state === value) continue;
      queued += await this.#db.transaction().execute(async (trx) => {
        if (token.alerted_state === null) {
          // First sight of the token: remember its state; a brand-new token is not news.
          await trx
            .insertInto('alert_token_states')
            .values({
              token_id: token.id,
              tenant_id: token.tenant_id,
              state: value,
              seq: 0,
              updated_at: nowText,
            })
            .onConflict((oc) => oc.column('token_id').doNothing())
            .execute();
          return 0;
        }
        const seq = (token.seq ?? 0) + 1;
        const moved = await trx
          .updateTable('alert_token_states')
          .set({ state: value, seq, updated_at: nowText })
          .where('token_id', '=', token.id)
          .where('state', '=', token.alerted_state)
          .where('seq', '=', token.seq ?? 0)
          .executeTakeFirst();
        if (Number(moved.numUpdatedRows) !== 1) return 0;
        const from = vppTokenState.fromValue(token.alerted_state);
        // The first successful sync of a new token (unknown -> valid) is the expected path, not an alert.
        if (from === 'unknown' && state === 'valid') return 0;
        const label = tokenLabel({
          id: token.id,
          displayName: token.display_name,
          organizationName: token.organization_name,
        });
        return enqueue(trx, now, this.#o.newId, {
          eventId: `stateChanged:${token.id}:${seq}`,
          type: 'stateChanged',
          tenantId: token.tenant_id,
          tokenId: token.id,
          occurredAt: now,
          text: `VPP token ${label} changed state from ${from} to ${state}.`,
          data: { from, to: state },
        });
      });
    }
    return queued;
  }

  async #scanExpiry(now: Date): Promise<number> {
    const horizon = new Date(now.getTime() + 30 * 86_400_000).toISOString();
    // Only tenants with an endpoint for these events are worth a transaction per token.
    const endpoints = await this.#db.selectFrom('alert_webhooks').select(['tenant_id', 'events']).execute();
    const tenants = [
      ...new Set(
        endpoints
          .filter((e) => {
            const events = JSON.parse(e.events) as AlertEventType[];
            return events.includes('tokenExpiring') || events.includes('tokenExpired');
          })
          .map((e) => e.tenant_id),
      ),
    ];
    if (tenants.length === 0) return 0;
    const tokens = await this.#db
      .selectFrom('vpp_tokens')
      .select(['id', 'tenant_id', 'expiration_date_time', 'display_name', 'organization_name'])
      .where('expiration_date_time', '<=', horizon)
      .where('tenant_id', 'in', tenants)
      .execute();
    let queued = 0;
    for (const token of tokens) {
      const expiresAt = new Date(token.expiration_date_time);
      const expiry = expiresAt.toISOString();
      const label = tokenLabel({
        id: token.id,
        displayName: token.display_name,
        organizationName: token.organization_name,
      });
      const base = { tenantId: token.tenant_id, tokenId: token.id, occurredAt: now };
      const day = expiry.slice(0, 10);
      let event: AlertEvent;
      if (expiresAt.getTime() <= now.getTime()) {
        // The expiry date is part of the id: a renewed token that expires again alerts again.
        event = {
          ...base,
          eventId: `tokenExpired:${token.id}:${expiry}`,
          type: 'tokenExpired',
          text: `VPP token ${label} expired on ${day}; Apple refuses it until a renewed token is uploaded.`,
          data: { expirationDateTime: expiry },
        };
      } else {
        const threshold = expiryThresholdOf(expiresAt, now);
        if (threshold === undefined) continue;
        const daysLeft = Math.ceil((expiresAt.getTime() - now.getTime()) / 86_400_000);
        event = {
          ...base,
          eventId: `tokenExpiring:${token.id}:${expiry}:${threshold}`,
          type: 'tokenExpiring',
          text: `VPP token ${label} expires in ${daysLeft} day${daysLeft === 1 ? '' : 's'} (on ${day}); upload a renewed token before then.`,
          data: { expirationDateTime: expiry, thresholdDays: threshold, daysLeft },
        };
      }
      queued += await this.#db.transaction().execute((trx) => enqueue(trx, now, this.#o.newId, event));
    }
    return queued;
  }
}

/** Queues one event for every endpoint of its tenant subscribed to its type; answers rows created. */
export async function enqueue(trx: Trx, now: Date, newId: () => string, event: AlertEvent): Promise<number> {
  const endpoints = await trx
    .selectFrom('alert_webhooks')
    .select(['id', 'events'])
    .where('tenant_id', '=', event.tenantId)
    .execute();
  const subscribed = endpoints.filter((e) => (JSON.parse(e.events) as AlertEventType[]).includes(event.type));
  if (subscribed.length === 0) return 0;
  const payload = JSON.stringify(alertPayloadOf(event));
  const nowText = now.toISOString();
  let created = 0;
  for (const endpoint of subscribed) {
    const result = await trx
      .insertInto('alert_outbox')
      .values({
        id: newId(),
        event_id: event.eventId,
        tenant_id: event.tenantId,
        webhook_id: endpoint.id,
        event_type: event.type,
        token_id: event.tokenId,
        payload,
        status: 'pending',
        attempts: 0,
        created_at: nowText,
        next_attempt_at: nowText,
        lease_owner: null,
        lease_expires_at: null,
        delivered_at: null,
        last_status: null,
        last_error: null,
      })
      .onConflict((oc) => oc.columns(['webhook_id', 'event_id']).doNothing())
      .executeTakeFirst();
    created += Number(result.numInsertedOrUpdatedRows ?? 0n);
  }
  return created;
}
