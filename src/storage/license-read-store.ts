import { sql } from 'kysely';
import {
  type AppleDeviceDeliveryProtocol,
  appleDeviceDeliveryProtocol,
  type VppTokenAccountType,
  vppTokenAccountType,
} from '../domain/enums.js';
import { type ListQuery, typeProperty } from '../domain/list-query.js';
import { decodeChunk, readAppLicenses } from './assignment-chunks.js';
import { countListRows, fetchListPage, type ListColumns, type ListPage } from './list-query-compiler.js';
import type { VppdDatabase } from './open-database.js';
import { dateFromColumn } from './vpp-token-columns.js';

// Reads of the tenant's *current* license snapshots: every query joins license rows through
// `license_snapshots` (rows of other runs are staging or garbage) and names the tenant in its SQL.

/** The Apple platform a VPP app is served as (`#microsoft.graph.iosVppApp` / `macOsVppApp`). */
export const vppAppPlatforms = ['iOS', 'macOS'] as const;
export type VppAppPlatform = (typeof vppAppPlatforms)[number];

/** Identity of a licensed asset of a token: Apple's `(adamId, pricingParam)`. */
export interface VppAppKey {
  readonly tokenId: string;
  readonly adamId: string;
  readonly pricingParam: string;
}

/** A licensed app of a token's current snapshot, with its token and (when known) its metadata. */
export interface VppAppRecord extends VppAppKey {
  readonly platform: VppAppPlatform;
  readonly totalCount: number;
  readonly assignedCount: number;
  readonly availableCount: number;
  readonly deviceAssignable: boolean | null;
  readonly supportedPlatforms: readonly string[];
  /** From Apple's content metadata lookup; null until the lookup knew the adamId. */
  readonly name: string | null;
  readonly bundleId: string | null;
  readonly deviceFamilies: readonly string[] | null;
  /** When the token's current snapshot was committed (the data is as of then). */
  readonly snapshotCommittedAt: Date;
  readonly token: {
    readonly organizationName: string | null;
    readonly appleId: string | null;
    readonly accountType: VppTokenAccountType;
    readonly displayName: string | null;
    readonly countryOrRegion: string | null;
    readonly deliveryProtocol: AppleDeviceDeliveryProtocol;
  };
}

/** One license of a snapshot: a device (`serialNumber`) or a user (`clientUserId`) holds it. */
export interface AssignedLicenseRecord {
  readonly seq: number;
  readonly serialNumber: string | null;
  readonly clientUserId: string | null;
}

/** A token's licenses of one app, summed over the app's assets (pricing params). */
export interface TokenLicenseSummaryRecord {
  readonly tokenId: string;
  readonly appleId: string | null;
  readonly organizationName: string | null;
  readonly usedLicenseCount: number;
  readonly availableLicenseCount: number;
}

/** A token with a current snapshot. */
export interface SnapshotPointer {
  readonly tokenId: string;
  readonly runId: string;
}

/** Who holds licenses in a snapshot, with how many licenses each holds (revocable ones, or unknown). */
export interface SnapshotHolders {
  readonly runId: string;
  readonly serialNumbers: ReadonlyMap<string, number>;
  readonly clientUserIds: ReadonlyMap<string, number>;
}

/** Options of a VPP app list. */
export interface VppAppListOptions {
  /** Only apps served as this platform (a type-cast segment). */
  readonly platform?: VppAppPlatform;
}

/**
 * Tenant-scoped reads of the current license snapshots: VPP apps (list, count, get), the licenses of
 * an app (keyset pages), license sums by bundle id, and the holders a revoke works from.
 */
