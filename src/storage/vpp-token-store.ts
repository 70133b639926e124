import type { Selectable, SelectQueryBuilder, Transaction } from 'kysely';
import {
  appleDeviceDeliveryProtocol,
  vppTokenAccountType,
  vppTokenState,
  vppTokenSyncStatus,
} from '../domain/enums.js';
import { errors } from '../domain/errors.js';
import type { FilterExpression, ListQuery } from '../domain/list-query.js';
import type { DecodedSToken } from '../domain/stoken.js';
import type { TokenActionResult } from '../domain/sync-lifecycle.js';
import type { VppToken } from '../domain/vpp-token.js';
import { actionResultFromRow, actionResultToRow } from './action-result-rows.js';
import type { DatabaseSchema, VppTokenRow } from './database-schema.js';
import type { StorageEngine } from './engine.js';
import { appendEvent, appendEvents, type NewEvent } from './event-store.js';
import { countListRows, fetchListPage, type ListPage } from './list-query-compiler.js';
import type { VppdDatabase } from './open-database.js';
import type { TokenCipher } from './token-cipher.js';
import { booleanToColumn, dateFromColumn, dateToColumn, vppTokenColumns } from './vpp-token-columns.js';

/**
 * A token's id and version: the seq of its newest event, as a string (every change to what a vppToken
 * shows appends an event naming it, in the change's transaction), or null when it has no event left
 * (older than the event retention, or older than the event log).
 */
export interface TokenVersion {
  readonly id: string;
  readonly version: string | null;
}

/** Properties a caller may change with {@link VppTokenStore.update}; id, tenant and action results stay. */
export type VppTokenChanges = Partial<Omit<VppToken, 'id' | 'tenantId' | 'tokenActionResults'>>;

/**
 * The columns a read needs: all but the encrypted sToken (only {@link VppTokenStore.readSToken} opens
 * it) and the bookkeeping `created_at`, so reads neither copy ciphertext around nor pay for it.
 */
const readColumns = [
  'id',
  'tenant_id',
  'organization_name',
  'vpp_token_account_type',
  'apple_id',
  'expiration_date_time',
  'last_sync_date_time',
  'last_modified_date_time',
  'state',
  'last_sync_status',
  'automatically_update_apps',
  'country_or_region',
  'data_sharing_consent_granted',
  'display_name',
  'location_name',
  'claim_token_management_from_external_mdm',
  'role_scope_tag_ids',
  'apple_device_app_delivery_protocol_type',
] as const satisfies readonly (keyof VppTokenRow)[];

/** What a read loads of a `vpp_tokens` row. */
export type VppTokenReadRow = Pick<Selectable<VppTokenRow>, (typeof readColumns)[number]>;

/** A select of the tenant's `vpp_tokens` rows. */
type TokenQuery = SelectQueryBuilder<DatabaseSchema, 'vpp_tokens', VppTokenReadRow>;

/** What a page of tokens depends on: the domain's list query. */
export type TokenListQuery = Pick<ListQuery, 'filter' | 'orderBy' | 'offset' | 'pageSize'>;

/** Creation order without `$orderby`; the id completes every order. */
const tokenPaging = { primaryKey: 'id', defaultOrder: ['created_at', 'id'] } as const;

/**
 * Tenant-scoped storage of VPP tokens. Every method takes the tenant and puts it in the SQL itself:
 * another tenant's token is simply not found, never loaded and filtered afterwards.
 */
