import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DeliveryAttempt } from '../alerts/alert-deliverer.js';
import type { ScannedRun } from '../alerts/alert-scanner.js';
import type { AlertsDatabase } from '../alerts/alert-tables.js';
import { alertsDatabaseOf } from '../alerts/alert-tables.js';
import type { AppleObserver } from '../apple/apple-client.js';
import { vppTokenState, vppTokenSyncStatus } from '../domain/enums.js';
import { neverSyncedIso } from '../domain/sync-lifecycle.js';
import type { VppdDatabase } from '../storage/open-database.js';
import { droppedLogLines } from './log-destination.js';

export interface MetricsOptions {
  readonly db: VppdDatabase;
  readonly clock: () => Date;
  /** Per-app license series: 0 (off) or the most apps reported, most assigned first (cardinality guard). */
  readonly appLicenseSeries?: number;
}

/**
 * vppd's Prometheus metrics on a registry of its own (never prom-client's global one: tests build many
 * contexts). Per-token gauges are computed at scrape time from the database, so every process on one
 * database reports the same truth; counters and histograms are process-local, as usual in Prometheus
 * (sum them over instances).
 */
export interface VppdMetrics {
  readonly registry: Registry;
  /** Hooks for the Apple client: requests by endpoint/status/errorNumber, rate-limit waits. */
  readonly apple: AppleObserver;
  /** A finished sync run (reported once across processes by the alert scanner). */
  observeSyncRun(run: ScannedRun): void;
  /** One HTTP request served. */
  observeHttpRequest(labels: { method: string; route: string; status: number }, seconds: number): void;
  /** One webhook delivery attempt. */
  observeAlertDelivery(attempt: DeliveryAttempt): void;
  /** One Graph request refused with 429 by `VPPD_GRAPH_THROTTLING` (the limit it crossed). */
  observeThrottled(labels: { scope: 'tenant' | 'app'; kind: 'request' | 'write' }): void;
  /** A license operation ended (reported once, by the worker that finished it). */
  observeLicenseOperation(operation: EndedLicenseOperation): void;
  /** A new sync thread replaced one that died. */
  observeSyncThreadRestart(): void;
}

/** What the metrics take of an ended license operation. */
export interface EndedLicenseOperation {
  readonly kind: string;
  /** completed | failed | partiallyFailed. */
  readonly status: string;
  readonly completedCount: number;
  readonly failedCount: number;
  /** Apple's error number of each listed failed item (null: vppd gave up on the item itself). */
  readonly failureErrorNumbers: readonly (number | null)[];
}

