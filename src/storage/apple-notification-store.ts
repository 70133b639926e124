import type { Transaction } from 'kysely';
import { vppTokenState } from '../domain/enums.js';
import type { DatabaseSchema } from './database-schema.js';
import type { StorageEngine } from './engine.js';
import { appendEvent } from './event-store.js';
import {
  applyEventToBatch,
  type EventBatch,
  type EventResult,
  type EventVerdict,
} from './license-operations/event-outcome.js';
import type { SealedSecret } from './token-cipher.js';
import { dateFromColumn, dateToColumn } from './vpp-token-columns.js';

/** Apple's "unlimited" totalCount: such assets have no count to move. */
const unlimitedTotalCount = 2147483647;

/** A token whose location should be (re)registered for notifications. */
export interface RegistrationCandidate {
  readonly tenantId: string;
  readonly tokenId: string;
  readonly locationUid: string;
  readonly stokenFingerprint: string;
  /** The id of the token's current registration row, kept across re-registrations (the URL stays). */
  readonly registrationId: string | undefined;
}

/**
 * `pending` while the call to Apple runs (Apple's test notification arrives meanwhile); `stale` once the
 * token is no longer valid (renewed, expired, claimed by another MDM): registered again, at the same URL,
 * as soon as it is valid again.
 */
export type RegistrationStatus = 'pending' | 'registered' | 'failed' | 'stale';

/** A registration as the receiver needs it. */
export interface NotificationRegistration {
  readonly id: string;
  readonly tenantId: string;
  readonly tokenId: string;
  readonly locationUid: string;
  readonly authTokenHash: string;
  readonly status: RegistrationStatus;
}

/** What registering a location ended with. */
export interface RegistrationRecord {
  readonly id: string;
  readonly tenantId: string;
  readonly tokenId: string;
  readonly locationUid: string;
  readonly notificationUrl: string;
  readonly authTokenHash: string;
  readonly sealedAuthToken: SealedSecret;
  readonly stokenFingerprint: string;
  readonly status: RegistrationStatus;
  readonly failureMessage?: string;
  readonly appleErrorNumber?: number;
}

/** One stored notification not yet applied. */
export interface PendingNotification {
  readonly tenantId: string;
  readonly tokenId: string;
  readonly notificationId: string;
  readonly notificationType: string;
  readonly payload: unknown;
  /** When vppd stored it (its clock): where it stands against the reads of the snapshot's counts. */
  readonly receivedAt: Date;
}

/** The columns of migration 0012 on `license_snapshots`: the last counts-only read of Apple's assets. */
export type CountsReadColumns = {
  license_snapshots: {
    counts_read_started_at: string | null;
    counts_read_finished_at: string | null;
  };
};

/** An ASSET_COUNT change of one asset. */
export interface AssetCountDelta {
  readonly adamId: string;
  readonly pricingParam: string;
  readonly countDelta: number;
}

/**
 * What applying a notification did: `applied` (counts moved; `recount` when the counts it moved came
 * from a read of Apple's assets that may already have seen it), `superseded` (the snapshot's counts were
 * read after it arrived: nothing to do), `deferred` (a sync or count refresh of the token is running:
 * left pending), `ignored` (nothing to change, with why), `inconsistent` (the snapshot cannot take it: a
 * sync must re-read), or `duplicate` (already processed).
 */
export type NotificationOutcome =
  | { readonly kind: 'applied'; readonly counts?: AppliedCounts; readonly recount: boolean }
  | { readonly kind: 'superseded' }
  | { readonly kind: 'deferred' }
  | { readonly kind: 'ignored'; readonly reason: string }
  | { readonly kind: 'inconsistent'; readonly reason: string }
  | { readonly kind: 'duplicate' };

/** An asset's counts after a delta was applied. */
export interface AppliedCounts {
  readonly adamId: string;
  readonly pricingParam: string;
  readonly totalCount: number;
  readonly assignedCount: number;
  readonly availableCount: number;
}

