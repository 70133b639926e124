import { SimApiError, type SimErrorEntry } from './sim-errors.js';
import type { SimLocation } from './sim-location.js';
import { mixHash } from './sim-random.js';

// Apple's notifications as the simulator sends them (docs/apple.md, "Notifications"): an envelope
// `{notificationId, notificationType, uId, notification}` POSTed to the location's `notificationUrl` with
// `Authorization: Bearer <notificationAuthToken>`; best effort, up to three tries, any 2xx counts,
// duplicates possible. Setting a config sends a TEST_NOTIFICATION first and refuses the config (9728)
// when that delivery fails.

/** Apple's errors for notification settings (kept here, beside the only code that answers them). */
export const simNotificationErrors = {
  urlAndTokenTogether: {
    errorNumber: 9710,
    httpStatus: 400,
    errorMessage: 'notificationUrl and notificationAuthToken must be set together',
  },
  tooLong: { errorNumber: 9711, httpStatus: 400, errorMessage: 'A notification setting is too long' },
  httpsRequired: { errorNumber: 9712, httpStatus: 400, errorMessage: 'notificationUrl must use HTTPS' },
  testNotificationFailed: {
    errorNumber: 9728,
    httpStatus: 400,
    errorMessage: 'The test notification could not be delivered to notificationUrl',
  },
} as const satisfies Record<string, SimErrorEntry>;

/** Types a location may subscribe to (`notificationTypes` of service/config and client/config). */
export const simNotificationTypes = [
  'ASSET_MANAGEMENT',
  'ASSET_COUNT',
  'USER_ASSOCIATED',
  'USER_MANAGEMENT',
] as const;

/** Every type the simulator sends; TEST_NOTIFICATION needs no subscription. */
export type SimNotificationType = (typeof simNotificationTypes)[number] | 'TEST_NOTIFICATION';

/** Options of the notification sender (`AppleSimOptions.notifications`). */
export interface SimNotificationOptions {
  /**
   * Waits before the second and third try of a failed delivery (Apple: up to three tries over a few
   * minutes). Default `[60_000, 180_000]`; tests pass a few milliseconds.
   */
  readonly retryDelaysMs?: readonly number[];
  /** Every n-th delivered notification is sent a second time, as Apple may (0: never). Default 10. */
  readonly duplicateEvery?: number;
  /** Accept `http:` notification URLs (tests and local runs without TLS). Default false, as Apple. */
  readonly allowHttp?: boolean;
  /** How long one delivery try may take before it counts as failed. Default 10 s. */
  readonly timeoutMs?: number;
  /** How deliveries are sent; default the global fetch. */
  readonly fetch?: typeof fetch;
}

/** What the simulator remembers of one notification (admin API `GET /_sim/notifications`). */
export interface SimNotificationRecord {
  readonly locationId: string;
  readonly notificationId: string;
  /** The location's library id, sent in the envelope. */
  readonly uId: string;
  readonly notificationType: SimNotificationType;
  readonly notification: Record<string, unknown>;
  /** HTTP requests made for it (duplicates and retries included). */
  attempts: number;
  /** `pending` while tries remain, then `delivered` (a 2xx) or `failed` (all tries used). */
  status: 'pending' | 'delivered' | 'failed';
  /** The last HTTP status received, or the network error. */
  lastResult: string | undefined;
  /** True when the notification was sent once more after it had been delivered. */
  duplicated: boolean;
}

/** Sends Apple's notifications of every location. One per simulator. */
export class SimNotifier {
  private readonly retryDelaysMs: readonly number[];
  private readonly duplicateEvery: number;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  readonly allowHttp: boolean;
  private records: SimNotificationRecord[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Timers of work that ends in a notification (an event completing on its own); not deliveries. */
  private readonly workTimers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  private counter = 0;
  private deliveredCount = 0;
  private closed = false;

  constructor(options: SimNotificationOptions = {}) {
    this.retryDelaysMs = options.retryDelaysMs ?? [60_000, 180_000];
    this.duplicateEvery = options.duplicateEvery ?? 10;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.fetchImpl = options.fetch ?? fetch;
    this.allowHttp = options.allowHttp ?? false;
  }

  /** Checks a notification URL as Apple does when a config is set. */
  checkUrl(value: string): void {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new SimApiError(simNotificationErrors.httpsRequired, 'notificationUrl is not a URL');
    }
    const httpAllowed = this.allowHttp && url.protocol === 'http:';
    if (url.protocol !== 'https:' && !httpAllowed) throw new SimApiError(simNotificationErrors.httpsRequired);
  }

