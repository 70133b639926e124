import { createHash } from 'node:crypto';
import type { Selectable } from 'kysely';
import { errors } from '../../domain/errors.js';
import type {
  AssetRef,
  HolderKind,
  LicenseOperationKind,
  LicenseOperationRequest,
  LicenseOperationStatus,
} from '../../domain/license-operation.js';
import type { StorageEngine } from '../engine.js';
import { dateFromColumn, dateToColumn } from '../vpp-token-columns.js';
import {
  type LicenseOperationFailureRow,
  type LicenseOperationRow,
  type LicenseOperationsDatabase,
  licenseOperationsDatabaseOf,
} from './tables.js';

/** Who started an operation: a caller of the API, or a reclaim plan. */
export type LicenseOperationSource = 'api' | 'reclaim';

/** How the token's snapshot followed a finished operation. */
export type SnapshotUpdate = 'incremental' | 'fullSyncRequested' | 'countsOnly' | 'failed';

/** An operation as stored (holders are read separately: there may be 200,000). */
export interface LicenseOperation {
  readonly id: string;
  readonly tenantId: string;
  readonly tokenId: string;
  readonly kind: LicenseOperationKind;
  readonly source: LicenseOperationSource;
  readonly status: LicenseOperationStatus;
  readonly holderKind: HolderKind;
  readonly assets: readonly AssetRef[];
  readonly requestedCount: number;
  readonly completedCount: number;
  readonly failedCount: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly finishedAt: Date | null;
  readonly snapshotUpdate: SnapshotUpdate | null;
  readonly errorMessage: string | null;
}

/** One item Apple did not do. */
export interface LicenseOperationFailure {
  readonly adamId: string | null;
  readonly pricingParam: string | null;
  readonly serialNumber: string | null;
  readonly clientUserId: string | null;
  /** Apple's error number; null when vppd gave up on the item itself (Apple never answered). */
  readonly errorNumber: number | null;
  readonly errorMessage: string;
}

export interface CreateOperationInput {
  readonly tenantId: string;
  readonly tokenId: string;
  readonly request: LicenseOperationRequest;
  readonly source: LicenseOperationSource;
  readonly idempotencyKey?: string;
  readonly now: Date;
}

/** Tenant-scoped reads and the creation of operations. */
export interface LicenseOperationStore {
  /**
   * Records a `pending` operation, due at once. With an idempotency key already used by the tenant for the
   * same request, returns that operation (`created: false`); for another request, a conflict.
   */
  create(input: CreateOperationInput): Promise<{ operation: LicenseOperation; created: boolean }>;
  get(tenantId: string, id: string): Promise<LicenseOperation | undefined>;
  /** Newest first; `before` pages on (createdAt, id) of the last one seen. */
  list(
    tenantId: string,
    options: { tokenId?: string; limit: number; before?: { createdAt: Date; id: string } },
  ): Promise<LicenseOperation[]>;
  /** Per-item failures in batch order, at most `limit`. */
  failures(operationId: string, limit: number): Promise<LicenseOperationFailure[]>;
}

export const idempotencyKeyPattern = /^[\x21-\x7e]{1,255}$/;

/** The fingerprint an idempotency key is bound to: the token and the whole normalized request. */
export function requestFingerprint(tokenId: string, request: LicenseOperationRequest): string {
  return createHash('sha256')
    .update(JSON.stringify([tokenId, request.kind, request.assets, request.holderKind, request.holders]))
    .digest('hex');
}

export const operationSummaryColumns = [
  'id',
  'tenant_id',
  'token_id',
  'kind',
  'source',
  'status',
  'holder_kind',
  'assets',
  'requested_count',
  'completed_count',
  'failed_count',
  'created_at',
  'updated_at',
  'finished_at',
  'snapshot_update',
  'error_message',
] as const;

/** The stored columns an operation is read from. */
export type OperationSummaryRow = Pick<
  Selectable<LicenseOperationRow>,
  (typeof operationSummaryColumns)[number]
>;

export function operationFromRow(row: OperationSummaryRow): LicenseOperation {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    tokenId: row.token_id,
    kind: row.kind as LicenseOperationKind,
    source: row.source as LicenseOperationSource,
    status: row.status as LicenseOperationStatus,
    holderKind: row.holder_kind as HolderKind,
    assets: JSON.parse(row.assets) as AssetRef[],
    requestedCount: row.requested_count,
    completedCount: row.completed_count,
    failedCount: row.failed_count,
    createdAt: dateFromColumn(row.created_at),
    updatedAt: dateFromColumn(row.updated_at),
    finishedAt: row.finished_at === null ? null : dateFromColumn(row.finished_at),
    snapshotUpdate: row.snapshot_update as SnapshotUpdate | null,
    errorMessage: row.error_message,
  };
}