export type { EventBatch, EventResult, EventVerdict };

/** Registrations of locations for Apple's notifications, and the notifications received. */
export interface AppleNotificationStore {
  /**
   * Valid tokens with a current snapshot whose registration is missing, made with another sToken
   * (a renewal) or URL, for another location, or failed longer than `retryFailedAfterMs` ago.
   */
  registrationCandidates(
    notificationUrlBase: string,
    now: Date,
    retryFailedAfterMs: number,
  ): Promise<RegistrationCandidate[]>;
  /** Marks the registrations of tokens that are no longer valid `stale` (kept: their URL stays). */
  markInvalidRegistrationsStale(now: Date): Promise<number>;
  /** Inserts or replaces the token's registration. */
  saveRegistration(record: RegistrationRecord, now: Date): Promise<void>;
  /**
   * Writes `record` as the token's `pending` registration unless another process is registering it
   * (a `pending` row younger than `pendingForMs`); false then, and nothing changed. One statement, so
   * two processes never register one token at once (their bearer tokens would race).
   */
  claimRegistration(record: RegistrationRecord, now: Date, pendingForMs: number): Promise<boolean>;
  /** A registration by the id in its URL. */
  findRegistration(id: string): Promise<NotificationRegistration | undefined>;
  /** A token's registration, for the operator's view. */
  registrationOf(
    tenantId: string,
    tokenId: string,
  ): Promise<(RegistrationRecord & { updatedAt: string }) | undefined>;
  /** Stores a received notification; `duplicate` when this token already has that notificationId. */
  recordNotification(
    registration: NotificationRegistration,
    notification: {
      readonly notificationId: string;
      readonly notificationType: string;
      readonly payload: unknown;
    },
    now: Date,
  ): Promise<'stored' | 'duplicate'>;
  /**
   * Notifications stored and not yet processed, oldest first; without the ASSET_COUNT ones of tokens
   * whose sync or count refresh is running at `now` (they wait for its end).
   */
  pendingNotifications(limit: number, now?: Date): Promise<PendingNotification[]>;
  /** Marks a notification processed with an outcome, unless already processed; false when it was. */
  markProcessed(tokenId: string, notificationId: string, outcome: string, now: Date): Promise<boolean>;
  /**
   * In one transaction: claims the notification (exactly once) and applies the deltas to the asset
   * counts of the token's current snapshot, or nothing when any delta does not fit.
   */
  applyAssetCount(
    pending: PendingNotification,
    deltas: readonly AssetCountDelta[],
    now: Date,
  ): Promise<NotificationOutcome>;
  /**
   * In one transaction: claims the notification (exactly once) and, when `eventId` belongs to a batch of
   * the token's license operations still waiting for Apple, ends that batch with what `verdict` reads
   * from the notification (or makes it due for a poll now). `duplicate` when already processed; the
   * outcome written names what happened.
   */
  applyAssetManagement(
    pending: PendingNotification,
    eventId: string,
    verdict: (batch: EventBatch) => EventVerdict,
    now: Date,
  ): Promise<EventResult | { readonly kind: 'duplicate' }>;
}

