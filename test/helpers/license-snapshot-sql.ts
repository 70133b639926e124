// Reads of a token's current license snapshot in plain SQL on the test's own database: what the tests
// check a sync stored, without a test-only half in the production LicenseStore.
import { decodeChunk } from '../../src/storage/assignment-chunks.js';
import type {
  AppMetadataInput,
  LicenseAssetInput,
  LicenseAssignmentInput,
} from '../../src/storage/license-store.js';
import type { VppdDatabase } from '../../src/storage/open-database.js';
import { dateFromColumn } from '../../src/storage/vpp-token-columns.js';

/** The current snapshot of a token: which run it came from, Apple's version and the totals. */
export interface LicenseSnapshot {
  readonly tokenId: string;
  readonly runId: string;
  readonly versionId: string;
  readonly locationUid: string;
  readonly committedAt: Date;
  readonly assetCount: number;
  readonly assignmentCount: number;
  readonly totalLicenseCount: number;
  readonly usedLicenseCount: number;
  readonly availableLicenseCount: number;
}

/** A stored asset of a token's current snapshot, with its metadata when the lookup knew it. */
export interface LicenseAsset extends LicenseAssetInput {
  readonly tokenId: string;
  readonly metadata: (AppMetadataInput & { readonly fetchedAt: Date }) | undefined;
}

/** A stored assignment of a token's current snapshot, in Apple's order (`seq`). */
export interface LicenseAssignment extends LicenseAssignmentInput {
  readonly seq: number;
}

export interface AssignmentQuery {
  readonly adamId?: string;
  readonly pricingParam?: string;
  /** Only assignments after this `seq` (keyset paging). */
  readonly afterSeq?: number;
  readonly limit: number;
}

/** The token's current snapshot, undefined before its first successful sync. */
export async function currentSnapshot(
  db: VppdDatabase,
  tenantId: string,
  tokenId: string,
): Promise<LicenseSnapshot | undefined> {
  const row = await db
    .selectFrom('license_snapshots')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('token_id', '=', tokenId)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    tokenId: row.token_id,
    runId: row.run_id,
    versionId: row.version_id,
    locationUid: row.location_uid,
    committedAt: dateFromColumn(row.committed_at),
    assetCount: row.asset_count,
    assignmentCount: row.assignment_count,
    totalLicenseCount: Number(row.total_license_count),
    usedLicenseCount: Number(row.used_license_count),
    availableLicenseCount: Number(row.available_license_count),
  };
}

/** Every asset of the token's current snapshot, with metadata. */
export async function listAssets(
  db: VppdDatabase,
  tenantId: string,
  tokenId: string,
): Promise<LicenseAsset[]> {
  const rows = await db
    .selectFrom('license_snapshots as s')
    .innerJoin('license_assets as a', 'a.run_id', 's.run_id')
    .leftJoin('license_app_metadata as m', 'm.adam_id', 'a.adam_id')
    .selectAll('a')
    .select([
      'm.name as m_name',
      'm.bundle_id as m_bundle_id',
      'm.kind as m_kind',
      'm.artwork_url as m_artwork_url',
      'm.device_families as m_device_families',
      'm.fetched_at as m_fetched_at',
    ])
    .where('s.tenant_id', '=', tenantId)
    .where('s.token_id', '=', tokenId)
    .orderBy('a.adam_id')
    .orderBy('a.pricing_param')
    .execute();
  return rows.map((r) => ({
    tokenId: r.token_id,
    adamId: r.adam_id,
    pricingParam: r.pricing_param,
    productType: r.product_type ?? undefined,
    totalCount: Number(r.total_count),
    assignedCount: Number(r.assigned_count),
    availableCount: Number(r.available_count),
    retiredCount: Number(r.retired_count),
    deviceAssignable: r.device_assignable === null ? undefined : r.device_assignable !== 0,
    revocable: r.revocable === null ? undefined : r.revocable !== 0,
    supportedPlatforms: parseStrings(r.supported_platforms),
    metadata:
      r.m_fetched_at === null
        ? undefined
        : {
            adamId: r.adam_id,
            name: r.m_name ?? undefined,
            bundleId: r.m_bundle_id ?? undefined,
            kind: r.m_kind ?? undefined,
            artworkUrl: r.m_artwork_url ?? undefined,
            deviceFamilies: parseStrings(r.m_device_families ?? '[]'),
            fetchedAt: dateFromColumn(r.m_fetched_at),
          },
  }));
}

/** Assignments of the token's current snapshot, optionally of one asset, in `seq` order. */
export async function listAssignments(
  db: VppdDatabase,
  tenantId: string,
  tokenId: string,
  query: AssignmentQuery,
): Promise<LicenseAssignment[]> {
  if (query.limit <= 0) return [];
  const afterSeq = query.afterSeq ?? -1;
  let select = db
    .selectFrom('license_snapshots as s')
    .innerJoin('license_runs as r', 'r.run_id', 's.run_id')
    .innerJoin('license_assignment_chunks as c', 'c.run_key', 'r.run_key')
    .select(['c.adam_id', 'c.pricing_param', 'c.first_seq', 'c.seqs', 'c.holders'])
    .where('s.tenant_id', '=', tenantId)
    .where('s.token_id', '=', tokenId)
    .where('c.last_seq', '>', afterSeq);
  if (query.adamId !== undefined) select = select.where('c.adam_id', '=', query.adamId);
  if (query.pricingParam !== undefined) select = select.where('c.pricing_param', '=', query.pricingParam);
  const out: LicenseAssignment[] = [];
  for (const row of await select.execute()) {
    for (const a of decodeChunk(row)) {
      if (a.seq <= afterSeq) continue;
      out.push({
        seq: a.seq,
        adamId: row.adam_id,
        pricingParam: row.pricing_param,
        ...(a.serialNumber === null ? {} : { serialNumber: a.serialNumber }),
        ...(a.clientUserId === null ? {} : { clientUserId: a.clientUserId }),
      });
    }
  }
  out.sort((x, y) => x.seq - y.seq);
  return out.slice(0, query.limit);
}

/** Number of license rows a run holds (assets, and licenses in its assignment chunks). */
export async function countRunRows(
  db: VppdDatabase,
  runId: string,
): Promise<{ assets: number; assignments: number }> {
  const assets = await db
    .selectFrom('license_assets')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('run_id', '=', runId)
    .executeTakeFirstOrThrow();
  const assignments = await db
    .selectFrom('license_assignment_chunks as l')
    .innerJoin('license_runs as r', 'r.run_key', 'l.run_key')
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number | string>('l.holder_count'), eb.lit(0)).as('n'))
    .where('r.run_id', '=', runId)
    .executeTakeFirstOrThrow();
  return { assets: Number(assets.n), assignments: Number(assignments.n) };
}

function parseStrings(text: string): string[] {
  const parsed: unknown = JSON.parse(text);
  return Array.isArray(parsed) ? parsed.filter((v): v is string => typeof v === 'string') : [];
}