export function failureFromRow(row: Selectable<LicenseOperationFailureRow>): LicenseOperationFailure {
  return {
    adamId: row.adam_id,
    pricingParam: row.pricing_param,
    serialNumber: row.serial_number,
    clientUserId: row.client_user_id,
    errorNumber: row.error_number,
    errorMessage: row.error_message,
  };
}

/** Builds the store of license operations. */
export function createLicenseOperationStore(options: {
  readonly storage: StorageEngine;
  readonly newId: () => string;
}): LicenseOperationStore {
  const { storage, newId } = options;
  const db: LicenseOperationsDatabase = licenseOperationsDatabaseOf(storage.db);

  const byKey = async (tenantId: string, key: string) =>
    db
      .selectFrom('license_operations')
      .select([...operationSummaryColumns, 'request_fingerprint'])
      .where('tenant_id', '=', tenantId)
      .where('idempotency_key', '=', key)
      .executeTakeFirst();

  const replay = (
    existing: NonNullable<Awaited<ReturnType<typeof byKey>>>,
    fingerprint: string,
  ): { operation: LicenseOperation; created: boolean } => {
    if (existing.request_fingerprint !== fingerprint) {
      throw errors.conflict(
        'This Idempotency-Key was already used for a different request; use a new key for a new operation.',
        { operationId: existing.id },
      );
    }
    return {
      operation: operationFromRow(existing),
      created: false,
    };
  };

  return {
    async create(input) {
      const { tenantId, tokenId, request, now } = input;
      const key = input.idempotencyKey;
      const fingerprint = key === undefined ? null : requestFingerprint(tokenId, request);
      if (key !== undefined && fingerprint !== null) {
        const existing = await byKey(tenantId, key);
        if (existing) return replay(existing, fingerprint);
      }
      const id = newId();
      const nowText = dateToColumn(now);
      try {
        await db
          .insertInto('license_operations')
          .values({
            id,
            tenant_id: tenantId,
            token_id: tokenId,
            kind: request.kind,
            source: input.source,
            status: 'pending',
            holder_kind: request.holderKind,
            assets: JSON.stringify(request.assets),
            holders: JSON.stringify(request.holders),
            requested_count: request.assets.length * request.holders.length,
            completed_count: 0,
            failed_count: 0,
            idempotency_key: key ?? null,
            request_fingerprint: fingerprint,
            created_at: nowText,
            updated_at: nowText,
            finished_at: null,
            next_action_at: nowText,
            lease_owner: null,
            lease_expires_at: null,
            claims: 0,
            snapshot_update: null,
            error_message: null,
          })
          .execute();
      } catch (error) {
        // Two requests with the same key at once: the loser answers the winner's operation.
        if (key !== undefined && fingerprint !== null && storage.isUniqueViolation(error)) {
          const existing = await byKey(tenantId, key);
          if (existing) return replay(existing, fingerprint);
        }
        if (storage.isForeignKeyViolation(error)) throw errors.notFound('vppToken', tokenId);
        throw error;
      }
      const created = await this.get(tenantId, id);
      if (!created) throw errors.notFound('vppToken', tokenId);
      return { operation: created, created: true };
    },

    async get(tenantId, id) {
      const row = await db
        .selectFrom('license_operations')
        .select(operationSummaryColumns)
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .executeTakeFirst();
      return row ? operationFromRow(row) : undefined;
    },

    async list(tenantId, { tokenId, limit, before }) {
      let query = db
        .selectFrom('license_operations')
        .select(operationSummaryColumns)
        .where('tenant_id', '=', tenantId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit);
      if (tokenId !== undefined) query = query.where('token_id', '=', tokenId);
      if (before !== undefined) {
        const at = dateToColumn(before.createdAt);
        query = query.where((eb) =>
          eb.or([eb('created_at', '<', at), eb.and([eb('created_at', '=', at), eb('id', '<', before.id)])]),
        );
      }
      const rows = await query.execute();
      return rows.map((row) => operationFromRow(row));
    },

    async failures(operationId, limit) {
      const rows = await db
        .selectFrom('license_operation_failures')
        .selectAll()
        .where('operation_id', '=', operationId)
        .orderBy('batch_index')
        .orderBy('seq')
        .limit(limit)
        .execute();
      return rows.map(failureFromRow);
    },
  };
}