/** Builds the store on an engine. */
export function createAppleNotificationStore(options: {
  readonly storage: StorageEngine;
}): AppleNotificationStore {
  const { storage } = options;
  const { db } = storage;
  const valid = vppTokenState.toValue('valid');

  return {
    async registrationCandidates(notificationUrlBase, now, retryFailedAfterMs) {
      const rows = await db
        .selectFrom('vpp_tokens as t')
        .innerJoin('license_snapshots as s', (j) =>
          j.onRef('s.token_id', '=', 't.id').onRef('s.tenant_id', '=', 't.tenant_id'),
        )
        .leftJoin('apple_notification_registrations as r', 'r.token_id', 't.id')
        .select([
          't.tenant_id',
          't.id as token_id',
          't.stoken_fingerprint',
          's.location_uid',
          'r.id as registration_id',
          'r.stoken_fingerprint as registered_fingerprint',
          'r.notification_url',
          'r.location_uid as registered_location',
          'r.status',
          'r.updated_at',
        ])
        .where('t.state', '=', valid)
        .execute();
      const retryBefore = dateToColumn(new Date(now.getTime() - retryFailedAfterMs));
      return rows
        .filter((row) => {
          if (row.registration_id === null) return true;
          const same =
            row.registered_fingerprint === row.stoken_fingerprint &&
            row.registered_location === row.location_uid &&
            row.notification_url === `${notificationUrlBase}/${row.registration_id}`;
          if (!same || row.status === 'stale') return true;
          return row.status !== 'registered' && (row.updated_at ?? '') < retryBefore;
        })
        .map((row) => ({
          tenantId: row.tenant_id,
          tokenId: row.token_id,
          locationUid: row.location_uid,
          stokenFingerprint: row.stoken_fingerprint,
          registrationId: row.registration_id ?? undefined,
        }));
    },

    async markInvalidRegistrationsStale(now) {
      const result = await db
        .updateTable('apple_notification_registrations')
        .set({ status: 'stale', updated_at: dateToColumn(now) })
        .where('status', '!=', 'stale')
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom('vpp_tokens as t')
                .select('t.id')
                .whereRef('t.id', '=', 'apple_notification_registrations.token_id')
                .where('t.state', '=', valid),
            ),
          ),
        )
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    async saveRegistration(record, now) {
      const values = {
        id: record.id,
        tenant_id: record.tenantId,
        location_uid: record.locationUid,
        notification_url: record.notificationUrl,
        auth_token_hash: record.authTokenHash,
        auth_token_ciphertext: record.sealedAuthToken.ciphertext,
        auth_token_iv: record.sealedAuthToken.iv,
        auth_token_tag: record.sealedAuthToken.tag,
        stoken_fingerprint: record.stokenFingerprint,
        status: record.status,
        failure_message: record.failureMessage ?? null,
        apple_error_number: record.appleErrorNumber ?? null,
        updated_at: dateToColumn(now),
      };
      await db
        .insertInto('apple_notification_registrations')
        .values({ ...values, token_id: record.tokenId })
        .onConflict((oc) => oc.column('token_id').doUpdateSet(values))
        .execute();
    },

    async claimRegistration(record, now, pendingForMs) {
      const values = {
        id: record.id,
        tenant_id: record.tenantId,
        location_uid: record.locationUid,
        notification_url: record.notificationUrl,
        auth_token_hash: record.authTokenHash,
        auth_token_ciphertext: record.sealedAuthToken.ciphertext,
        auth_token_iv: record.sealedAuthToken.iv,
        auth_token_tag: record.sealedAuthToken.tag,
        stoken_fingerprint: record.stokenFingerprint,
        status: 'pending',
        failure_message: null,
        apple_error_number: null,
        updated_at: dateToColumn(now),
      };
      const busySince = dateToColumn(new Date(now.getTime() - pendingForMs));
      const result = await db
        .insertInto('apple_notification_registrations')
        .values({ ...values, token_id: record.tokenId })
        .onConflict((oc) =>
          oc
            .column('token_id')
            .doUpdateSet(values)
            .where((eb) =>
              eb.or([
                eb('apple_notification_registrations.status', '!=', 'pending'),
                eb('apple_notification_registrations.updated_at', '<', busySince),
              ]),
            ),
        )
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
    },

    async findRegistration(id) {
      const row = await db
        .selectFrom('apple_notification_registrations')
        .select(['id', 'tenant_id', 'token_id', 'location_uid', 'auth_token_hash', 'status'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      return {
        id: row.id,
        tenantId: row.tenant_id,
        tokenId: row.token_id,
        locationUid: row.location_uid,
        authTokenHash: row.auth_token_hash,
        status: statusOf(row.status),
      };
    },

    async registrationOf(tenantId, tokenId) {
      const row = await db
        .selectFrom('apple_notification_registrations')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('token_id', '=', tokenId)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      return {
        id: row.id,
        tenantId: row.tenant_id,
        tokenId: row.token_id,
        locationUid: row.location_uid,
        notificationUrl: row.notification_url,
        authTokenHash: row.auth_token_hash,
        sealedAuthToken: {
          ciphertext: row.auth_token_ciphertext,
          iv: row.auth_token_iv,
          tag: row.auth_token_tag,
        },
        stokenFingerprint: row.stoken_fingerprint,
        status: statusOf(row.status),
        ...(row.failure_message === null ? {} : { failureMessage: row.failure_message }),
        ...(row.apple_error_number === null ? {} : { appleErrorNumber: row.apple_error_number }),
        updatedAt: row.updated_at,
      };
    },

    async recordNotification(registration, notification, now) {
      try {
        await db
          .insertInto('apple_notifications')
          .values({
            token_id: registration.tokenId,
            notification_id: notification.notificationId,
            tenant_id: registration.tenantId,
            notification_type: notification.notificationType,
            payload: JSON.stringify(notification.payload ?? null),
            received_at: dateToColumn(now),
            processed_at: null,
            outcome: null,
          })
          .execute();
        return 'stored';
      } catch (error) {
        if (storage.isUniqueViolation(error)) return 'duplicate';
        throw error;
      }
    },

    async pendingNotifications(limit, now = new Date()) {
      const nowText = dateToColumn(now);
      const rows = await db
        .selectFrom('apple_notifications as n')
        .select([
          'n.tenant_id',
          'n.token_id',
          'n.notification_id',
          'n.notification_type',
          'n.payload',
          'n.received_at',
        ])
        .where('n.processed_at', 'is', null)
        .where((eb) =>
          eb.or([
            eb('n.notification_type', '!=', 'ASSET_COUNT'),
            eb.not(
              eb.exists(
                eb
                  .selectFrom('sync_jobs as j')
                  .select('j.id')
                  .whereRef('j.token_id', '=', 'n.token_id')
                  .where('j.lease_owner', 'is not', null)
                  .where('j.lease_expires_at', '>', nowText),
              ),
            ),
          ]),
        )
        .orderBy('n.received_at')
        .limit(limit)
        .execute();
      return rows.map((row) => ({
        tenantId: row.tenant_id,
        tokenId: row.token_id,
        notificationId: row.notification_id,
        notificationType: row.notification_type,
        payload: JSON.parse(row.payload) as unknown,
        receivedAt: dateFromColumn(row.received_at),
      }));
    },

    async markProcessed(tokenId, notificationId, outcome, now) {
      const result = await db
        .updateTable('apple_notifications')
        .set({ processed_at: dateToColumn(now), outcome })
        .where('token_id', '=', tokenId)
        .where('notification_id', '=', notificationId)
        .where('processed_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    applyAssetCount(pending, deltas, now) {
      return db.transaction().execute(async (trx): Promise<NotificationOutcome> => {
        const claim = async (outcome: string) =>
          Number(
            (
              await trx
                .updateTable('apple_notifications')
                .set({ processed_at: dateToColumn(now), outcome })
                .where('token_id', '=', pending.tokenId)
                .where('notification_id', '=', pending.notificationId)
                .where('processed_at', 'is', null)
                .executeTakeFirst()
            ).numUpdatedRows,
          ) === 1;
        const snapshot = await storage
          .lockForUpdate(
            trx
              .withTables<CountsReadColumns>()
              .selectFrom('license_snapshots')
              .select([
                'run_id',
                'total_license_count',
                'available_license_count',
                'committed_at',
                'counts_read_started_at',
                'counts_read_finished_at',
              ])
              .where('tenant_id', '=', pending.tenantId)
              .where('token_id', '=', pending.tokenId),
          )
          .executeTakeFirst();
        if (snapshot === undefined) {
          const reason = 'the token has no license snapshot yet';
          return (await claim(`ignored: ${reason}`)) ? { kind: 'ignored', reason } : { kind: 'duplicate' };
        }
        // A sync or count refresh of the token running now reads Apple's assets: whether that read sees
        // this change is unknown, so the notification waits (pending) until the read has committed.
        const reading = await trx
          .selectFrom('sync_jobs')
          .select('id')
          .where('token_id', '=', pending.tokenId)
          .where('lease_owner', 'is not', null)
          .where('lease_expires_at', '>', dateToColumn(now))
          .executeTakeFirst();
        if (reading !== undefined) return { kind: 'deferred' };
        const read = await countsReadOf(trx, snapshot);
        if (pending.receivedAt.getTime() < read.startedAt.getTime()) {
          // Apple's change happened before vppd received this, so before the read began: it is counted.
          return (await claim(`superseded: the snapshot's counts were read from Apple after it arrived`))
            ? { kind: 'superseded' }
            : { kind: 'duplicate' };
        }
        // Received while the read ran: the counts may or may not hold it. Apply it, and re-read.
        const recount = pending.receivedAt.getTime() <= read.finishedAt.getTime();
        // Check every delta before writing any: a notification is applied whole or not at all.
        const rows: { delta: AssetCountDelta; total: number; assigned: number; available: number }[] = [];
        for (const delta of deltas) {
          const asset = await trx
            .selectFrom('license_assets')
            .select(['total_count', 'assigned_count', 'available_count'])
            .where('run_id', '=', snapshot.run_id)
            .where('adam_id', '=', delta.adamId)
            .where('pricing_param', '=', delta.pricingParam)
            .executeTakeFirst();
          let problem: string | undefined;
          if (asset === undefined) {
            problem = `asset ${delta.adamId} (${delta.pricingParam}) is not in the snapshot`;
          } else {
            const total = Number(asset.total_count);
            const assigned = Number(asset.assigned_count);
            const available = Number(asset.available_count);
            if (total === unlimitedTotalCount) {
              problem = `asset ${delta.adamId} (${delta.pricingParam}) has unlimited licenses`;
            } else if (total !== assigned + available) {
              problem = `the counts of ${delta.adamId} (${delta.pricingParam}) no longer add up`;
            } else if (available + delta.countDelta < 0) {
              problem = `${delta.countDelta} would leave ${delta.adamId} (${delta.pricingParam}) with fewer licenses than assigned`;
            } else {
              rows.push({ delta, total, assigned, available });
            }
          }
          if (problem !== undefined) {
            return (await claim(`syncRequested: ${problem}`))
              ? { kind: 'inconsistent', reason: problem }
              : { kind: 'duplicate' };
          }
        }
        if (!(await claim(recount ? 'applied: counts re-read (received while they were read)' : 'applied')))
          return { kind: 'duplicate' };
        let sum = 0;
        let last: AppliedCounts | undefined;
        for (const { delta, total, assigned, available } of rows) {
          await trx
            .updateTable('license_assets')
            .set({ total_count: total + delta.countDelta, available_count: available + delta.countDelta })
            .where('run_id', '=', snapshot.run_id)
            .where('adam_id', '=', delta.adamId)
            .where('pricing_param', '=', delta.pricingParam)
            .execute();
          sum += delta.countDelta;
          last = {
            adamId: delta.adamId,
            pricingParam: delta.pricingParam,
            totalCount: total + delta.countDelta,
            assignedCount: assigned,
            availableCount: available + delta.countDelta,
          };
        }
        await trx
          .updateTable('license_snapshots')
          .set({
            total_license_count: Number(snapshot.total_license_count) + sum,
            available_license_count: Number(snapshot.available_license_count) + sum,
          })
          .where('tenant_id', '=', pending.tenantId)
          .where('token_id', '=', pending.tokenId)
          .where('run_id', '=', snapshot.run_id)
          .execute();
        await appendEvent(trx, storage, now, {
          tenantId: pending.tenantId,
          tokenId: pending.tokenId,
          type: 'licensesChanged',
          payload: { source: 'notification', notificationId: pending.notificationId },
        });
        return last === undefined ? { kind: 'applied', recount } : { kind: 'applied', counts: last, recount };
      });
    },

    applyAssetManagement(pending, eventId, verdict, now) {
      return db
        .transaction()
        .execute(async (trx) => {
          const result = await applyEventToBatch(
            trx,
            storage,
            { tenantId: pending.tenantId, tokenId: pending.tokenId, eventId },
            verdict,
            now,
          );
          // Marked last, conditioned on still being unprocessed: a second process that got here first
          // makes this one roll back whatever it wrote above.
          const claimed = await trx
            .updateTable('apple_notifications')
            .set({ processed_at: dateToColumn(now), outcome: eventOutcomeText(eventId, result) })
            .where('token_id', '=', pending.tokenId)
            .where('notification_id', '=', pending.notificationId)
            .where('processed_at', 'is', null)
            .executeTakeFirst();
          if (Number(claimed.numUpdatedRows) !== 1) throw new AlreadyProcessed();
          return result;
        })
        .catch((error: unknown) => {
          if (error instanceof AlreadyProcessed) return { kind: 'duplicate' as const };
          throw error;
        });
    },
  };
}

/** The notification's outcome text for what it did to an operation batch. */
function eventOutcomeText(eventId: string, result: EventResult): string {
  switch (result.kind) {
    case 'unknownEvent':
      return `ignored: no license operation of this token is waiting for event ${eventId}`;
    case 'alreadyEnded':
      return `ignored: batch ${result.batch.batchIndex} of operation ${result.batch.operationId} had already ended`;
    case 'ignored':
      return `ignored: ${result.reason}`;
    case 'ended':
      return `applied: ended batch ${result.batch.batchIndex} of operation ${result.batch.operationId}`;
    case 'pollNow':
      return `applied: batch ${result.batch.batchIndex} of operation ${result.batch.operationId} is polled now (${result.reason})`;
    default: {
      const never: never = result;
      throw new Error(`unknown result ${String(never)}`);
    }
  }
}

/**
 * When the snapshot's counts were read from Apple: the later of the sync that made the snapshot (from
 * its run's start, before its first `GET /assets`, to the snapshot's commit) and the last counts-only
 * refresh of it (migration 0012). Both ends are conservative: the real read lies within.
 */
async function countsReadOf(
  trx: Transaction<DatabaseSchema>,
  snapshot: {
    readonly run_id: string;
    readonly committed_at: string;
    readonly counts_read_started_at: string | null;
    readonly counts_read_finished_at: string | null;
  },
): Promise<{ startedAt: Date; finishedAt: Date }> {
  const run = await trx
    .selectFrom('sync_runs')
    .select('started_at')
    .where('id', '=', snapshot.run_id)
    .executeTakeFirst();
  const sync = {
    startedAt: dateFromColumn(run?.started_at ?? snapshot.committed_at),
    finishedAt: dateFromColumn(snapshot.committed_at),
  };
  if (snapshot.counts_read_started_at === null || snapshot.counts_read_finished_at === null) return sync;
  const refresh = {
    startedAt: dateFromColumn(snapshot.counts_read_started_at),
    finishedAt: dateFromColumn(snapshot.counts_read_finished_at),
  };
  return refresh.startedAt.getTime() > sync.startedAt.getTime() ? refresh : sync;
}

/** Thrown inside a transaction to roll it back: another process processed the notification first. */
class AlreadyProcessed extends Error {}

function statusOf(text: string): RegistrationStatus {
  return text === 'registered' || text === 'pending' || text === 'stale' ? text : 'failed';
}
