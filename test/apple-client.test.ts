import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type AppleClientOptions,
  type AppleHttp,
  type ApplePage,
  appleFailureOf,
  createAppleClient,
  createFetchHttp,
  createUndiciHttp,
} from '../src/apple/index.js';
import { type AppleSim, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { isVppdError, type VppdError } from '../src/domain/errors.js';
import { decodeSToken } from '../src/domain/stoken.js';
import type { SyncFailure } from '../src/domain/sync-failure.js';

// The Apple client against the Apple simulator over real HTTP. Backoffs use a fake sleep on a virtual
// clock, so retries take no wall time; the rate-limit test at the end is the one that runs in real time.

let sim: AppleSim;
let http: AppleHttp;

const locations = [
  {
    id: 'main',
    name: 'Main Campus',
    orgName: 'Org',
    countryCode: 'US',
    assets: 30,
    assignments: 1200,
    users: 150,
  },
  {
    id: 'big',
    name: 'Big Campus',
    orgName: 'Org',
    countryCode: 'US',
    assets: 60,
    assignments: 5000,
    users: 10,
  },
  // Latency faults leave requests sleeping inside the simulator after the client gave up on them; they
  // get their own location so those stragglers cannot consume faults scripted by a later test.
  { id: 'slow', name: 'Slow', orgName: 'Org', countryCode: 'US', assets: 2, assignments: 5, users: 1 },
  {
    id: 'expired',
    name: 'Old',
    orgName: 'Org',
    countryCode: 'US',
    assets: 2,
    assignments: 5,
    users: 1,
    state: 'expired' as const,
  },
  {
    id: 'revoked',
    name: 'Gone',
    orgName: 'Org',
    countryCode: 'CA',
    assets: 2,
    assignments: 5,
    users: 1,
    state: 'revoked' as const,
  },
];

beforeAll(async () => {
  sim = await startAppleSim({ locations, pageSize: 100, rateLimit: false, seed: 'apple-client-test' });
  // One pooled transport for the whole file, as the service would share one.
  http = createUndiciHttp();
});

afterAll(async () => {
  await http.close();
  await sim.close();
});

beforeEach(() => {
  sim.reset();
  sim.setRateLimit(false);
});

interface Harness {
  readonly client: ReturnType<typeof createAppleClient>;
  /** Every sleep the client asked for (backoffs and rate-limit waits), in order. */
  readonly sleeps: number[];
  /** Log lines the client wrote through a real pino logger. */
  readonly logs: string[];
  now(): number;
  advance(ms: number): void;
}

/** A client on a virtual clock: `sleep` advances time instantly and records the delay. */
function harness(options: Partial<AppleClientOptions> = {}): Harness {
  let now = Date.parse('2030-01-01T00:00:00Z');
  const sleeps: number[] = [];
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      logs.push(String(chunk));
      callback();
    },
  });
  const client = createAppleClient({
    baseUrl: sim.baseUrl,
    metadataUrl: sim.metadataUrl,
    http,
    now: () => now,
    sleep: async (ms, signal) => {
      signal?.throwIfAborted();
      sleeps.push(ms);
      now += ms;
    },
    random: () => 0.5,
    logger: pino({ level: 'debug' }, stream),
    timeoutMs: 5000,
    ...options,
  });
  return {
    client,
    sleeps,
    logs,
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
  };
}

async function failureOf(promise: Promise<unknown>): Promise<{ error: VppdError; failure: SyncFailure }> {
  const error = await promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  );
  if (!isVppdError(error, 'appleFailure')) throw error;
  const failure = appleFailureOf(error);
  if (!failure) throw new Error('appleFailure without a SyncFailure');
  return { error, failure };
}

async function drain<T>(pages: AsyncIterable<ApplePage<T>>): Promise<T[]> {
  const records: T[] = [];
  for await (const page of pages) records.push(...page.records);
  return records;
}

