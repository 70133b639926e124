import type { Selectable, Transaction } from 'kysely';
import type { DatabaseSchema, EventRow } from './database-schema.js';
import type { StorageEngine } from './engine.js';
import { dateFromColumn, dateToColumn } from './vpp-token-columns.js';

/**
 * What changed. Each write site appends its event in the transaction of the change:
 * - `tokenCreated`, `tokenUpdated` (PATCH: rename and other properties), `tokenRenewed` (a new
 *   sToken), `tokenDeleted`: storage/vpp-token-store.ts;
 * - `syncRequested` (payload `kind`: `licenses`, `delta` or `licenseCounts`), `syncStarted`, `syncProgressed`
 *   (at most one per progress write), `syncCompleted`, `syncFailed`, `syncInterrupted` (a run given
 *   back or retried): storage/sync-jobs/ and storage/sync-progress-store.ts; payload `runId` where
 *   the sync has a run;
 * - `stateChanged` (payload `from`, `to`): a sync's outcome, a renewal, an expiry passing
 *   (storage/token-expiry-store.ts);
 * - `actionChanged` (payload `action`, `state`): a `tokenActionResults` entry written outside a sync
 *   (revokeLicenses, a replacement of the whole list);
 * - `licensesChanged` (payload `source`: `operation` or `notification`): the current license snapshot
 *   patched between syncs (storage/license-operations/snapshot-patch.ts, apple-notification-store.ts).
 */
export const eventTypes = [
  'tokenCreated',
  'tokenUpdated',
  'tokenRenewed',
  'tokenDeleted',
  'syncRequested',
  'syncStarted',
  'syncProgressed',
  'syncCompleted',
  'syncFailed',
  'syncInterrupted',
  'stateChanged',
  'actionChanged',
  'licensesChanged',
] as const;
export type EventType = (typeof eventTypes)[number];

/** The channel every append notifies on; the payload is {@link EventWake} as JSON. */
export const eventsChannel = 'vppd_events';

/** What a notification of an append says (never a secret: ids and the type). */
export interface EventWake {
  readonly tenantId: string;
  readonly type: EventType;
}

/** An event to append. */
export interface NewEvent {
  readonly tenantId: string;
  readonly tokenId: string | null;
  readonly type: EventType;
  /** A small object (ids, states, counts); never a secret. */
  readonly payload?: Readonly<Record<string, unknown>>;
}

/** An event as stored. */
export interface StoredEvent {
  readonly seq: number;
  readonly tenantId: string;
  readonly tokenId: string | null;
  readonly type: EventType;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly createdAt: Date;
}

/** What appending needs of the engine: its wake-ups and its way of writing the rows. */
export type EventAppender = Pick<StorageEngine, 'notifier' | 'appendEventRows'>;

/**
 * Appends `events` inside `trx`, the transaction of the change they describe, and notifies
 * {@link eventsChannel} (delivered on commit where the engine can). Call it last in the transaction:
 * after the notifications (which wait for the commit anyway) it upserts each tenant's `event_heads`
 * row (tenants in order), whose row lock makes a tenant's appends take their `seq` one after the
 * other, so a tenant's events become visible in `seq` order and its change stamp (newest `seq`) never
 * skips a commit (`StorageEngine.appendEventRows`). On PostgreSQL the upsert and the insert are one
 * statement, sent with the COMMIT (postgres/at-commit.ts), so the lock is held only while the server
 * runs it and commits: every append of a busy tenant, on every replica, waits that long
 * (`npm run bench -- scaleout` shows the wait).
 */
export async function appendEvents(
  trx: Transaction<DatabaseSchema>,
  storage: EventAppender,
  at: Date,
  events: readonly NewEvent[],
): Promise<void> {
  if (events.length === 0) return;
  const createdAt = dateToColumn(at);
  const wakes = new Set(events.map((e) => JSON.stringify({ tenantId: e.tenantId, type: e.type })));
  for (const wake of wakes) await storage.notifier.notify(trx, eventsChannel, wake);
  const tenants = [...new Set(events.map((e) => e.tenantId))].sort();
  await storage.appendEventRows(
    trx,
    tenants,
    createdAt,
    events.map((e) => ({
      tenant_id: e.tenantId,
      token_id: e.tokenId,
      type: e.type,
      payload: JSON.stringify(e.payload ?? {}),
      created_at: createdAt,
    })),
  );
}

/** {@link appendEvents} of one event. */
export function appendEvent(
  trx: Transaction<DatabaseSchema>,
  storage: EventAppender,
  at: Date,
  event: NewEvent,
): Promise<void> {
  return appendEvents(trx, storage, at, [event]);
}