export interface LicenseReadStore {
  /** One page of VPP apps for a list query (`$filter`, `$orderby`, offset and page size). */
  listApps(tenantId: string, list: ListQuery, options?: VppAppListOptions): Promise<ListPage<VppAppRecord>>;
  /** How many VPP apps match the list's `$filter` (and platform). */
  countApps(tenantId: string, list: Pick<ListQuery, 'filter'>, options?: VppAppListOptions): Promise<number>;
  /** One VPP app by its key, undefined when the tenant's current snapshot has no such app. */
  getApp(tenantId: string, key: VppAppKey): Promise<VppAppRecord | undefined>;
  /** The tenant's tokens that have a current snapshot. */
  snapshotPointers(tenantId: string): Promise<SnapshotPointer[]>;
  /** The app keys (adamId, pricingParam) of one token's current snapshot. */
  appKeys(tenantId: string, tokenId: string): Promise<VppAppKey[]>;
  /** Licenses of one app, in Apple's order, from `seq >= fromSeq`, at most `limit`. */
  listAssignedLicenses(
    tenantId: string,
    key: VppAppKey,
    page: { readonly fromSeq: number; readonly limit: number },
  ): Promise<AssignedLicenseRecord[]>;
  /** How many licenses of one app the snapshot holds. */
  countAssignedLicenses(tenantId: string, key: VppAppKey): Promise<number>;
  /** Per token holding an app with this bundle id: its used and available licenses. */
  licenseSummariesForBundle(tenantId: string, bundleId: string): Promise<TokenLicenseSummaryRecord[]>;
  /** Devices and users holding licenses in the token's current snapshot; undefined without one. */
  snapshotHolders(tenantId: string, tokenId: string): Promise<SnapshotHolders | undefined>;
}

/**
 * The platform of an app: the lookup's `kind` when known (`macSoftware` → macOS, `iosSoftware` → iOS),
 * else Apple's `supportedPlatforms` (iOS first: a universal app is an iOS app that also runs on Macs),
 * else iOS — Graph has no "unknown" VPP app type and `volumestore` apps are iOS apps by default.
 */
const platformExpression = sql<string>`(case
  when m.kind = 'macSoftware' then 'macOS'
  when m.kind = 'iosSoftware' then 'iOS'
  when a.supported_platforms like '%"iOS"%' then 'iOS'
  when a.supported_platforms like '%"macOS"%' then 'macOS'
  else 'iOS' end)`;

/** An app's Graph type (`isof` filters compare it), from the same platform decision. */
const typeNameExpression = sql<string>`(case when ${platformExpression} = 'macOS'
  then 'microsoft.graph.macOsVppApp' else 'microsoft.graph.iosVppApp' end)`;

/** Wire property → column of the VPP app query (the `$filter`/`$orderby` compiler reads this). */
export const vppAppColumns: ListColumns = {
  [typeProperty]: { column: 'platform', encoding: { kind: 'text' }, expression: typeNameExpression },
  displayName: { column: 'm.name', encoding: { kind: 'text' } },
  bundleId: { column: 'm.bundle_id', encoding: { kind: 'text' } },
  vppTokenId: { column: 'a.token_id', encoding: { kind: 'id' } },
  totalLicenseCount: { column: 'a.total_count', encoding: { kind: 'integer' } },
  usedLicenseCount: { column: 'a.assigned_count', encoding: { kind: 'integer' } },
};

// Apple's productType of apps; books are not mobileApps (Graph serves them as managedEBooks).
const appProductType = 'App';