/** The sToken, and the secret inside it, appear nowhere in the error, its causes, details or the logs. */
function expectNoSecret(error: unknown, logs: readonly string[], sToken: string): void {
  const secrets = [sToken];
  try {
    secrets.push(decodeSToken(sToken).token);
  } catch {
    // A deliberately malformed token has no inner secret.
  }
  const texts: string[] = [...logs];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 10; depth++) {
    texts.push(String(current));
    if (current instanceof Error) {
      texts.push(current.stack ?? '', current.message);
      if (isVppdError(current)) texts.push(JSON.stringify(current.details));
      current = current.cause;
    } else {
      texts.push(JSON.stringify(current));
      current = undefined;
    }
  }
  for (const text of texts) {
    for (const secret of secrets) expect(text).not.toContain(secret);
  }
}

describe('typed calls', () => {
  it('reads service/config limits and the lookup URL', async () => {
    const { client } = harness();
    const config = await client.getServiceConfig();
    expect(config.maxRequestPerSecond).toBe(15);
    expect(config.limits.maxRevokeSerialNumbers).toBeGreaterThan(0);
    expect(config.contentMetadataLookupUrl).toBe(sim.metadataUrl);
    expect(config.errorCodes.some((e) => e.errorNumber === 9621)).toBe(true);
  });

  it('reads and claims client/config with mdmInfo', async () => {
    const { client } = harness();
    const token = sim.tokenFor('main');
    const before = await client.getClientConfig(token);
    expect(before).toMatchObject({ locationName: 'Main Campus', countryISO2ACode: 'US', mdmInfo: undefined });
    const mdmInfo = { id: 'a3f7b0c2-0000-4000-8000-000000000001', name: 'vppd', metadata: 'vppd 0.1.0' };
    const after = await client.setClientConfig(token, { mdmInfo });
    expect(after.mdmInfo).toEqual(mdmInfo);
    expect(after.uId).toBe(before.uId);
    expect((await client.getClientConfig(token)).mdmInfo).toEqual(mdmInfo);
  });

  it('streams assets, assignments and users completely', async () => {
    const { client } = harness();
    const token = sim.tokenFor('main');
    const assets = await drain(client.assets(token));
    const assignments = await drain(client.assignments(token));
    const users = await drain(client.users(token));
    expect(assets).toHaveLength(30);
    expect(assignments).toHaveLength(1200);
    expect(users).toHaveLength(150);
    const licensed = assets.reduce((n, a) => n + a.assignedCount, 0);
    expect(licensed).toBe(1200);
    for (const a of assignments)
      expect((a.serialNumber === undefined) !== (a.clientUserId === undefined)).toBe(true);
    const filtered = await drain(client.assignments(token, { adamId: assets[0]!.adamId }));
    expect(filtered.length).toBe(assets[0]!.assignedCount);
    expect(filtered.every((a) => a.adamId === assets[0]!.adamId)).toBe(true);
  });

  it('revokes licenses and reports the event status', async () => {
    const { client } = harness();
    const token = sim.tokenFor('main');
    const holder = (await drain(client.assignments(token))).find((a) => a.serialNumber !== undefined)!;
    const { eventId } = await client.revokeAssets(token, { serialNumbers: [holder.serialNumber!] });
    expect(eventId).toMatch(/\S/);
    let status = await client.getEventStatus(token, eventId);
    for (let i = 0; status.eventStatus === 'PENDING' && i < 5; i++) {
      status = await client.getEventStatus(token, eventId);
    }
    expect(status).toMatchObject({ eventStatus: 'COMPLETE', eventType: 'REVOKE' });
    const remaining = await drain(client.assignments(token, { serialNumber: holder.serialNumber! }));
    expect(remaining).toHaveLength(0);
    await expect(client.revokeAssets(token, {})).rejects.toMatchObject({ code: 'badRequest' });
  });

  it('looks up content metadata in batches and leaves unknown ids out', async () => {
    const { client } = harness({ metadataBatchSize: 7 });
    const token = sim.tokenFor('main');
    const ids = (await drain(client.assets(token))).map((a) => a.adamId);
    sim.resetRequestCounts();
    const metadata = await client.lookupMetadata([...ids, '1'], { platform: 'volumestore', country: 'US' });
    expect(metadata.size).toBe(new Set(ids).size);
    expect(metadata.has('1')).toBe(false);
    for (const entry of metadata.values()) expect(entry.name).toMatch(/\S/);
    expect(sim.requestCounts()['*']?.['GET lookup']).toBe(Math.ceil((new Set(ids).size + 1) / 7));
  });

  it('works over an injected fetch as well', async () => {
    const { client } = harness({ http: createFetchHttp(globalThis.fetch) });
    expect(await drain(client.assignments(sim.tokenFor('main')))).toHaveLength(1200);
  });
});