export interface VppTokenStore {
  /** Stores a new token with its sToken encrypted; the same sToken twice in a tenant is a conflict. */
  create(token: VppToken, sToken: DecodedSToken): Promise<VppToken>;
  /** The token, or undefined when the tenant has no token with that id. */
  get(tenantId: string, id: string): Promise<VppToken | undefined>;
  /** All the tenant's tokens, in creation order. */
  list(tenantId: string): Promise<VppToken[]>;
  /**
   * One page of the tenant's tokens for a list query: narrowed by its `$filter`, ordered by its `$orderby`
   * (creation order without one; the id last, so pages are stable), from its offset.
   */
  listPage(tenantId: string, list: TokenListQuery): Promise<ListPage<VppToken>>;
  /**
   * The same page as {@link listPage} (same rows, same order, same next offset), as ids and versions
   * only: one statement, read in one snapshot, a fraction of the cost of reading the rows.
   */
  listPageVersions(tenantId: string, list: TokenListQuery): Promise<ListPage<TokenVersion>>;
  /** The tenant's tokens of these ids that exist, in no particular order. */
  getMany(tenantId: string, ids: readonly string[]): Promise<VppToken[]>;
  /** How many tokens the tenant holds (those matching `filter` when one is given). */
  count(tenantId: string, filter?: FilterExpression): Promise<number>;
  /**
   * Changes the given properties (and the sToken, when renewed); returns the updated token or
   * undefined when the tenant has no such token.
   */
  update(
    tenantId: string,
    id: string,
    changes: VppTokenChanges,
    renewed?: DecodedSToken,
  ): Promise<VppToken | undefined>;
  /** Deletes the token and its action results; false when the tenant has no such token. */
  delete(tenantId: string, id: string): Promise<boolean>;
  /** Replaces a token's `tokenActionResults` (the sync engine's bookkeeping). */
  replaceActionResults(tenantId: string, id: string, results: readonly TokenActionResult[]): Promise<boolean>;
  /** Decrypts the token's `.vpptoken` content for a call to Apple; never for a response or a log. */
  readSToken(tenantId: string, id: string): Promise<string | undefined>;
}

export interface VppTokenStoreOptions {
  readonly storage: StorageEngine;
  readonly cipher: TokenCipher;
  readonly clock: () => Date;
  /** Most tokens a tenant may hold (Intune's limit, docs/graph-api.md "Tokens"; default 3,000). */
  readonly maxTokensPerTenant?: number;
}

/** Intune's limit of VPP tokens per tenant. */
export const defaultMaxTokensPerTenant = 3000;

// The sToken's associated data binds each ciphertext to its row: a copied ciphertext does not open.
const sealContext = (tenantId: string, id: string) => `vppd:vppToken:${tenantId}:${id}`;