/** Reads a notification's payload; undefined for the empty "something may have changed" one. */
export function parseEventWake(payload: string): EventWake | undefined {
  if (payload === '') return undefined;
  try {
    const wake = JSON.parse(payload) as Partial<EventWake>;
    if (typeof wake.tenantId !== 'string' || !(eventTypes as readonly string[]).includes(String(wake.type))) {
      return undefined;
    }
    return { tenantId: wake.tenantId, type: wake.type as EventType };
  } catch {
    return undefined;
  }
}

/** Converts a row to the stored event. */
export function eventFromRow(row: Selectable<EventRow>): StoredEvent {
  let payload: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(row.payload) as unknown;
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      payload = parsed as Record<string, unknown>;
    }
  } catch {
    // An unreadable payload reads as empty: the type and ids still say what happened.
  }
  return {
    seq: Number(row.seq),
    tenantId: row.tenant_id,
    tokenId: row.token_id,
    type: (eventTypes as readonly string[]).includes(row.type) ? (row.type as EventType) : 'tokenUpdated',
    payload,
    createdAt: dateFromColumn(row.created_at),
  };
}

/** Reading and pruning the event log. */
export interface EventStore {
  /** Events with `seq` above `after`, oldest first, at most `limit`. */
  readAfter(after: number, limit: number): Promise<StoredEvent[]>;
  /** The tenant's events with `seq` above `after`, oldest first, at most `limit`. */
  readTenantAfter(tenantId: string, after: number, limit: number): Promise<StoredEvent[]>;
  /** The newest `seq` of the whole log (0 when empty). */
  newestSeq(): Promise<number>;
  /**
   * Deletes at most `limit` events created before `before` that every reader of the whole log has
   * passed (at or below the lowest row of `event_cursors`; by age alone while there is none), oldest
   * first, never a tenant's newest event (its change stamp) nor its newest other than `syncProgressed`
   * (the stamp without progress); answers how many.
   */
  prune(before: Date, limit: number): Promise<number>;
}

/** Builds the Kysely-backed event store. */
export function createEventStore({ storage }: { readonly storage: StorageEngine }): EventStore {
  const { db } = storage;
  return {
    async readAfter(after, limit) {
      const rows = await db
        .selectFrom('events')
        .selectAll()
        .where('seq', '>', after)
        .orderBy('seq')
        .limit(limit)
        .execute();
      return rows.map(eventFromRow);
    },

    async readTenantAfter(tenantId, after, limit) {
      const rows = await db
        .selectFrom('events')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('seq', '>', after)
        .orderBy('seq')
        .limit(limit)
        .execute();
      return rows.map(eventFromRow);
    },

    async newestSeq() {
      const row = await db
        .selectFrom('events')
        .select((eb) => eb.fn.max('seq').as('s'))
        .executeTakeFirst();
      return Number(row?.s ?? 0);
    },

    async prune(before, limit) {
      const cursor = await db
        .selectFrom('event_cursors')
        .select((eb) => eb.fn.min('seq').as('s'))
        .executeTakeFirst();
      const upTo = cursor?.s === null || cursor?.s === undefined ? Number.MAX_SAFE_INTEGER : Number(cursor.s);
      const result = await db
        .deleteFrom('events')
        .where('seq', 'in', (eb) =>
          eb
            .selectFrom('events as e')
            .select('e.seq')
            .where('e.seq', '<=', upTo)
            .where('e.created_at', '<', dateToColumn(before))
            .where(({ exists, selectFrom }) =>
              // A tenant's newest event stays: deleting it would let its stamp fall back to an older value.
              exists(
                selectFrom('events as n')
                  .select('n.seq')
                  .whereRef('n.tenant_id', '=', 'e.tenant_id')
                  .whereRef('n.seq', '>', 'e.seq'),
              ),
            )
            .where((eb) =>
              // So does its newest event other than a progress note (the stamp Graph reads by,
              // StorageEngine.readTenantStampWithoutProgress).
              eb.or([
                eb('e.type', '=', 'syncProgressed'),
                eb.exists(
                  eb
                    .selectFrom('events as m')
                    .select('m.seq')
                    .whereRef('m.tenant_id', '=', 'e.tenant_id')
                    .whereRef('m.seq', '>', 'e.seq')
                    .where('m.type', '<>', 'syncProgressed'),
                ),
              ]),
            )
            .orderBy('e.seq')
            .limit(limit),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