describe('failure classification over HTTP', () => {
  it('expired token (9621) → expired', async () => {
    const { client, logs } = harness();
    const token = sim.tokenFor('expired');
    const { error, failure } = await failureOf(client.getClientConfig(token));
    expect(failure).toMatchObject({ kind: 'expired', appleErrorNumber: 9621, httpStatus: 401 });
    expect(failure.message).toMatch(/expired/i);
    expectNoSecret(error, logs, token);
  });

  it('revoked token (9625) → revoked', async () => {
    const { client, logs } = harness();
    const token = sim.tokenFor('revoked');
    const { error, failure } = await failureOf(drain(client.assignments(token)));
    expect(failure).toMatchObject({ kind: 'revoked', appleErrorNumber: 9625, httpStatus: 401 });
    expectNoSecret(error, logs, token);
  });

  it('unknown token (9622), malformed Authorization (9722) and 9601 → invalidToken', async () => {
    const { client, logs } = harness();
    const token = sim.tokenFor('main');
    sim.faults.setTokenState('main', 'invalid');
    const unknown = await failureOf(client.getClientConfig(token));
    expect(unknown.failure).toMatchObject({ kind: 'invalidToken', appleErrorNumber: 9622, httpStatus: 401 });
    expectNoSecret(unknown.error, logs, token);

    const garbage = 'not*base64*but*secret*value';
    const malformed = await failureOf(client.getClientConfig(garbage));
    expect(malformed.failure).toMatchObject({
      kind: 'invalidToken',
      appleErrorNumber: 9722,
      httpStatus: 401,
    });
    expectNoSecret(malformed.error, logs, garbage);

    sim.faults.setTokenState('main', 'active');
    sim.faults.errorInBody('main', 9601, 1);
    const login = await failureOf(client.getClientConfig(token));
    expect(login.failure).toMatchObject({ kind: 'invalidToken', appleErrorNumber: 9601 });
    expectNoSecret(login.error, logs, token);
  });

  it('an error inside an HTTP 200 body is an error (9622 and 9722 as seen in the field)', async () => {
    const { client, logs, sleeps } = harness();
    const token = sim.tokenFor('main');
    sim.faults.errorInBody('main', 9622, 1, 'assignments');
    const first = await failureOf(drain(client.assignments(token)));
    expect(first.failure).toMatchObject({ kind: 'invalidToken', appleErrorNumber: 9622, httpStatus: 200 });
    sim.faults.errorInBody('main', 9722, 1, 'client/config');
    const second = await failureOf(client.getClientConfig(token));
    expect(second.failure).toMatchObject({ kind: 'invalidToken', appleErrorNumber: 9722, httpStatus: 200 });
    expect(sleeps).toEqual([]);
    expectNoSecret(first.error, logs, token);
    expectNoSecret(second.error, logs, token);
  });

  it('9602, 97xx and 9634 → badRequest without retries', async () => {
    const { client, logs, sleeps } = harness();
    const token = sim.tokenFor('main');
    const unknownEvent = await failureOf(client.getEventStatus(token, 'no-such-event'));
    // An eventId Apple does not know is 9708 (see docs/apple.md).
    expect(unknownEvent.failure).toMatchObject({
      kind: 'badRequest',
      appleErrorNumber: 9708,
      httpStatus: 400,
    });
    for (const errorNumber of [9634, 9705]) {
      sim.faults.errorInBody('main', errorNumber, 1);
      const { error, failure } = await failureOf(client.getClientConfig(token));
      expect(failure).toMatchObject({ kind: 'badRequest', appleErrorNumber: errorNumber });
      expectNoSecret(error, logs, token);
    }
    expect(sleeps).toEqual([]);
    expect(sim.requestCounts().main?.['GET client/config']).toBe(2);
  });

  it('429/9646 that keeps coming → rateLimitExhausted after bounded, growing backoffs', async () => {
    const { client, logs, sleeps } = harness({ retry: { maxAttempts: 4 } });
    const token = sim.tokenFor('main');
    sim.faults.rateLimitBurst('main', 50);
    const { error, failure } = await failureOf(client.getClientConfig(token));
    expect(failure).toMatchObject({ kind: 'rateLimitExhausted', appleErrorNumber: 9646, httpStatus: 429 });
    expect(error.details.attempts).toBe(4);
    expect(sleeps).toEqual([375, 750, 1500]);
    expect(sim.requestCounts().main?.['GET client/config']).toBe(4);
    expectNoSecret(error, logs, token);
  });

  it('5xx that keeps coming → appleUnavailable, each wait honouring Retry-After', async () => {
    const { client, logs, sleeps } = harness({ retry: { maxAttempts: 3 } });
    const token = sim.tokenFor('main');
    sim.faults.serverError('main', 50, { status: 503, retryAfter: 4, errorNumber: 0 });
    const { error, failure } = await failureOf(client.getClientConfig(token));
    expect(failure).toMatchObject({ kind: 'appleUnavailable', httpStatus: 503 });
    expect(sleeps).toEqual([4000, 4000]);
    expectNoSecret(error, logs, token);
  });

  it('9603 that keeps coming → retried, then minutes of waiting, then appleUnavailable', async () => {
    const { client, logs, sleeps } = harness();
    const token = sim.tokenFor('main');
    sim.faults.serverError('main', 50, { status: 500, retryAfter: 0 });
    const { error, failure } = await failureOf(client.getClientConfig(token));
    expect(failure).toMatchObject({ kind: 'appleUnavailable', appleErrorNumber: 9603, httpStatus: 500 });
    expect(error.details.attempts).toBe(6);
    expect(sleeps.slice(0, 4)).toEqual([375, 750, 1500, 3000]);
    expect(sleeps[4]).toBeGreaterThanOrEqual(60_000);
    expectNoSecret(error, logs, token);
  });

  it('network errors that keep coming → appleUnavailable', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    // No rate limiter: its service/config read would be one more refused connection to count.
    const { client, logs, sleeps } = harness({
      baseUrl: `http://127.0.0.1:${port}/mdm/v2`,
      retry: { maxAttempts: 3 },
      rateLimiter: null,
    });
    const token = sim.tokenFor('main');
    const { error, failure } = await failureOf(client.getClientConfig(token));
    expect(failure.kind).toBe('appleUnavailable');
    expect(failure.message).toContain('ECONNREFUSED');
    expect(failure.httpStatus).toBeUndefined();
    expect(sleeps).toEqual([375, 750]);
    expect(error.details.attempts).toBe(3);
    expectNoSecret(error, logs, token);
  });

  it('timeouts that keep coming → appleUnavailable', async () => {
    const { client, logs } = harness({ timeoutMs: 80, retry: { maxAttempts: 2 } });
    const token = sim.tokenFor('slow');
    sim.faults.latency('slow', 400);
    const { error, failure } = await failureOf(client.getClientConfig(token));
    expect(failure.kind).toBe('appleUnavailable');
    expect(failure.message).toContain('80 ms');
    expect(error.details.attempts).toBe(2);
    expectNoSecret(error, logs, token);
  });

  it('data changing between pages → snapshotMoved, never a mix', async () => {
    const { client, logs } = harness();
    const token = sim.tokenFor('main');
    sim.faults.changeDataAfterPage('main', 2);
    const pages: number[] = [];
    const run = async () => {
      for await (const page of client.assignments(token, {}, { concurrency: 1 }))
        pages.push(page.currentPageIndex);
    };
    const { error, failure } = await failureOf(run());
    expect(failure.kind).toBe('snapshotMoved');
    expect(error.details.pageIndex).toBe(3);
    expect(pages).toEqual([0, 1, 2]);
    expectNoSecret(error, logs, token);
    // A fresh read after the change is consistent again.
    expect(await drain(client.assignments(token))).toHaveLength(
      (await drain(client.assignments(token))).length,
    );
  });

  it('a caller abort rejects with the abort reason, not an Apple failure', async () => {
    const { client } = harness();
    sim.faults.latency('slow', 300);
    const controller = new AbortController();
    const call = client.getClientConfig(sim.tokenFor('slow'), { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('shutting down')), 30);
    await expect(call).rejects.toThrow('shutting down');
  });
});