/** Builds the Kysely-backed token store. */
export function createVppTokenStore(options: VppTokenStoreOptions): VppTokenStore {
  const { storage, cipher, clock } = options;
  const { db } = storage;
  // The reads of a caller outside a transaction (Graph's GETs) go through the engine's read
  // connection: they never queue behind a write transaction of this process that waits for a lock.
  const { reads } = storage;
  const maxTokens = options.maxTokensPerTenant ?? defaultMaxTokensPerTenant;

  const loadActionResults = async (
    executor: VppdDatabase | Transaction<DatabaseSchema>,
    tenantId: string,
    ids: readonly string[],
  ): Promise<Map<string, TokenActionResult[]>> => {
    const byToken = new Map<string, TokenActionResult[]>();
    // Chunked so a tenant's 3,000 tokens stay well under any engine's bound-parameter limit.
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const rows = await executor
        .selectFrom('vpp_token_action_results')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('token_id', 'in', chunk)
        .orderBy('token_id')
        .orderBy('position')
        .execute();
      for (const row of rows) {
        const list = byToken.get(row.token_id) ?? [];
        list.push(actionResultFromRow(row));
        byToken.set(row.token_id, list);
      }
    }
    return byToken;
  };

  const getWith = async (
    executor: VppdDatabase | Transaction<DatabaseSchema>,
    tenantId: string,
    id: string,
  ): Promise<VppToken | undefined> => {
    const row = await executor
      .selectFrom('vpp_tokens')
      .select(readColumns)
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return undefined;
    const results = await loadActionResults(executor, tenantId, [id]);
    return tokenFromRow(row, results.get(id) ?? []);
  };

  const baseQuery = (tenantId: string): TokenQuery =>
    reads.selectFrom('vpp_tokens').select(readColumns).where('tenant_id', '=', tenantId);

  const withActionResults = async (tenantId: string, rows: readonly VppTokenReadRow[]) => {
    const results = await loadActionResults(
      reads,
      tenantId,
      rows.map((r) => r.id),
    );
    return rows.map((row) => tokenFromRow(row, results.get(row.id) ?? []));
  };

  return {
    async create(token, sToken) {
      const sealed = cipher.seal(sToken.content, sealContext(token.tenantId, token.id));
      const now = dateToColumn(clock());
      try {
        await db.transaction().execute(async (trx) => {
          await trx
            .insertInto('tenants')
            .values({ id: token.tenantId, created_at: now })
            .onConflict((oc) => oc.column('id').doNothing())
            .execute();
          // Counted inside the write transaction with the tenant's row locked, so concurrent uploads
          // cannot pass the limit together (SQLite: its one writer; PostgreSQL: the row lock).
          await storage
            .lockForUpdate(trx.selectFrom('tenants').select('id').where('id', '=', token.tenantId))
            .execute();
          const held = await trx
            .selectFrom('vpp_tokens')
            .select((eb) => eb.fn.countAll<number | string | bigint>().as('n'))
            .where('tenant_id', '=', token.tenantId)
            .executeTakeFirstOrThrow();
          if (Number(held.n) >= maxTokens) {
            throw errors.conflict(`A tenant may hold at most ${maxTokens} VPP tokens; delete one first.`, {
              limit: maxTokens,
            });
          }
          await trx
            .insertInto('vpp_tokens')
            .values({
              ...changesToColumns(token),
              id: token.id,
              tenant_id: token.tenantId,
              stoken_ciphertext: sealed.ciphertext,
              stoken_iv: sealed.iv,
              stoken_tag: sealed.tag,
              stoken_fingerprint: cipher.fingerprint(sToken.token),
              created_at: now,
            } as VppTokenRow)
            .execute();
          await writeActionResults(trx, token.tenantId, token.id, token.tokenActionResults);
          await appendEvent(trx, storage, clock(), {
            tenantId: token.tenantId,
            tokenId: token.id,
            type: 'tokenCreated',
          });
        });
      } catch (error) {
        if (storage.isUniqueViolation(error)) throw duplicateSToken();
        throw error;
      }
      const stored = await getWith(db, token.tenantId, token.id);
      if (!stored) throw errors.internal('A token vanished right after it was stored.');
      return stored;
    },

    get: (tenantId, id) => getWith(reads, tenantId, id),

    async list(tenantId) {
      const rows = await baseQuery(tenantId).orderBy('created_at').orderBy('id').execute();
      return withActionResults(tenantId, rows);
    },

    async listPage(tenantId, list) {
      const page = await fetchListPage(baseQuery(tenantId), list, vppTokenColumns, tokenPaging);
      const tokens = await withActionResults(tenantId, page.rows);
      return page.nextOffset === undefined ? { rows: tokens } : { rows: tokens, nextOffset: page.nextOffset };
    },

    async listPageVersions(tenantId, list) {
      const query = reads
        .selectFrom('vpp_tokens')
        .select((eb) => [
          'id',
          eb
            .selectFrom('events')
            .select((e) => e.fn.max('events.seq').as('seq'))
            .whereRef('events.tenant_id', '=', 'vpp_tokens.tenant_id')
            .whereRef('events.token_id', '=', 'vpp_tokens.id')
            .as('version'),
        ])
        .where('tenant_id', '=', tenantId);
      const page = await fetchListPage(query, list, vppTokenColumns, tokenPaging);
      const rows = page.rows.map((row) => ({
        id: row.id,
        version: row.version === null || row.version === undefined ? null : String(row.version),
      }));
      return page.nextOffset === undefined ? { rows } : { rows, nextOffset: page.nextOffset };
    },

    async getMany(tenantId, ids) {
      const rows: VppTokenReadRow[] = [];
      // Chunked as the action results are: well under any engine's bound-parameter limit.
      for (let i = 0; i < ids.length; i += 500) {
        rows.push(
          ...(await baseQuery(tenantId)
            .where('id', 'in', ids.slice(i, i + 500))
            .execute()),
        );
      }
      return withActionResults(tenantId, rows);
    },

    count(tenantId, filter) {
      return countListRows(baseQuery(tenantId), { filter }, vppTokenColumns);
    },

    async update(tenantId, id, changes, renewed) {
      const values: Partial<VppTokenRow> = changesToColumns(changes);
      if (renewed) {
        const sealed = cipher.seal(renewed.content, sealContext(tenantId, id));
        values.stoken_ciphertext = sealed.ciphertext;
        values.stoken_iv = sealed.iv;
        values.stoken_tag = sealed.tag;
        values.stoken_fingerprint = cipher.fingerprint(renewed.token);
      }
      if (Object.keys(values).length > 0) {
        try {
          const found = await db.transaction().execute(async (trx) => {
            const result = await trx
              .updateTable('vpp_tokens')
              .set(values)
              .where('tenant_id', '=', tenantId)
              .where('id', '=', id)
              .executeTakeFirst();
            if (Number(result.numUpdatedRows) === 0) return false;
            const events: NewEvent[] = [
              { tenantId, tokenId: id, type: renewed ? 'tokenRenewed' : 'tokenUpdated' },
            ];
            // A renewal sets the state (unknown until the sync, or expired); written first, as SQLite's
            // write lock must be taken by a transaction's first statement, so the state left is not read.
            if (values.state !== undefined) {
              events.push({
                tenantId,
                tokenId: id,
                type: 'stateChanged',
                payload: { to: vppTokenState.fromValue(values.state) },
              });
            }
            await appendEvents(trx, storage, clock(), events);
            return true;
          });
          if (!found) return undefined;
        } catch (error) {
          if (storage.isUniqueViolation(error)) throw duplicateSToken();
          throw error;
        }
      }
      return getWith(db, tenantId, id);
    },

    delete(tenantId, id) {
      return db.transaction().execute(async (trx) => {
        const result = await trx
          .deleteFrom('vpp_tokens')
          .where('tenant_id', '=', tenantId)
          .where('id', '=', id)
          .executeTakeFirst();
        if (Number(result.numDeletedRows) === 0) return false;
        await appendEvent(trx, storage, clock(), { tenantId, tokenId: id, type: 'tokenDeleted' });
        return true;
      });
    },

    async replaceActionResults(tenantId, id, results) {
      return db.transaction().execute(async (trx) => {
        // The token's row locked: two replacements at once run one after the other.
        const exists = await storage
          .lockForUpdate(
            trx.selectFrom('vpp_tokens').select('id').where('tenant_id', '=', tenantId).where('id', '=', id),
          )
          .executeTakeFirst();
        if (!exists) return false;
        await trx
          .deleteFrom('vpp_token_action_results')
          .where('tenant_id', '=', tenantId)
          .where('token_id', '=', id)
          .execute();
        await writeActionResults(trx, tenantId, id, results);
        await appendEvent(trx, storage, clock(), {
          tenantId,
          tokenId: id,
          type: 'actionChanged',
          payload: { actions: results.map((r) => r.actionName) },
        });
        return true;
      });
    },

    async readSToken(tenantId, id) {
      const row = await db
        .selectFrom('vpp_tokens')
        .select(['stoken_ciphertext', 'stoken_iv', 'stoken_tag'])
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) return undefined;
      return cipher.open(
        { ciphertext: row.stoken_ciphertext, iv: row.stoken_iv, tag: row.stoken_tag },
        sealContext(tenantId, id),
      );
    },
  };
}

