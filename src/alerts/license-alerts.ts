import type { Kysely, Transaction } from 'kysely';
import type { DatabaseSchema } from '../storage/database-schema.js';
import type { VppdDatabase } from '../storage/open-database.js';
import { type AlertEvent, type AlertEventType, tokenLabel } from './alert-events.js';
import { enqueue } from './alert-scanner.js';
import type { AlertTables } from './alert-tables.js';

/** Apple's "unlimited" totalCount: such apps never run out. */
const unlimitedTotalCount = 2147483647;

/** When an app counts as low: at or below a percentage of its total, or a number of available licenses. */
export type LicenseThreshold = { readonly percent: number } | { readonly count: number };

/** The default: 10 % of the total. */
export const defaultLicenseThreshold: LicenseThreshold = { percent: 10 };

/** Where an app's available licenses stand. `empty`: none available and none assigned (nothing waits). */
export const licenseLevels = ['ok', 'low', 'empty', 'exhausted'] as const;
export type LicenseLevel = (typeof licenseLevels)[number];

/** An app's counts (one asset: adamId × pricingParam). */
export interface AppLicenseCounts {
  readonly adamId: string;
  readonly pricingParam: string;
  readonly totalCount: number;
  readonly assignedCount: number;
  readonly availableCount: number;
}

/** The level of an app's counts under a threshold; undefined for unlimited apps (never alerted). */
export function licenseLevelOf(
  counts: AppLicenseCounts,
  threshold: LicenseThreshold,
): LicenseLevel | undefined {
  if (counts.totalCount >= unlimitedTotalCount) return undefined;
  const available = counts.availableCount;
  if (available <= 0) return counts.assignedCount > 0 ? 'exhausted' : 'empty';
  const limit = 'percent' in threshold ? (counts.totalCount * threshold.percent) / 100 : threshold.count;
  return available <= limit ? 'low' : 'ok';
}

/**
 * The alert a level change is, if any — once per crossing: `licensesLow` when an app falls to the
 * threshold (from `ok`), `licensesExhausted` when an app with assignments reaches 0 available,
 * `licensesAvailable` when an app at 0 gets licenses again (an admin waiting to deploy). Going back up
 * to `ok`, or between `empty` and `exhausted`, is silent but re-arms the next crossing.
 */
export function licenseAlertOf(previous: LicenseLevel, next: LicenseLevel): AlertEventType | undefined {
  if (previous === next) return undefined;
  if (next === 'exhausted') return previous === 'empty' ? undefined : 'licensesExhausted';
  if (next === 'low') return previous === 'ok' ? 'licensesLow' : 'licensesAvailable';
  if (next === 'ok')
    return previous === 'empty' || previous === 'exhausted' ? 'licensesAvailable' : undefined;
  return undefined;
}

/** A threshold as the API takes it; a typed message when it is not one. */
export function parseLicenseThreshold(value: unknown): LicenseThreshold | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return 'a threshold is {"percent": 0-100} or {"count": n}';
  }
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o);
  if (
    keys.length === 1 &&
    typeof o.percent === 'number' &&
    Number.isInteger(o.percent) &&
    o.percent >= 0 &&
    o.percent <= 100
  ) {
    return { percent: o.percent };
  }
  if (
    keys.length === 1 &&
    typeof o.count === 'number' &&
    Number.isInteger(o.count) &&
    o.count >= 0 &&
    o.count <= 1_000_000
  ) {
    return { count: o.count };
  }
  return 'a threshold is {"percent": 0-100} or {"count": 0-1000000} (whole numbers)';
}

/** The tables of the license alerts (migration 0011). */
export type LicenseAlertTables = {
  alert_license_thresholds: {
    tenant_id: string;
    token_id: string;
    adam_id: string;
    kind: string;
    value: number;
  };
  alert_license_levels: {
    tenant_id: string;
    token_id: string;
    adam_id: string;
    pricing_param: string;
    level: string;
    seq: number;
    updated_at: string;
  };
  alert_license_snapshots: {
    token_id: string;
    tenant_id: string;
    run_id: string;
    total_license_count: number | string | bigint;
    available_license_count: number | string | bigint;
  };
};

type Db = Kysely<DatabaseSchema & AlertTables & LicenseAlertTables>;
type Trx = Transaction<DatabaseSchema & AlertTables & LicenseAlertTables>;

/** A token's thresholds: its default and per-app overrides (by adamId). */
export interface LicenseThresholds {
  readonly token: LicenseThreshold;
  readonly apps: Readonly<Record<string, LicenseThreshold>>;
}

export interface LicenseAlertsOptions {
  readonly db: VppdDatabase;
  readonly clock: () => Date;
  readonly newId: () => string;
}