describe('retries that recover', () => {
  it('5xx with Retry-After, then success', async () => {
    const { client, sleeps, logs } = harness();
    const token = sim.tokenFor('main');
    sim.faults.serverError('main', 2, { status: 503, retryAfter: 3, errorNumber: 0 });
    expect((await client.getClientConfig(token)).locationName).toBe('Main Campus');
    expect(sleeps).toEqual([3000, 3000]);
    expect(logs.filter((l) => l.includes('retrying'))).toHaveLength(2);
    for (const line of logs) expect(line).not.toContain(token);
  });

  it('9603 five times: backoff, one long wait, then success', async () => {
    const { client, sleeps } = harness();
    sim.faults.serverError('main', 5, { status: 500, retryAfter: 0 });
    await client.getClientConfig(sim.tokenFor('main'));
    expect(sleeps).toEqual([375, 750, 1500, 3000, 120_000]);
  });

  it('429 in the middle of paging: the page is retried and the stream completes in order', async () => {
    const { client, sleeps } = harness();
    const token = sim.tokenFor('main');
    await client.getClientConfig(token);
    sim.faults.rateLimitBurst('main', 3, { endpoint: 'assignments' });
    const indexes: number[] = [];
    let count = 0;
    for await (const page of client.assignments(token)) {
      indexes.push(page.currentPageIndex);
      count += page.records.length;
    }
    expect(indexes).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(count).toBe(1200);
    expect(sleeps.length).toBeGreaterThanOrEqual(3);
    expect(sim.requestCounts().main?.['GET assignments']).toBe(15);
  });

  it('a body cut short (not JSON) is retried', async () => {
    let cut = 1;
    const cutting: AppleHttp = {
      async request(request) {
        const response = await http.request(request);
        if (cut-- > 0) return { ...response, body: response.body.slice(0, 10) };
        return response;
      },
      close: async () => {},
    };
    const { client, sleeps } = harness({ http: cutting });
    expect((await client.getClientConfig(sim.tokenFor('main'))).locationName).toBe('Main Campus');
    expect(sleeps).toHaveLength(1);
  });
});