  /**
   * Sends a TEST_NOTIFICATION to a URL about to be set (one try, no retry: the config call waits for
   * it). Throws 9728 when it is not answered with a 2xx.
   */
  async sendTest(location: SimLocation, url: string, authToken: string): Promise<void> {
    const record = this.newRecord(location, 'TEST_NOTIFICATION', {});
    const ok = await this.tryOnce(record, url, authToken);
    record.status = ok ? 'delivered' : 'failed';
    if (!ok) throw new SimApiError(simNotificationErrors.testNotificationFailed);
  }

  /**
   * Queues a notification for the location when it subscribed to `type`; answers its id, or undefined
   * when nothing is sent (no URL, not subscribed).
   */
  notify(
    location: SimLocation,
    type: Exclude<SimNotificationType, 'TEST_NOTIFICATION'>,
    notification: Record<string, unknown>,
  ): string | undefined {
    const url = location.notificationUrl;
    const token = location.notificationAuthToken;
    if (url === undefined || token === undefined || !location.notificationTypes?.includes(type)) {
      return undefined;
    }
    const record = this.newRecord(location, type, notification);
    this.track(this.deliver(record, url, token, 0));
    return record.notificationId;
  }

  /** Runs `work` after `ms` (an event completing without polls); cancelled by reset and close. */
  after(ms: number, work: () => void): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.workTimers.delete(timer);
      if (!this.closed) work();
    }, ms);
    timer.unref();
    this.workTimers.add(timer);
  }

  /** Every notification sent or being sent, oldest first. */
  list(): readonly SimNotificationRecord[] {
    return this.records;
  }

  /** Resolves once no delivery is in flight or waiting for a retry. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0 || this.timers.size > 0) {
      await Promise.race([...this.inFlight, new Promise((resolve) => setTimeout(resolve, 5))]);
    }
  }

  /** Forgets the log and cancels pending retries (the simulator's reset). */
  reset(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const timer of this.workTimers) clearTimeout(timer);
    this.workTimers.clear();
    this.records = [];
    this.deliveredCount = 0;
  }

  /** Cancels pending retries; nothing is sent afterwards. */
  close(): void {
    this.closed = true;
    this.reset();
  }

  private newRecord(
    location: SimLocation,
    notificationType: SimNotificationType,
    notification: Record<string, unknown>,
  ): SimNotificationRecord {
    this.counter += 1;
    const h1 = mixHash(location.base.key, this.counter, 60).toString(16).padStart(8, '0');
    const h2 = mixHash(location.base.key, this.counter, 61).toString(16).padStart(8, '0');
    const tail = this.counter.toString(16).padStart(12, '0');
    const record: SimNotificationRecord = {
      locationId: location.id,
      uId: location.uId,
      notificationId: `${h1}-${h2.slice(0, 4)}-4${h2.slice(5, 8)}-a${tail.slice(0, 3)}-${h1}${tail.slice(-4)}`,
      notificationType,
      notification,
      attempts: 0,
      status: 'pending',
      lastResult: undefined,
      duplicated: false,
    };
    this.records.push(record);
    return record;
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private async deliver(
    record: SimNotificationRecord,
    url: string,
    token: string,
    tried: number,
  ): Promise<void> {
    if (this.closed) return;
    if (await this.tryOnce(record, url, token)) {
      record.status = 'delivered';
      this.deliveredCount += 1;
      if (this.duplicateEvery > 0 && this.deliveredCount % this.duplicateEvery === 0) {
        record.duplicated = true;
        await this.tryOnce(record, url, token);
      }
      return;
    }
    const delay = this.retryDelaysMs[tried];
    if (delay === undefined || this.closed) {
      record.status = 'failed';
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.track(this.deliver(record, url, token, tried + 1));
    }, delay);
    this.timers.add(timer);
  }

  private async tryOnce(record: SimNotificationRecord, url: string, token: string): Promise<boolean> {
    record.attempts += 1;
    const body = JSON.stringify({
      notification: record.notification,
      notificationId: record.notificationId,
      notificationType: record.notificationType,
      uId: record.uId,
    });
    try {
      const response = await this.fetchImpl(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      await response.arrayBuffer().catch(() => undefined);
      record.lastResult = String(response.status);
      return response.status >= 200 && response.status < 300;
    } catch (error) {
      record.lastResult = error instanceof Error ? error.message : String(error);
      return false;
    }
  }
}