/** Builds the registry and every metric. */
export function createMetrics(options: MetricsOptions): VppdMetrics {
  const registry = new Registry();
  let droppedSeen = 0;
  new Counter({
    name: 'vppd_log_lines_dropped_total',
    help: 'Log lines dropped because stdout did not keep up (the log buffer is bounded)',
    registers: [registry],
    collect() {
      const now = droppedLogLines();
      if (now > droppedSeen) this.inc(now - droppedSeen);
      droppedSeen = now;
    },
  });
  const db: AlertsDatabase = alertsDatabaseOf(options.db);

  // One query per scrape feeds the four per-token gauges (prom-client collects them one after another).
  let tokensRead: { promise: Promise<TokenMetricRow[]>; at: number } | undefined;
  const tokenRows = (): Promise<TokenMetricRow[]> => {
    const at = performance.now();
    if (tokensRead === undefined || at - tokensRead.at > 1000) {
      tokensRead = {
        at,
        promise: db
          .selectFrom('vpp_tokens')
          .select([
            'tenant_id',
            'id',
            'last_sync_status',
            'state',
            'last_sync_date_time',
            'expiration_date_time',
          ])
          .orderBy('tenant_id')
          .orderBy('id')
          .execute(),
      };
    }
    return tokensRead.promise;
  };

  const tokenLabels = ['tenant_id', 'token_id'] as const;
  new Gauge({
    name: 'vppd_token_sync_status',
    help: "1 for the token's current lastSyncStatus (none, inProgress, completed, failed), 0 for the others",
    labelNames: [...tokenLabels, 'status'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await tokenRows()) {
        const current = vppTokenSyncStatus.fromValue(row.last_sync_status);
        for (const status of vppTokenSyncStatus.names) {
          this.set({ tenant_id: row.tenant_id, token_id: row.id, status }, status === current ? 1 : 0);
        }
      }
    },
  });
  new Gauge({
    name: 'vppd_token_state',
    help: "1 for the token's current state (unknown, valid, expired, invalid, assignedToExternalMDM, duplicateLocationId), 0 for the others",
    labelNames: [...tokenLabels, 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await tokenRows()) {
        const current = vppTokenState.fromValue(row.state);
        for (const state of vppTokenState.names) {
          this.set({ tenant_id: row.tenant_id, token_id: row.id, state }, state === current ? 1 : 0);
        }
      }
    },
  });
  new Gauge({
    name: 'vppd_token_last_successful_sync_timestamp_seconds',
    help: 'Completion time of the last successful sync (absent before the first one)',
    labelNames: tokenLabels,
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await tokenRows()) {
        if (row.last_sync_date_time === neverSyncedIso) continue;
        this.set({ tenant_id: row.tenant_id, token_id: row.id }, Date.parse(row.last_sync_date_time) / 1000);
      }
    },
  });
  new Gauge({
    name: 'vppd_token_expiration_timestamp_seconds',
    help: "The sToken's expiration time",
    labelNames: tokenLabels,
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await tokenRows()) {
        this.set({ tenant_id: row.tenant_id, token_id: row.id }, Date.parse(row.expiration_date_time) / 1000);
      }
    },
  });
  registerLicenseGauges(registry, db, options.appLicenseSeries ?? 0);
  new Gauge({
    name: 'vppd_alert_outbox',
    help: 'Alert deliveries in the outbox by status (pending, delivered, failed)',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await db
        .selectFrom('alert_outbox')
        .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
        .groupBy('status')
        .execute();
      for (const status of ['pending', 'delivered', 'failed'] as const) {
        this.set({ status }, Number(rows.find((r) => r.status === status)?.n ?? 0));
      }
    },
  });

  const syncDuration = new Histogram({
    name: 'vppd_sync_duration_seconds',
    help: 'Duration of finished sync runs by outcome (completed, failed, interrupted)',
    labelNames: ['outcome'],
    buckets: [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [registry],
  });
  const syncThreadRestarts = new Counter({
    name: 'vppd_sync_thread_restarts_total',
    help: 'Sync threads started to replace one that died (an exit or an uncaught error)',
    registers: [registry],
  });
  const appleRequests = new Counter({
    name: 'vppd_apple_requests_total',
    help: 'Requests sent to Apple by endpoint, HTTP status (none: no answer) and Apple errorNumber (none: no error)',
    labelNames: ['endpoint', 'status', 'error_number'],
    registers: [registry],
  });
  const appleDuration = new Histogram({
    name: 'vppd_apple_request_duration_seconds',
    help: 'Duration of requests to Apple by endpoint',
    labelNames: ['endpoint'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const rateLimitWaits = new Counter({
    name: 'vppd_apple_rate_limit_waits_total',
    help: "Requests that waited for Apple's per-location rate limit, by endpoint",
    labelNames: ['endpoint'],
    registers: [registry],
  });
  const rateLimitWaitSeconds = new Counter({
    name: 'vppd_apple_rate_limit_wait_seconds_total',
    help: "Time spent waiting for Apple's per-location rate limit, by endpoint",
    labelNames: ['endpoint'],
    registers: [registry],
  });
  const http = createHttpRequestMetrics(registry);
  const throttled = new Counter({
    name: 'vppd_http_throttled_total',
    help: 'Graph requests refused with 429 by VPPD_GRAPH_THROTTLING, by the limit crossed (scope tenant|app, kind request|write)',
    labelNames: ['scope', 'kind'],
    registers: [registry],
  });
  const licenseOperations = new Counter({
    name: 'vppd_license_operations_total',
    help: 'License operations (associate, disassociate) ended, by kind and outcome (completed, failed, partiallyFailed)',
    labelNames: ['kind', 'outcome'],
    registers: [registry],
  });
  const licenseOperationItems = new Counter({
    name: 'vppd_license_operation_items_total',
    help: 'Items (asset x holder) of ended license operations, by kind and result (completed, failed)',
    labelNames: ['kind', 'result'],
    registers: [registry],
  });
  const licenseOperationFailures = new Counter({
    name: 'vppd_license_operation_failures_total',
    help: "Failed items of license operations by kind and Apple's errorNumber (none: Apple never answered for it)",
    labelNames: ['kind', 'error_number'],
    registers: [registry],
  });
  const alertDeliveries = new Counter({
    name: 'vppd_alert_delivery_attempts_total',
    help: 'Webhook delivery attempts by event type and result (delivered, retry, failed)',
    labelNames: ['event_type', 'result'],
    registers: [registry],
  });

  return {
    registry,
    apple: {
      request(o) {
        appleRequests.inc({
          endpoint: o.endpoint,
          status: o.status === undefined ? 'none' : String(o.status),
          error_number: o.errorNumber === undefined ? 'none' : String(o.errorNumber),
        });
        appleDuration.observe({ endpoint: o.endpoint }, o.durationMs / 1000);
      },
      rateLimitWait(o) {
        rateLimitWaits.inc({ endpoint: o.endpoint });
        rateLimitWaitSeconds.inc({ endpoint: o.endpoint }, o.waitedMs / 1000);
      },
    },
    observeSyncRun(run) {
      syncDuration.observe({ outcome: run.outcome }, run.durationMs / 1000);
    },
    observeHttpRequest(labels, seconds) {
      http.observe(labels.method, labels.route, labels.status, seconds);
    },
    observeAlertDelivery(attempt) {
      alertDeliveries.inc({ event_type: attempt.eventType, result: attempt.result });
    },
    observeThrottled(labels) {
      throttled.inc(labels);
    },
    observeSyncThreadRestart() {
      syncThreadRestarts.inc();
    },
    observeLicenseOperation(operation) {
      const { kind } = operation;
      licenseOperations.inc({ kind, outcome: operation.status });
      if (operation.completedCount > 0)
        licenseOperationItems.inc({ kind, result: 'completed' }, operation.completedCount);
      if (operation.failedCount > 0)
        licenseOperationItems.inc({ kind, result: 'failed' }, operation.failedCount);
      for (const number of operation.failureErrorNumbers) {
        licenseOperationFailures.inc({ kind, error_number: number === null ? 'none' : String(number) });
      }
    },
  };
}

const httpDurationHelp = 'HTTP request duration by method and route pattern';
/** Buckets of `vppd_http_request_duration_seconds`. */
const httpDurationBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

/** What one (method, route) pair served: requests by status (and those not yet handed over), durations. */
interface HttpTally {
  readonly labels: { readonly method: string; readonly route: string };
  readonly statuses: Map<
    number,
    { readonly labels: Record<'method' | 'route' | 'status', string>; pending: number }
  >;
  /** Observations per bucket (not cumulative), the last one for `+Inf` only. */
  readonly buckets: number[];
  sum: number;
  count: number;
}

/** Records HTTP requests into `vppd_http_requests_total` and `vppd_http_request_duration_seconds`. */
export interface HttpRequestMetrics {
  /** One request served. */
  observe(method: string, route: string, status: number, seconds: number): void;
}

/**
 * The HTTP request counter and duration histogram, exposed exactly as prom-client's Counter and
 * Histogram with the same names, help, labels and buckets (a test compares the text). prom-client
 * builds a label hash and validates the labels on every inc/observe, which cost ~4 µs per request and
 * much garbage under load; here a request costs two Map lookups and a few additions on its (method,
 * route) tally, and the registry reads the tallies when it is scraped: the counter's `collect()` adds
 * the requests counted since the last scrape, the histogram reports the tallies themselves.
 */
export function createHttpRequestMetrics(registry: Registry): HttpRequestMetrics {
  const byMethod = new Map<string, Map<string, HttpTally>>();
  // First seen, first shown: the order prom-client lists label sets in.
  const tallies: HttpTally[] = [];
  const counts: { readonly labels: Record<'method' | 'route' | 'status', string>; pending: number }[] = [];
  new Counter({
    name: 'vppd_http_requests_total',
    help: 'HTTP requests served by method, route pattern and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
    collect() {
      for (const count of counts) {
        if (count.pending === 0) continue;
        this.inc(count.labels, count.pending);
        count.pending = 0;
      }
    },
  });
  registry.registerMetric(new TalliedHistogram(tallies));
  return {
    observe(method, route, status, seconds) {
      let byRoute = byMethod.get(method);
      if (byRoute === undefined) {
        byRoute = new Map();
        byMethod.set(method, byRoute);
      }
      let tally = byRoute.get(route);
      if (tally === undefined) {
        tally = {
          labels: { method, route },
          statuses: new Map(),
          buckets: new Array<number>(httpDurationBuckets.length + 1).fill(0),
          sum: 0,
          count: 0,
        };
        byRoute.set(route, tally);
        tallies.push(tally);
      }
      let count = tally.statuses.get(status);
      if (count === undefined) {
        count = { labels: { method, route, status: String(status) }, pending: 0 };
        tally.statuses.set(status, count);
        counts.push(count);
      }
      count.pending += 1;
      // prom-client's bucket choice: the first bound >= the value.
      let bucket = 0;
      while (bucket < httpDurationBuckets.length && seconds > (httpDurationBuckets[bucket] ?? 0)) bucket += 1;
      tally.buckets[bucket] = (tally.buckets[bucket] ?? 0) + 1;
      tally.sum += seconds;
      tally.count += 1;
    },
  };
}

/** A prom-client value line as the registry formats it: own labels first, then the shared ones. */
interface HistogramValue {
  labels: Record<string, string | number>;
  sharedLabels: Record<string, string>;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}

/** `vppd_http_request_duration_seconds` read from the tallies, in prom-client's own output shape. */
class TalliedHistogram extends Histogram<'method' | 'route'> {
  // Not a #private field: prom-client's constructor calls reset() before this class sets it.
  private readonly tallies: readonly HttpTally[] | undefined;

  constructor(tallies: readonly HttpTally[]) {
    super({
      name: 'vppd_http_request_duration_seconds',
      help: httpDurationHelp,
      labelNames: ['method', 'route'],
      buckets: [...httpDurationBuckets],
      registers: [],
    });
    this.tallies = tallies;
  }

  /** What the registry reads for the text exposition (prom-client calls it before `get`). */
  async getForPromString() {
    const name = 'vppd_http_request_duration_seconds';
    const values: HistogramValue[] = [];
    for (const tally of this.tallies ?? []) {
      const shared = { ...tally.labels };
      let cumulative = 0;
      httpDurationBuckets.forEach((le, i) => {
        cumulative += tally.buckets[i] ?? 0;
        values.push({
          labels: { le },
          sharedLabels: shared,
          value: cumulative,
          metricName: `${name}_bucket`,
          exemplar: null,
        });
      });
      values.push(
        {
          labels: { le: '+Inf' },
          sharedLabels: shared,
          value: tally.count,
          metricName: `${name}_bucket`,
          exemplar: null,
        },
        {
          labels: {},
          sharedLabels: shared,
          value: tally.sum,
          metricName: `${name}_sum`,
          exemplar: undefined,
        },
        {
          labels: {},
          sharedLabels: shared,
          value: tally.count,
          metricName: `${name}_count`,
          exemplar: undefined,
        },
      );
    }
    return { name, help: httpDurationHelp, type: 'histogram' as const, values, aggregator: 'sum' as const };
  }

  override async get() {
    const data = await this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ labels, sharedLabels, ...value }) => ({
        ...value,
        labels: { ...labels, ...sharedLabels },
      })),
    } as unknown as Awaited<ReturnType<Histogram<'method' | 'route'>['get']>>;
  }

  override reset(): void {
    if (this.tallies === undefined) return;
    for (const tally of this.tallies) {
      tally.buckets.fill(0);
      tally.sum = 0;
      tally.count = 0;
    }
  }
}