describe('paging under concurrency', () => {
  /** Wraps the transport to measure how many requests were in flight at once. */
  function measuring(latencyMs: number) {
    const stats = { inFlight: 0, max: 0, requests: 0 };
    const wrapped: AppleHttp = {
      async request(request) {
        stats.requests++;
        stats.inFlight++;
        stats.max = Math.max(stats.max, stats.inFlight);
        try {
          await new Promise((r) => setTimeout(r, latencyMs));
          return await http.request(request);
        } finally {
          stats.inFlight--;
        }
      },
      close: async () => {},
    };
    return { wrapped, stats };
  }

  it('fetches 50 pages with never more than 5 in flight, in order, each record once', async () => {
    const { wrapped, stats } = measuring(3);
    const { client } = harness({ http: wrapped, rateLimiter: null });
    const token = sim.tokenFor('big');
    const order: number[] = [];
    const keys = new Set<string>();
    for await (const page of client.assignments(token)) {
      order.push(page.currentPageIndex);
      for (const a of page.records)
        keys.add(`${a.adamId}|${a.pricingParam}|${a.serialNumber ?? a.clientUserId}`);
    }
    expect(order).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(keys.size).toBe(5000);
    expect(stats.max).toBe(5);
    expect(stats.requests).toBe(50);
  });

  it('honours a lower in-flight limit and gives the same records as sequential paging', async () => {
    const { wrapped, stats } = measuring(2);
    const { client } = harness({ http: wrapped, rateLimiter: null });
    const token = sim.tokenFor('big');
    const parallel = await drain(client.assignments(token, {}, { concurrency: 2 }));
    expect(stats.max).toBe(2);
    const sequential = await drain(client.assignments(token, {}, { concurrency: 1 }));
    expect(parallel).toEqual(sequential);
  });
});