function duplicateSToken() {
  return errors.conflict('This VPP token (sToken) is already stored for this tenant.');
}

async function writeActionResults(
  trx: Transaction<DatabaseSchema>,
  tenantId: string,
  tokenId: string,
  results: readonly TokenActionResult[],
): Promise<void> {
  if (results.length === 0) return;
  await trx
    .insertInto('vpp_token_action_results')
    .values(results.map((r, position) => actionResultToRow(tenantId, tokenId, r, position)))
    .execute();
}

/** Converts a row (and its action results) to the domain entity. */
export function tokenFromRow(row: VppTokenReadRow, actionResults: readonly TokenActionResult[]): VppToken {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    organizationName: row.organization_name,
    vppTokenAccountType: vppTokenAccountType.fromValue(row.vpp_token_account_type),
    appleId: row.apple_id,
    expirationDateTime: dateFromColumn(row.expiration_date_time),
    lastSyncDateTime: dateFromColumn(row.last_sync_date_time),
    lastModifiedDateTime: dateFromColumn(row.last_modified_date_time),
    state: vppTokenState.fromValue(row.state),
    tokenActionResults: actionResults,
    lastSyncStatus: vppTokenSyncStatus.fromValue(row.last_sync_status),
    automaticallyUpdateApps: row.automatically_update_apps !== 0,
    countryOrRegion: row.country_or_region,
    dataSharingConsentGranted: row.data_sharing_consent_granted !== 0,
    displayName: row.display_name,
    locationName: row.location_name,
    claimTokenManagementFromExternalMdm: row.claim_token_management_from_external_mdm !== 0,
    roleScopeTagIds: parseStringArray(row.role_scope_tag_ids),
    appleDeviceAppDeliveryProtocolType: appleDeviceDeliveryProtocol.fromValue(
      row.apple_device_app_delivery_protocol_type,
      { includeUnknownEnumMembers: true },
    ),
  };
}