interface TokenMetricRow {
  tenant_id: string;
  id: string;
  last_sync_status: number;
  state: number;
  last_sync_date_time: string;
  expiration_date_time: string;
}

/** Apple's "unlimited" totalCount: left out of the license sums (it would swamp them). */
const unlimitedTotalCount = 2147483647;

/**
 * `vppd_token_licenses{tenant_id,token_id,kind}` (total, assigned, available of each token's current
 * snapshot, unlimited apps left out) and, when `appSeries` > 0, `vppd_app_licenses{…,adam_id,
 * pricing_param,kind}` for at most `appSeries` apps (the most assigned first), with
 * `vppd_app_licenses_omitted` counting the apps left out so a capped scrape is visible.
 */
function registerLicenseGauges(registry: Registry, db: AlertsDatabase, appSeries: number): void {
  const kinds = ['total', 'assigned', 'available'] as const;
  new Gauge({
    name: 'vppd_token_licenses',
    help: "Licenses of the token's current snapshot by kind (total, assigned, available); unlimited apps are not counted",
    labelNames: ['tenant_id', 'token_id', 'kind'],
    registers: [registry],
    async collect() {
      const rows = await db
        .selectFrom('license_snapshots as s')
        .innerJoin('license_assets as a', 'a.run_id', 's.run_id')
        .select((eb) => [
          's.tenant_id',
          's.token_id',
          eb.fn.sum<number | string | bigint>('a.total_count').as('total'),
          eb.fn.sum<number | string | bigint>('a.assigned_count').as('assigned'),
          eb.fn.sum<number | string | bigint>('a.available_count').as('available'),
        ])
        .where('a.total_count', '<', unlimitedTotalCount)
        .groupBy(['s.tenant_id', 's.token_id'])
        .execute();
      this.reset();
      for (const row of rows) {
        for (const kind of kinds) {
          this.set({ tenant_id: row.tenant_id, token_id: row.token_id, kind }, Number(row[kind]));
        }
      }
    },
  });
  if (appSeries <= 0) return;
  new Gauge({
    name: 'vppd_app_licenses',
    help: `Licenses of each app (adamId x pricingParam) by kind; at most ${appSeries} apps, the most assigned first (VPPD_METRICS_APP_LICENSES)`,
    labelNames: ['tenant_id', 'token_id', 'adam_id', 'pricing_param', 'kind'],
    registers: [registry],
    async collect() {
      const rows = await db
        .selectFrom('license_snapshots as s')
        .innerJoin('license_assets as a', 'a.run_id', 's.run_id')
        .select([
          's.tenant_id',
          's.token_id',
          'a.adam_id',
          'a.pricing_param',
          'a.total_count',
          'a.assigned_count',
          'a.available_count',
        ])
        .where('a.total_count', '<', unlimitedTotalCount)
        .orderBy('a.assigned_count', 'desc')
        .orderBy('s.token_id')
        .orderBy('a.adam_id')
        .orderBy('a.pricing_param')
        .limit(appSeries + 1)
        .execute();
      this.reset();
      for (const row of rows.slice(0, appSeries)) {
        const labels = {
          tenant_id: row.tenant_id,
          token_id: row.token_id,
          adam_id: row.adam_id,
          pricing_param: row.pricing_param,
        };
        this.set({ ...labels, kind: 'total' }, Number(row.total_count));
        this.set({ ...labels, kind: 'assigned' }, Number(row.assigned_count));
        this.set({ ...labels, kind: 'available' }, Number(row.available_count));
      }
    },
  });
  new Gauge({
    name: 'vppd_app_licenses_omitted',
    help: 'Apps left out of vppd_app_licenses by its cap (VPPD_METRICS_APP_LICENSES)',
    registers: [registry],
    async collect() {
      const total = await db
        .selectFrom('license_snapshots as s')
        .innerJoin('license_assets as a', 'a.run_id', 's.run_id')
        .select((eb) => eb.fn.countAll<number | string | bigint>().as('n'))
        .where('a.total_count', '<', unlimitedTotalCount)
        .executeTakeFirst();
      this.set(Math.max(0, Number(total?.n ?? 0) - appSeries));
    },
  });
}