/**
 * License alerts: compares each app's counts with the level it was last seen at and queues an alert
 * once per crossing (levels and outbox rows are in the database, and event ids carry the crossing's
 * number, so restarts and several processes alert once). Fed where counts change: every new or moved
 * snapshot (`scanSnapshots`, from the alert loop) and each applied notification (`evaluateApp`).
 */
export class LicenseAlerts {
  readonly #db: Db;
  readonly #o: LicenseAlertsOptions;

  constructor(options: LicenseAlertsOptions) {
    this.#db = options.db.withTables<AlertTables & LicenseAlertTables>();
    this.#o = options;
  }

  /** Evaluates every token whose snapshot changed since it was last evaluated; answers alerts queued. */
  async scanSnapshots(): Promise<number> {
    const rows = await this.#db
      .selectFrom('license_snapshots as s')
      .leftJoin('alert_license_snapshots as e', 'e.token_id', 's.token_id')
      .select([
        's.tenant_id',
        's.token_id',
        's.run_id',
        's.total_license_count',
        's.available_license_count',
        'e.run_id as seen_run',
        'e.total_license_count as seen_total',
        'e.available_license_count as seen_available',
      ])
      .execute();
    let queued = 0;
    for (const row of rows) {
      const unchanged =
        row.seen_run === row.run_id &&
        Number(row.seen_total) === Number(row.total_license_count) &&
        Number(row.seen_available) === Number(row.available_license_count);
      if (unchanged) continue;
      queued += await this.#evaluate(row.tenant_id, row.token_id, row.run_id, undefined);
      const values = {
        tenant_id: row.tenant_id,
        run_id: row.run_id,
        total_license_count: Number(row.total_license_count),
        available_license_count: Number(row.available_license_count),
      };
      await this.#db
        .insertInto('alert_license_snapshots')
        .values({ token_id: row.token_id, ...values })
        .onConflict((oc) => oc.column('token_id').doUpdateSet(values))
        .execute();
    }
    return queued;
  }

  /** Evaluates one app of a token after its counts moved (an applied notification). */
  async evaluateApp(tenantId: string, tokenId: string, counts: AppLicenseCounts): Promise<number> {
    return this.#evaluate(tenantId, tokenId, undefined, counts);
  }

  /** A token's thresholds (the default when none is set). */
  async thresholds(tenantId: string, tokenId: string): Promise<LicenseThresholds> {
    const rows = await this.#db
      .selectFrom('alert_license_thresholds')
      .select(['adam_id', 'kind', 'value'])
      .where('tenant_id', '=', tenantId)
      .where('token_id', '=', tokenId)
      .execute();
    let token = defaultLicenseThreshold;
    const apps: Record<string, LicenseThreshold> = {};
    for (const row of rows) {
      const threshold: LicenseThreshold =
        row.kind === 'count' ? { count: row.value } : { percent: row.value };
      if (row.adam_id === '') token = threshold;
      else apps[row.adam_id] = threshold;
    }
    return { token, apps };
  }