/** Builds the Kysely-backed license read store. */
export function createLicenseReadStore(options: { readonly db: VppdDatabase }): LicenseReadStore {
  const { db } = options;

  const appsQuery = (tenantId: string, platform: VppAppPlatform | undefined) => {
    const query = db
      .selectFrom('license_snapshots as s')
      .innerJoin('license_assets as a', 'a.run_id', 's.run_id')
      .innerJoin('vpp_tokens as t', (join) =>
        join.onRef('t.id', '=', 's.token_id').onRef('t.tenant_id', '=', 's.tenant_id'),
      )
      .leftJoin('license_app_metadata as m', 'm.adam_id', 'a.adam_id')
      .where('s.tenant_id', '=', tenantId)
      .where('a.product_type', '=', appProductType)
      .select([
        'a.token_id',
        'a.adam_id',
        'a.pricing_param',
        'a.total_count',
        'a.assigned_count',
        'a.available_count',
        'a.device_assignable',
        'a.supported_platforms',
        'm.name',
        'm.bundle_id',
        'm.device_families',
        's.committed_at',
        't.organization_name',
        't.apple_id',
        't.vpp_token_account_type',
        't.display_name',
        't.country_or_region',
        't.apple_device_app_delivery_protocol_type',
      ])
      .select(platformExpression.as('platform'));
    return platform === undefined ? query : query.where(platformExpression, '=', platform);
  };

  type AppRow = Awaited<ReturnType<ReturnType<typeof appsQuery>['execute']>>[number];

  // One key range (run_key, adam_id, pricing_param, first_seq…) of the current snapshot's chunks.
  const assignmentsOf = (tenantId: string, key: VppAppKey) =>
    db
      .selectFrom('license_assignment_chunks as l')
      .where('l.run_key', '=', (eb) =>
        eb
          .selectFrom('license_snapshots as s')
          .innerJoin('license_runs as r', 'r.run_id', 's.run_id')
          .select('r.run_key')
          .where('s.tenant_id', '=', tenantId)
          .where('s.token_id', '=', key.tokenId),
      )
      .where('l.adam_id', '=', key.adamId)
      .where('l.pricing_param', '=', key.pricingParam);

  return {
    async listApps(tenantId, list, listOptions = {}) {
      // Token, adamId and pricing param identify an app: together they make the order total.
      const page = await fetchListPage(appsQuery(tenantId, listOptions.platform), list, vppAppColumns, {
        primaryKey: 'a.token_id',
        keyRest: ['a.adam_id', 'a.pricing_param'],
      });
      const rows = page.rows.map(appFromRow);
      return page.nextOffset === undefined ? { rows } : { rows, nextOffset: page.nextOffset };
    },

    countApps(tenantId, list, listOptions = {}) {
      return countListRows(appsQuery(tenantId, listOptions.platform), list, vppAppColumns);
    },

    async getApp(tenantId, key) {
      const row = await appsQuery(tenantId, undefined)
        .where('s.token_id', '=', key.tokenId)
        .where('a.adam_id', '=', key.adamId)
        .where('a.pricing_param', '=', key.pricingParam)
        .executeTakeFirst();
      return row === undefined ? undefined : appFromRow(row);
    },

    async snapshotPointers(tenantId) {
      const rows = await db
        .selectFrom('license_snapshots')
        .select(['token_id', 'run_id'])
        .where('tenant_id', '=', tenantId)
        .orderBy('token_id')
        .execute();
      return rows.map((r) => ({ tokenId: r.token_id, runId: r.run_id }));
    },

    async appKeys(tenantId, tokenId) {
      const rows = await db
        .selectFrom('license_snapshots as s')
        .innerJoin('license_assets as a', 'a.run_id', 's.run_id')
        .select(['a.adam_id', 'a.pricing_param'])
        .where('s.tenant_id', '=', tenantId)
        .where('s.token_id', '=', tokenId)
        .where('a.product_type', '=', appProductType)
        .execute();
      return rows.map((r) => ({ tokenId, adamId: r.adam_id, pricingParam: r.pricing_param }));
    },

    async listAssignedLicenses(tenantId, key, page) {
      if (page.limit <= 0) return [];
      return readAppLicenses(
        (afterFirstSeq, count) =>
          assignmentsOf(tenantId, key)
            .select(['l.first_seq', 'l.seqs', 'l.holders'])
            .where('l.last_seq', '>=', page.fromSeq)
            .where('l.first_seq', '>', afterFirstSeq)
            .orderBy('l.first_seq')
            .limit(count)
            .execute(),
        page.fromSeq,
        page.limit,
      );
    },

    async countAssignedLicenses(tenantId, key) {
      const row = await assignmentsOf(tenantId, key)
        .select((eb) => eb.fn.sum<number | string | bigint | null>('l.holder_count').as('n'))
        .executeTakeFirst();
      return Number(row?.n ?? 0);
    },

    async licenseSummariesForBundle(tenantId, bundleId) {
      const rows = await db
        .selectFrom('license_snapshots as s')
        .innerJoin('license_assets as a', 'a.run_id', 's.run_id')
        .innerJoin('license_app_metadata as m', 'm.adam_id', 'a.adam_id')
        .innerJoin('vpp_tokens as t', (join) =>
          join.onRef('t.id', '=', 's.token_id').onRef('t.tenant_id', '=', 's.tenant_id'),
        )
        .where('s.tenant_id', '=', tenantId)
        .where('m.bundle_id', '=', bundleId)
        .select(['s.token_id', 't.apple_id', 't.organization_name', 't.created_at'])
        .select((eb) => [
          eb.fn.sum<number | string | bigint>('a.assigned_count').as('used'),
          eb.fn.sum<number | string | bigint>('a.available_count').as('available'),
        ])
        .groupBy(['s.token_id', 't.apple_id', 't.organization_name', 't.created_at'])
        .orderBy('t.created_at')
        .orderBy('s.token_id')
        .execute();
      return rows.map((r) => ({
        tokenId: r.token_id,
        appleId: r.apple_id,
        organizationName: r.organization_name,
        // PostgreSQL sums integers as bigint (text on the wire).
        usedLicenseCount: Number(r.used),
        availableLicenseCount: Number(r.available),
      }));
    },

    async snapshotHolders(tenantId, tokenId) {
      const snapshot = await db
        .selectFrom('license_snapshots as s')
        .leftJoin('license_runs as r', 'r.run_id', 's.run_id')
        .select(['s.run_id', 'r.run_key'])
        .where('s.tenant_id', '=', tenantId)
        .where('s.token_id', '=', tokenId)
        .executeTakeFirst();
      if (!snapshot) return undefined;
      const serialNumbers = new Map<string, number>();
      const clientUserIds = new Map<string, number>();
      // A snapshot without assignments staged none, so it has no run key.
      if (snapshot.run_key === null) return { runId: snapshot.run_id, serialNumbers, clientUserIds };
      // Licenses Apple says are not revocable (books) are not counted; unknown revocability counts.
      const rows = await db
        .selectFrom('license_assignment_chunks as l')
        .leftJoin('license_assets as a', (join) =>
          join
            .on('a.run_id', '=', snapshot.run_id)
            .onRef('a.adam_id', '=', 'l.adam_id')
            .onRef('a.pricing_param', '=', 'l.pricing_param'),
        )
        .where('l.run_key', '=', Number(snapshot.run_key))
        .select(['l.seqs', 'l.holders', 'a.revocable'])
        .execute();
      // Every holder is listed, with the number of its licenses that count (0 when none does).
      for (const row of rows) {
        const counts = row.revocable === 0 ? 0 : 1;
        for (const license of decodeChunk(row)) {
          if (license.serialNumber !== null) {
            serialNumbers.set(license.serialNumber, (serialNumbers.get(license.serialNumber) ?? 0) + counts);
          } else if (license.clientUserId !== null) {
            clientUserIds.set(license.clientUserId, (clientUserIds.get(license.clientUserId) ?? 0) + counts);
          }
        }
      }
      return { runId: snapshot.run_id, serialNumbers, clientUserIds };
    },
  };

  function appFromRow(row: AppRow): VppAppRecord {
    return {
      tokenId: row.token_id,
      adamId: row.adam_id,
      pricingParam: row.pricing_param,
      platform: row.platform === 'macOS' ? 'macOS' : 'iOS',
      totalCount: Number(row.total_count),
      assignedCount: Number(row.assigned_count),
      availableCount: Number(row.available_count),
      deviceAssignable: row.device_assignable === null ? null : row.device_assignable !== 0,
      supportedPlatforms: parseStrings(row.supported_platforms) ?? [],
      name: row.name,
      bundleId: row.bundle_id,
      deviceFamilies: row.device_families === null ? null : (parseStrings(row.device_families) ?? null),
      snapshotCommittedAt: dateFromColumn(row.committed_at),
      token: {
        organizationName: row.organization_name,
        appleId: row.apple_id,
        accountType: vppTokenAccountType.fromValue(row.vpp_token_account_type),
        displayName: row.display_name,
        countryOrRegion: row.country_or_region,
        deliveryProtocol: appleDeviceDeliveryProtocol.fromValue(row.apple_device_app_delivery_protocol_type, {
          includeUnknownEnumMembers: true,
        }),
      },
    };
  }
}

function parseStrings(text: string): string[] | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed.filter((v): v is string => typeof v === 'string') : undefined;
  } catch {
    return undefined;
  }
}
