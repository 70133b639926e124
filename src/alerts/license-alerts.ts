import type { Kysely, Transaction } from 'kysely';
import type { DatabaseSchema } from '../storage/database-schema.js';
import { eventFromRow } from '../storage/event-store.js';
import type { VppdDatabase } from '../storage/open-database.js';
import { type AlertEvent, type AlertEventType, tokenLabel } from './alert-events.js';
import { enqueue } from './alert-scanner.js';
import type { AlertTables } from './alert-tables.js';
import { EventHoles } from './event-holes.js';

/** License alerts' row in `event_cursors`: every event up to its `seq` has been looked at. */
export const licenseAlertCursorName = 'licenseAlerts';

/** Events after which a token's counts may have moved: a sync's new snapshot, or a patched one. */
const countEvents: ReadonlySet<string> = new Set(['syncCompleted', 'licensesChanged']);

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
  /** Events read per batch (default 500). */
  readonly batchSize?: number;
  /** How long a hole in the event sequence is waited for (default 30 s; see AlertScannerOptions). */
  readonly gapGraceMs?: number;
}

/**
 * License alerts: compares each app's counts with the level it was last seen at and queues an alert
 * once per crossing (levels and outbox rows are in the database, and event ids carry the crossing's
 * number, so restarts and several processes alert once). Fed where counts change: the tokens whose
 * snapshot was replaced or patched, by the event log (`scanSnapshots`, from the alert loop), and each
 * applied notification (`evaluateApp`).
 */
export class LicenseAlerts {
  readonly #db: Db;
  readonly #o: LicenseAlertsOptions;
  readonly #holes: EventHoles;
  readonly #reads = { tokens: 0, assetRows: 0 };

  constructor(options: LicenseAlertsOptions) {
    this.#db = options.db.withTables<AlertTables & LicenseAlertTables>();
    this.#o = options;
    this.#holes = new EventHoles(options.gapGraceMs ?? 30_000);
  }

  /**
   * Evaluates every token whose counts may have moved since the last scan: the tokens named by
   * `syncCompleted` and `licensesChanged` events after this reader's durable cursor (`event_cursors`
   * row `licenseAlerts`), read in batches; a token without such an event is not read at all. The first
   * scan of a database (no cursor yet) evaluates every snapshot once and starts the cursor at the log's
   * end. The cursor moves after the evaluations (compare-and-swap): a crash re-evaluates a batch, which
   * queues nothing twice (levels and outbox event ids make alerts once per crossing). Answers alerts queued.
   */
  async scanSnapshots(): Promise<number> {
    const now = this.#o.clock();
    let queued = 0;
    let cursor = await this.#cursor();
    if (cursor === undefined) {
      const end = await this.#db
        .selectFrom('events')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .executeTakeFirst();
      const tokens = await this.#db
        .selectFrom('license_snapshots')
        .select(['tenant_id', 'token_id'])
        .execute();
      for (const t of tokens) queued += await this.#evaluateToken(t.tenant_id, t.token_id);
      await this.#db
        .insertInto('event_cursors')
        .values({ name: licenseAlertCursorName, seq: Number(end?.seq ?? 0), updated_at: now.toISOString() })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      cursor = await this.#cursor();
      if (cursor === undefined) return queued;
    }
    const batchSize = Math.max(1, this.#o.batchSize ?? 500);
    for (let batch = 0; batch < 20; batch++) {
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
      const tokens = new Map<string, string>();
      for (const event of events) {
        if (countEvents.has(event.type) && event.tokenId !== null) tokens.set(event.tokenId, event.tenantId);
      }
      for (const [tokenId, tenantId] of tokens) queued += await this.#evaluateToken(tenantId, tokenId);
      // Compare-and-swap: a process that handled these events first moved the cursor already.
      const moved = await this.#db
        .updateTable('event_cursors')
        .set({ seq: last.seq, updated_at: now.toISOString() })
        .where('name', '=', licenseAlertCursorName)
        .where('seq', '=', cursor)
        .executeTakeFirst();
      if (Number(moved.numUpdatedRows) !== 1) {
        const current = await this.#cursor();
        if (current === undefined) break;
        cursor = current;
        continue;
      }
      cursor = last.seq;
      if (rows.length < batchSize || events.length < rows.length) break;
    }
    return queued;
  }

  /** What the scans read so far in this process: tokens evaluated and their asset rows (tests, metrics). */
  get reads(): { readonly tokens: number; readonly assetRows: number } {
    return { ...this.#reads };
  }

  async #cursor(): Promise<number | undefined> {
    const row = await this.#db
      .selectFrom('event_cursors')
      .select('seq')
      .where('name', '=', licenseAlertCursorName)
      .executeTakeFirst();
    return row === undefined ? undefined : Number(row.seq);
  }

  /** Evaluates every app of the token's current snapshot (nothing when it has none). */
  async #evaluateToken(tenantId: string, tokenId: string): Promise<number> {
    const snapshot = await this.#db
      .selectFrom('license_snapshots')
      .select('run_id')
      .where('tenant_id', '=', tenantId)
      .where('token_id', '=', tokenId)
      .executeTakeFirst();
    if (snapshot === undefined) return 0;
    return this.#evaluate(tenantId, tokenId, snapshot.run_id, undefined);
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
    });
    // Under the new thresholds at once: an app already past its new threshold alerts now.
    await this.#evaluateToken(tenantId, tokenId);
  }

  async #assetsOf(runId: string) {
    const rows = await this.#db
      .selectFrom('license_assets')
      .select(['adam_id', 'pricing_param', 'total_count', 'assigned_count', 'available_count'])
      .where('run_id', '=', runId)
      .execute();
    this.#reads.tokens += 1;
    this.#reads.assetRows += rows.length;
    return rows;
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
        : (await this.#assetsOf(runId!)).map((a) => ({
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