  /** Replaces a token's thresholds; the next evaluation uses them (and re-checks the token). */
  async setThresholds(tenantId: string, tokenId: string, thresholds: LicenseThresholds): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      await trx.deleteFrom('alert_license_thresholds').where('token_id', '=', tokenId).execute();
      const row = (adamId: string, t: LicenseThreshold) => ({
        tenant_id: tenantId,
        token_id: tokenId,
        adam_id: adamId,
        kind: 'count' in t ? 'count' : 'percent',
        value: 'count' in t ? t.count : t.percent,
      });
      await trx.insertInto('alert_license_thresholds').values(row('', thresholds.token)).execute();
      for (const [adamId, t] of Object.entries(thresholds.apps)) {
        await trx.insertInto('alert_license_thresholds').values(row(adamId, t)).execute();
      }
      // Evaluate the token again at the next scan, under the new thresholds.
      await trx.deleteFrom('alert_license_snapshots').where('token_id', '=', tokenId).execute();
    });
  }

  async #evaluate(
    tenantId: string,
    tokenId: string,
    runId: string | undefined,
    only: AppLicenseCounts | undefined,
  ): Promise<number> {
    const thresholds = await this.thresholds(tenantId, tokenId);
    const apps: AppLicenseCounts[] =
      only !== undefined
        ? [only]
        : (
            await this.#db
              .selectFrom('license_assets')
              .select(['adam_id', 'pricing_param', 'total_count', 'assigned_count', 'available_count'])
              .where('run_id', '=', runId!)
              .execute()
          ).map((a) => ({
            adamId: a.adam_id,
            pricingParam: a.pricing_param,
            totalCount: Number(a.total_count),
            assignedCount: Number(a.assigned_count),
            availableCount: Number(a.available_count),
          }));
    const stored = new Map(
      (
        await this.#db
          .selectFrom('alert_license_levels')
          .select(['adam_id', 'pricing_param', 'level', 'seq'])
          .where('token_id', '=', tokenId)
          .$if(only !== undefined, (q) =>
            q.where('adam_id', '=', only!.adamId).where('pricing_param', '=', only!.pricingParam),
          )
          .execute()
      ).map((r) => [`${r.adam_id}\n${r.pricing_param}`, r]),
    );
    const changes: {
      app: AppLicenseCounts;
      level: LicenseLevel;
      seq: number;
      alert?: AlertEventType;
      threshold: LicenseThreshold;
    }[] = [];
    for (const app of apps) {
      const threshold = thresholds.apps[app.adamId] ?? thresholds.token;
      const level = licenseLevelOf(app, threshold);
      if (level === undefined) continue;
      const before = stored.get(`${app.adamId}\n${app.pricingParam}`);
      const previous = (before?.level ?? 'ok') as LicenseLevel;
      if (before !== undefined && previous === level) continue;
      if (before === undefined && level === 'ok') continue;
      const alert = licenseAlertOf(previous, level);
      changes.push({ app, level, seq: (before?.seq ?? 0) + 1, threshold, ...(alert ? { alert } : {}) });
    }
    if (changes.length === 0) return 0;
    const now = this.#o.clock();
    return this.#db.transaction().execute(async (trx) => {
      const token = await trx
        .selectFrom('vpp_tokens')
        .select(['id', 'display_name', 'organization_name'])
        .where('tenant_id', '=', tenantId)
        .where('id', '=', tokenId)
        .executeTakeFirst();
      if (token === undefined) return 0;
      const label = tokenLabel({
        id: token.id,
        displayName: token.display_name,
        organizationName: token.organization_name,
      });
      let queued = 0;
      for (const change of changes) {
        const values = {
          tenant_id: tenantId,
          level: change.level,
          seq: change.seq,
          updated_at: now.toISOString(),
        };
        await trx
          .insertInto('alert_license_levels')
          .values({
            token_id: tokenId,
            adam_id: change.app.adamId,
            pricing_param: change.app.pricingParam,
            ...values,
          })
          .onConflict((oc) => oc.columns(['token_id', 'adam_id', 'pricing_param']).doUpdateSet(values))
          .execute();
        if (change.alert === undefined) continue;
        const name = await appNameOf(trx, change.app.adamId);
        queued += await enqueue(
          // The outbox insert reads and writes only the alert tables, which this transaction has too.
          trx as unknown as Transaction<DatabaseSchema & AlertTables>,
          now,
          this.#o.newId,
          licenseEvent(change.alert, {
            tenantId,
            tokenId,
            label,
            appName: name,
            counts: change.app,
            threshold: change.threshold,
            seq: change.seq,
            now,
          }),
        );
      }
      return queued;
    });
  }
}

async function appNameOf(trx: Trx, adamId: string): Promise<string | undefined> {
  const row = await trx
    .selectFrom('license_app_metadata')
    .select('name')
    .where('adam_id', '=', adamId)
    .executeTakeFirst();
  return row?.name ?? undefined;
}

/** The alert of a crossing: one sentence Slack and Teams show, and the counts in `data`. */
export function licenseEvent(
  type: AlertEventType,
  c: {
    readonly tenantId: string;
    readonly tokenId: string;
    readonly label: string;
    readonly appName: string | undefined;
    readonly counts: AppLicenseCounts;
    readonly threshold: LicenseThreshold;
    readonly seq: number;
    readonly now: Date;
  },
): AlertEvent {
  const { counts } = c;
  const app = c.appName === undefined ? `app ${counts.adamId}` : `"${c.appName}" (${counts.adamId})`;
  const where = `${app} of VPP token ${c.label}`;
  const limit = 'percent' in c.threshold ? `${c.threshold.percent} %` : `${c.threshold.count}`;
  const text =
    type === 'licensesLow'
      ? `${where} is running low on licenses: ${counts.availableCount} of ${counts.totalCount} available (alert at ${limit}).`
      : type === 'licensesExhausted'
        ? `${where} has no licenses left: all ${counts.totalCount} are assigned; new assignments will fail until more are bought.`
        : `${where} has licenses again: ${counts.availableCount} of ${counts.totalCount} available.`;
  return {
    eventId: `${type}:${c.tokenId}:${counts.adamId}:${counts.pricingParam}:${c.seq}`,
    type,
    tenantId: c.tenantId,
    tokenId: c.tokenId,
    occurredAt: c.now,
    text,
    data: {
      adamId: counts.adamId,
      pricingParam: counts.pricingParam,
      appName: c.appName ?? null,
      totalLicenseCount: counts.totalCount,
      usedLicenseCount: counts.assignedCount,
      availableLicenseCount: counts.availableCount,
      threshold: c.threshold,
    },
  };
}