/** Converts the given entity properties to column values (only those present). */
function changesToColumns(changes: VppTokenChanges): Partial<VppTokenRow> {
  const out: Partial<VppTokenRow> = {};
  const c = changes;
  if (c.organizationName !== undefined) out.organization_name = c.organizationName;
  if (c.vppTokenAccountType !== undefined)
    out.vpp_token_account_type = vppTokenAccountType.toValue(c.vppTokenAccountType);
  if (c.appleId !== undefined) out.apple_id = c.appleId;
  if (c.expirationDateTime !== undefined) out.expiration_date_time = dateToColumn(c.expirationDateTime);
  if (c.lastSyncDateTime !== undefined) out.last_sync_date_time = dateToColumn(c.lastSyncDateTime);
  if (c.lastModifiedDateTime !== undefined)
    out.last_modified_date_time = dateToColumn(c.lastModifiedDateTime);
  if (c.state !== undefined) out.state = vppTokenState.toValue(c.state);
  if (c.lastSyncStatus !== undefined) out.last_sync_status = vppTokenSyncStatus.toValue(c.lastSyncStatus);
  if (c.automaticallyUpdateApps !== undefined)
    out.automatically_update_apps = booleanToColumn(c.automaticallyUpdateApps);
  if (c.countryOrRegion !== undefined) out.country_or_region = c.countryOrRegion;
  if (c.dataSharingConsentGranted !== undefined)
    out.data_sharing_consent_granted = booleanToColumn(c.dataSharingConsentGranted);
  if (c.displayName !== undefined) out.display_name = c.displayName;
  if (c.locationName !== undefined) out.location_name = c.locationName;
  if (c.claimTokenManagementFromExternalMdm !== undefined)
    out.claim_token_management_from_external_mdm = booleanToColumn(c.claimTokenManagementFromExternalMdm);
  if (c.roleScopeTagIds !== undefined) out.role_scope_tag_ids = JSON.stringify(c.roleScopeTagIds);
  if (c.appleDeviceAppDeliveryProtocolType !== undefined)
    out.apple_device_app_delivery_protocol_type = appleDeviceDeliveryProtocol.toValue(
      c.appleDeviceAppDeliveryProtocolType,
    );
  return out;
}

function parseStringArray(text: string): string[] {
  const parsed: unknown = JSON.parse(text);
  return Array.isArray(parsed) ? parsed.filter((v): v is string => typeof v === 'string') : [];
}