describe('rate limit', () => {
  it('re-reads maxRequestPerSecond from service/config every 5 minutes, keeping the old limit meanwhile', async () => {
    sim.setRateLimit(8);
    const h = harness();
    expect(await h.client.maxRequestPerSecond()).toBe(8);
    sim.setRateLimit(12);
    h.advance(299_000);
    expect(await h.client.maxRequestPerSecond()).toBe(8);
    expect(sim.requestCounts()['*']?.['GET service/config']).toBe(1);
    h.advance(2_000);
    // The refresh runs in the background: this caller still gets the old limit without waiting.
    expect(await h.client.maxRequestPerSecond()).toBe(8);
    await expect.poll(() => h.client.maxRequestPerSecond()).toBe(12);
    expect(sim.requestCounts()['*']?.['GET service/config']).toBe(2);
  });

  it('falls back to 15 when service/config cannot be read', async () => {
    sim.faults.serverError('*', 10, { endpoint: 'service/config', retryAfter: 0 });
    const h = harness();
    expect(await h.client.maxRequestPerSecond()).toBe(15);
    expect(h.logs.some((l) => l.includes('service/config could not be read'))).toBe(true);
  });

  it('keeps every one-second window at or under the limit while paging 5 at a time (virtual clock)', async () => {
    const sends: number[] = [];
    let clock: () => number = () => 0;
    const recording: AppleHttp = {
      request(request) {
        if (request.url.pathname.endsWith('/assignments')) sends.push(clock());
        return http.request(request);
      },
      close: async () => {},
    };
    const h = harness({ http: recording, rateLimitWindowMs: 1000 });
    clock = h.now;
    const start = h.now();
    await drain(h.client.assignments(sim.tokenFor('big')));
    expect(sends).toHaveLength(50);
    let maxInWindow = 0;
    for (let i = 0; i < sends.length; i++) {
      const inWindow = sends.filter((t) => t >= sends[i]! && t < sends[i]! + 1000).length;
      maxInWindow = Math.max(maxInWindow, inWindow);
    }
    expect(maxInWindow).toBe(15);
    // 50 requests at 15/s: the first 15 go at once, the 50th in the fourth second.
    expect(h.now() - start).toBe(3000);
  });

  it('takes the limit from service/config and is shared by all callers (real time, simulator limit on)', async () => {
    sim.setRateLimit(8);
    // A wider window than the default so a loaded CI machine's event-loop jitter cannot produce a 429.
    const { client, logs } = harness({ now: Date.now, sleep: undefined, rateLimitWindowMs: 1200 });
    const token = sim.tokenFor('main');
    expect(await client.maxRequestPerSecond()).toBe(8);
    const started = Date.now();
    // 20 independent callers at once, as several syncs of one location would be.
    const results = await Promise.all(Array.from({ length: 20 }, () => client.getClientConfig(token)));
    const elapsed = Date.now() - started;
    expect(results.every((r) => r.locationName === 'Main Campus')).toBe(true);
    // The simulator saw exactly 20 requests: none was refused with 429 and retried.
    expect(sim.requestCounts().main?.['GET client/config']).toBe(20);
    expect(logs.some((l) => l.includes('retrying'))).toBe(false);
    // 20 requests at 8 per window need at least two full windows.
    expect(elapsed).toBeGreaterThanOrEqual(2000);
    await client.close();
  });
});
