import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppleSim, type LocationSeed, startAppleSim } from '../src/apple-sim/apple-sim.js';
import { simTokenFiles } from '../src/apple-sim/sim-token-files.js';

// The simulator over real HTTP: every endpoint's shape per docs/apple.md, counts that
// agree, paging, determinism, token validation, rate limiting, faults and asynchronous events.

const fixedNow = new Date('2026-03-01T12:00:00Z');

const testLocations: LocationSeed[] = [
  {
    id: 'alpha',
    name: 'Alpha School',
    orgName: 'Alpha District',
    countryCode: 'US',
    assets: 30,
    assignments: 700,
    users: 60,
  },
  {
    id: 'beta',
    name: 'Beta Office',
    orgName: 'Beta Corp',
    countryCode: 'FR',
    assets: 8,
    assignments: 40,
    users: 10,
  },
  {
    id: 'old',
    name: 'Old Campus',
    orgName: 'Old Org',
    countryCode: 'US',
    assets: 3,
    assignments: 5,
    users: 4,
    state: 'expired',
  },
  {
    id: 'gone',
    name: 'Gone Campus',
    orgName: 'Gone Org',
    countryCode: 'US',
    assets: 3,
    assignments: 5,
    users: 4,
    state: 'revoked',
  },
  {
    id: 'claimed',
    name: 'Claimed Site',
    orgName: 'Claimed Org',
    countryCode: 'GB',
    assets: 3,
    assignments: 6,
    users: 4,
    mdmInfo: { id: 'other-mdm-id', name: 'OtherMDM', metadata: 'v9' },
  },
  {
    id: 'twin',
    name: 'Twin Library',
    orgName: 'Twin Org',
    countryCode: 'DE',
    assets: 3,
    assignments: 6,
    users: 4,
    tokens: 2,
  },
  {
    id: 'soon',
    name: 'Soon Expiring',
    orgName: 'Soon Org',
    countryCode: 'US',
    assets: 2,
    assignments: 2,
    users: 2,
    expiresAt: '2026-03-02T12:00:00+0000',
  },
];

interface Clock {
  now: Date;
}

async function startTestSim(
  clock: Clock,
  overrides: Partial<Parameters<typeof startAppleSim>[0]> = {},
): Promise<AppleSim> {
  return startAppleSim({
    seed: 'test-seed',
    locations: testLocations,
    rateLimit: false,
    pageSize: 100,
    clock: () => clock.now,
    ...overrides,
  });
}

type Json = Record<string, unknown> & {
  errorNumber?: number;
};

async function call(
  sim: AppleSim,
  locationId: string | null,
  path: string,
  init: { method?: string; body?: unknown; authorization?: string } = {},
): Promise<{ status: number; body: Json; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (init.authorization !== undefined) headers.authorization = init.authorization;
  else if (locationId !== null) headers.authorization = `Bearer ${sim.tokenFor(locationId)}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${sim.baseUrl}/${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  return { status: response.status, body: (await response.json()) as Json, headers: response.headers };
}

interface Assignment {
  adamId: string;
  pricingParam: string;
  serialNumber?: string;
  clientUserId?: string;
}

interface Asset {
  adamId: string;
  pricingParam: string;
  productType: string;
  totalCount: number;
  assignedCount: number;
  availableCount: number;
  retiredCount: number;
  deviceAssignable: boolean;
  revocable: boolean;
  supportedPlatforms: string[];
}

async function allPages<T>(sim: AppleSim, locationId: string, endpoint: string, query = ''): Promise<T[]> {
  const items: T[] = [];
  let pageIndex: number | undefined = 0;
  while (pageIndex !== undefined) {
    const sep = query === '' ? '' : '&';
    const { status, body } = await call(sim, locationId, `${endpoint}?${query}${sep}pageIndex=${pageIndex}`);
    expect(status).toBe(200);
    items.push(...(body[endpoint] as T[]));
    pageIndex = body.nextPageIndex as number | undefined;
  }
  return items;
}

function keyOf(a: Assignment): string {
  return `${a.adamId}|${a.pricingParam}|${a.serialNumber ?? ''}|${a.clientUserId ?? ''}`;
}

describe('apple-sim endpoints', () => {
  const clock: Clock = { now: fixedNow };
  let sim: AppleSim;

  beforeAll(async () => {
    sim = await startTestSim(clock);
  });
  afterAll(async () => {
    await sim.close();
  });

  it('serves service/config without a token, with limits, URLs and the error table', async () => {
    const { status, body } = await call(sim, null, 'service/config');
    expect(status).toBe(200);
    const limits = body.limits as Record<string, number>;
    expect(limits).toMatchObject({
      maxRequestPerSecond: 15,
      maxAssets: 25,
      maxSerialNumbers: 1000,
      maxClientUserIds: 1000,
      maxRevokeSerialNumbers: 100,
      maxRevokeClientUserIds: 100,
      maxMdmIdLength: 100,
      maxMdmNameLength: 100,
      maxMdmMetadataLength: 255,
    });
    const urls = body.urls as Record<string, string>;
    expect(urls.contentMetadataLookup).toBe(sim.metadataUrl);
    expect(urls.assignments).toBe(`${sim.baseUrl}/assignments`);
    const numbers = (body.errorCodes as { errorNumber: number; errorMessage: string }[]).map(
      (e) => e.errorNumber,
    );
    expect(numbers).toEqual(
      expect.arrayContaining([9601, 9602, 9603, 9621, 9622, 9625, 9646, 9650, 9721, 9722]),
    );
  });

  it('answers client/config with the location identity and stores mdmInfo on POST', async () => {
    const { status, body } = await call(sim, 'alpha', 'client/config');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      locationName: 'Alpha School',
      countryISO2ACode: 'US',
      defaultPlatform: 'volumestore',
      websiteURL: expect.stringMatching(/^https:\/\//),
      tokenExpirationDate: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$/),
      uId: expect.stringMatching(/^\d{16}$/),
    });
    expect(body.mdmInfo).toBeUndefined();

    const mdmInfo = { id: 'vppd-install-1', name: 'vppd', metadata: '0.1.0 host-a' };
    const posted = await call(sim, 'alpha', 'client/config', {
      body: { mdmInfo, notificationTypes: ['ASSET_COUNT'] },
    });
    expect(posted.status).toBe(200);
    expect(posted.body.mdmInfo).toEqual(mdmInfo);
    expect((await call(sim, 'alpha', 'client/config')).body.mdmInfo).toEqual(mdmInfo);

    const claimed = await call(sim, 'claimed', 'client/config');
    expect(claimed.body.mdmInfo).toEqual({ id: 'other-mdm-id', name: 'OtherMDM', metadata: 'v9' });
  });

  it('rejects invalid client/config updates with 9602 and changes nothing', async () => {
    const before = (await call(sim, 'beta', 'client/config')).body;
    const tooLong = await call(sim, 'beta', 'client/config', {
      body: { mdmInfo: { id: 'x'.repeat(101), name: 'n' } },
    });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.errorNumber).toBe(9602);
    const http = await call(sim, 'beta', 'client/config', {
      body: { mdmInfo: { id: 'a', name: 'b' }, notificationUrl: 'http://insecure.example/hook' },
    });
    expect(http.body.errorNumber).toBe(9710); // a URL needs its auth token
    const insecure = await call(sim, 'beta', 'client/config', {
      body: {
        mdmInfo: { id: 'a', name: 'b' },
        notificationUrl: 'http://insecure.example/hook',
        notificationAuthToken: 'secret-1',
      },
    });
    expect(insecure.body.errorNumber).toBe(9712);
    expect((await call(sim, 'beta', 'client/config')).body).toEqual(before);
    const noJson = await fetch(`${sim.baseUrl}/client/config`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sim.tokenFor('beta')}`, 'content-type': 'text/plain' },
      body: '{}',
    });
    expect(noJson.status).toBe(415);
  });

  it('reports the same uId for both tokens of one location', async () => {
    const first = await call(sim, 'twin', 'client/config');
    const second = await call(sim, null, 'client/config', {
      authorization: `Bearer ${sim.tokenFor('twin', 1)}`,
    });
    expect(sim.tokenFor('twin', 1)).not.toBe(sim.tokenFor('twin', 0));
    expect(second.status).toBe(200);
    expect(second.body.uId).toBe(first.body.uId);
    expect(second.body.locationName).toBe('Twin Library');
  });

  it('lists assets whose counts agree with the assignments', async () => {
    const assets = await allPages<Asset>(sim, 'alpha', 'assets');
    expect(assets).toHaveLength(30);
    const assignments = await allPages<Assignment>(sim, 'alpha', 'assignments');
    expect(assignments).toHaveLength(700);
    const perAsset = new Map<string, number>();
    for (const a of assignments) {
      expect(Number(a.serialNumber !== undefined) + Number(a.clientUserId !== undefined)).toBe(1);
      const key = `${a.adamId}|${a.pricingParam}`;
      perAsset.set(key, (perAsset.get(key) ?? 0) + 1);
    }
    const identities = new Set<string>();
    for (const asset of assets) {
      const key = `${asset.adamId}|${asset.pricingParam}`;
      identities.add(key);
      expect(asset.assignedCount).toBe(perAsset.get(key) ?? 0);
      expect(asset.availableCount).toBe(asset.totalCount - asset.assignedCount);
      expect(asset.availableCount).toBeGreaterThanOrEqual(0);
      expect(['STDQ', 'PLUS']).toContain(asset.pricingParam);
      expect(['App', 'Book']).toContain(asset.productType);
      expect(asset.supportedPlatforms.length).toBeGreaterThan(0);
      if (asset.productType === 'Book') expect(asset.deviceAssignable).toBe(false);
    }
    expect(identities.size).toBe(30);
    expect(assignments.every((a) => identities.has(`${a.adamId}|${a.pricingParam}`))).toBe(true);
    // No license is listed twice.
    expect(new Set(assignments.map(keyOf)).size).toBe(700);
    // Device licenses only on device-assignable assets.
    const deviceAssignable = new Map(
      assets.map((a) => [`${a.adamId}|${a.pricingParam}`, a.deviceAssignable]),
    );
    for (const a of assignments) {
      if (a.serialNumber !== undefined)
        expect(deviceAssignable.get(`${a.adamId}|${a.pricingParam}`)).toBe(true);
    }
  });

  it('seeds a realistic mix: apps and books, STDQ and PLUS, unlimited free apps, both deviceAssignable values', async () => {
    const big = await startAppleSim({
      seed: 'test-seed',
      rateLimit: false,
      clock: () => clock.now,
      locations: [
        {
          id: 'mix',
          name: 'Mix',
          orgName: 'Mix',
          countryCode: 'US',
          assets: 300,
          assignments: 3000,
          users: 200,
        },
      ],
    });
    try {
      const assets = await allPages<Asset>(big, 'mix', 'assets');
      expect(assets.some((a) => a.productType === 'Book')).toBe(true);
      expect(assets.some((a) => a.productType === 'App')).toBe(true);
      expect(assets.some((a) => a.pricingParam === 'PLUS')).toBe(true);
      expect(
        assets.some((a) => a.totalCount === 2147483647 && a.availableCount === 2147483647 - a.assignedCount),
      ).toBe(true);
      expect(assets.some((a) => a.productType === 'App' && !a.deviceAssignable)).toBe(true);
      expect(assets.some((a) => a.availableCount === 0)).toBe(true);
      // The same app under both pricing params: identity is (adamId, pricingParam).
      const byAdamId = new Map<string, number>();
      for (const a of assets) byAdamId.set(a.adamId, (byAdamId.get(a.adamId) ?? 0) + 1);
      expect([...byAdamId.values()].some((n) => n === 2)).toBe(true);
      expect(assets.reduce((sum, a) => sum + a.assignedCount, 0)).toBe(3000);
    } finally {
      await big.close();
    }
  });

  it('pages with Apple’s envelope and rejects a bad pageIndex with 9650', async () => {
    const first = await call(sim, 'alpha', 'assignments');
    expect(first.body).toMatchObject({
      currentPageIndex: 0,
      nextPageIndex: 1,
      size: 100,
      totalPages: 7,
      uId: expect.any(String),
      tokenExpirationDate: expect.any(String),
      versionId: expect.any(String),
    });
    const last = await call(sim, 'alpha', 'assignments?pageIndex=6');
    expect(last.body.currentPageIndex).toBe(6);
    expect(last.body.size).toBe(100);
    expect('nextPageIndex' in last.body).toBe(false);
    for (const bad of ['7', '-1', 'x', '1.5']) {
      const response = await call(sim, 'alpha', `assignments?pageIndex=${bad}`);
      expect(response.status).toBe(400);
      expect(response.body.errorNumber).toBe(9650);
    }
  });

  it('covers exactly the seeded set whatever the page size', async () => {
    const reference = (await allPages<Assignment>(sim, 'alpha', 'assignments')).map(keyOf);
    for (const pageSize of [1, 7, 333, 1000]) {
      const other = await startTestSim(clock, { pageSize: { assignments: pageSize } });
      try {
        const page0 = await call(other, 'alpha', 'assignments');
        expect(page0.body.totalPages).toBe(Math.ceil(700 / pageSize));
        if (pageSize <= 7) {
          // Sample instead of walking 700 pages of one record.
          for (const index of [0, 5, 99]) {
            const page = await call(other, 'alpha', `assignments?pageIndex=${index}`);
            const keys = (page.body.assignments as Assignment[]).map(keyOf);
            expect(keys).toEqual(reference.slice(index * pageSize, (index + 1) * pageSize));
          }
        } else {
          expect((await allPages<Assignment>(other, 'alpha', 'assignments')).map(keyOf)).toEqual(reference);
        }
      } finally {
        await other.close();
      }
    }
  });

  it('filters assignments by adamId, serialNumber and clientUserId', async () => {
    const all = await allPages<Assignment>(sim, 'alpha', 'assignments');
    const withSerial = all.find((a) => a.serialNumber !== undefined)!;
    const bySerial = await allPages<Assignment>(
      sim,
      'alpha',
      'assignments',
      `serialNumber=${withSerial.serialNumber}`,
    );
    expect(bySerial.map(keyOf).sort()).toEqual(
      all
        .filter((a) => a.serialNumber === withSerial.serialNumber)
        .map(keyOf)
        .sort(),
    );
    const withUser = all.find((a) => a.clientUserId !== undefined)!;
    const byUser = await allPages<Assignment>(
      sim,
      'alpha',
      'assignments',
      `clientUserId=${withUser.clientUserId}`,
    );
    expect(byUser.map(keyOf).sort()).toEqual(
      all
        .filter((a) => a.clientUserId === withUser.clientUserId)
        .map(keyOf)
        .sort(),
    );
    const byAdam = await allPages<Assignment>(sim, 'alpha', 'assignments', `adamId=${withSerial.adamId}`);
    expect(byAdam.map(keyOf)).toEqual(all.filter((a) => a.adamId === withSerial.adamId).map(keyOf));
    const none = await call(sim, 'alpha', 'assignments?serialNumber=NOSUCHSERIAL');
    expect(none.body).toMatchObject({ size: 0, totalPages: 0, currentPageIndex: 0 });
    expect(none.body.assignments).toEqual([]);
  });

  it('lists users with Apple’s statuses, retired users possibly twice', async () => {
    const users = await allPages<{ clientUserId: string; email: string; status: string }>(
      sim,
      'alpha',
      'users',
    );
    expect(users).toHaveLength(60);
    expect(new Set(users.map((u) => u.status))).toEqual(new Set(['Associated', 'Registered', 'Retired']));
    const retired = users.find((u) => u.status === 'Retired')!;
    expect(users.filter((u) => u.clientUserId === retired.clientUserId).length).toBeGreaterThanOrEqual(2);
    const filtered = await call(sim, 'alpha', `users?clientUserId=${retired.clientUserId}`);
    expect((filtered.body.users as unknown[]).length).toBe(
      users.filter((u) => u.clientUserId === retired.clientUserId).length,
    );
    // Every user license belongs to a known user.
    const known = new Set(users.map((u) => u.clientUserId));
    const assignments = await allPages<Assignment>(sim, 'alpha', 'assignments');
    for (const a of assignments)
      if (a.clientUserId !== undefined) expect(known.has(a.clientUserId)).toBe(true);
  });

  it('answers the content-metadata lookup for known adamIds and omits unknown ones', async () => {
    const assets = await allPages<Asset>(sim, 'alpha', 'assets');
    const app = assets.find((a) => a.productType === 'App')!;
    const book = assets.find((a) => a.productType === 'Book');
    const ids = [app.adamId, ...(book ? [book.adamId] : []), '1', '999999999999'];
    const response = await fetch(
      `${sim.metadataUrl}?version=2&p=mdm-lockup&caller=MDM&platform=volumestore&cc=us&l=en&id=${ids.join(',')}`,
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as { results: Record<string, Record<string, unknown>> };
    expect(Object.keys(body.results).sort()).toEqual([app.adamId, ...(book ? [book.adamId] : [])].sort());
    expect(body.results[app.adamId]).toMatchObject({
      name: expect.any(String),
      bundleId: expect.stringMatching(/^com\.[a-z]+\.app\d+$/),
      kind: expect.stringMatching(/Software$/),
      deviceFamilies: expect.any(Array),
    });
    if (book) expect(body.results[book.adamId]).toMatchObject({ kind: 'ebook', name: expect.any(String) });
  });

  it('counts requests per location and endpoint', async () => {
    sim.resetRequestCounts();
    await call(sim, 'beta', 'client/config');
    await call(sim, 'beta', 'assets');
    await call(sim, 'beta', 'assignments');
    await call(sim, 'beta', 'assignments');
    await call(sim, null, 'service/config');
    expect(sim.requestCounts()).toEqual({
      beta: { 'GET client/config': 1, 'GET assets': 1, 'GET assignments': 2 },
      '*': { 'GET service/config': 1 },
    });
    const overHttp = (await (await fetch(`${sim.adminUrl}/requests`)).json()) as Record<string, unknown>;
    expect(overHttp).toEqual(sim.requestCounts());
  });
});

describe('apple-sim tokens', () => {
  const clock: Clock = { now: fixedNow };
  let sim: AppleSim;

  beforeAll(async () => {
    sim = await startTestSim(clock);
  });
  afterAll(async () => {
    await sim.close();
  });

  it('issues real-format .vpptoken contents', () => {
    const decoded = JSON.parse(Buffer.from(sim.tokenFor('alpha'), 'base64').toString('utf8')) as Record<
      string,
      string
    >;
    expect(Object.keys(decoded).sort()).toEqual(['expDate', 'orgName', 'token']);
    expect(decoded.orgName).toBe('Alpha District');
    expect(decoded.expDate).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$/);
    expect(decoded.token!.length).toBeGreaterThan(40);
    expect(
      simTokenFiles('test-seed', testLocations, fixedNow).find((f) => f.fileName === 'alpha.vpptoken')
        ?.content,
    ).toBe(sim.tokenFor('alpha'));
  });

  it('answers 9722 for a missing or malformed Authorization header', async () => {
    for (const authorization of [
      undefined,
      'Basic abc',
      'Bearer',
      'Bearer not*base64',
      `Bearer ${Buffer.from('nojson').toString('base64')}`,
    ]) {
      const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
      const response = await fetch(`${sim.baseUrl}/client/config`, { headers });
      expect(response.status).toBe(401);
      expect(((await response.json()) as Json).errorNumber).toBe(9722);
    }
  });

  it('answers 9622 for a well-formed token Apple never issued', async () => {
    const forged = Buffer.from(
      JSON.stringify({ token: 'Zm9yZ2Vk', expDate: '2030-01-01T00:00:00+0000', orgName: 'X' }),
    ).toString('base64');
    const { status, body } = await call(sim, null, 'assets', { authorization: `Bearer ${forged}` });
    expect(status).toBe(401);
    expect(body.errorNumber).toBe(9622);
  });

  it('answers 9621 for an expired token and 9625 for a revoked one', async () => {
    const expired = await call(sim, 'old', 'client/config');
    expect(expired.status).toBe(401);
    expect(expired.body.errorNumber).toBe(9621);
    const revoked = await call(sim, 'gone', 'assignments');
    expect(revoked.status).toBe(401);
    expect(revoked.body.errorNumber).toBe(9625);
  });

  it('expires a token when the injected clock passes its expiry', async () => {
    expect((await call(sim, 'soon', 'client/config')).status).toBe(200);
    clock.now = new Date('2026-03-02T12:00:01Z');
    try {
      const later = await call(sim, 'soon', 'client/config');
      expect(later.status).toBe(401);
      expect(later.body.errorNumber).toBe(9621);
    } finally {
      clock.now = fixedNow;
    }
  });

  it('is deterministic: the same seed gives the same tokens and data, another seed others', async () => {
    const twin = await startTestSim(clock);
    const other = await startTestSim(clock, { seed: 'another-seed' });
    try {
      expect(twin.tokenFor('alpha')).toBe(sim.tokenFor('alpha'));
      expect(other.tokenFor('alpha')).not.toBe(sim.tokenFor('alpha'));
      for (const path of ['client/config', 'assets', 'assignments?pageIndex=3', 'users']) {
        const a = await fetch(`${sim.baseUrl}/${path}`, {
          headers: { authorization: `Bearer ${sim.tokenFor('beta')}` },
        });
        const b = await fetch(`${twin.baseUrl}/${path}`, {
          headers: { authorization: `Bearer ${twin.tokenFor('beta')}` },
        });
        expect(await b.text()).toBe(await a.text());
      }
      const mine = await call(sim, 'alpha', 'assignments');
      const theirs = await call(other, 'alpha', 'assignments');
      expect(theirs.body.assignments).not.toEqual(mine.body.assignments);
      // A token of one simulator seed is unknown to the other.
      const cross = await call(other, null, 'client/config', {
        authorization: `Bearer ${sim.tokenFor('alpha')}`,
      });
      expect(cross.body.errorNumber).toBe(9622);
    } finally {
      await twin.close();
      await other.close();
    }
  });
});

describe('apple-sim rate limit', () => {
  it('allows maxRequestPerSecond per location in a sliding second, then 429 / 9646', async () => {
    let monotonic = 1000;
    const sim = await startAppleSim({
      seed: 'rate',
      locations: testLocations,
      rateLimit: 3,
      monotonicNow: () => monotonic,
      clock: () => fixedNow,
    });
    try {
      const limits = (await call(sim, null, 'service/config')).body.limits as Record<string, number>;
      expect(limits.maxRequestPerSecond).toBe(3);
      for (let i = 0; i < 3; i++) expect((await call(sim, 'alpha', 'client/config')).status).toBe(200);
      const limited = await call(sim, 'alpha', 'client/config');
      expect(limited.status).toBe(429);
      expect(limited.body.errorNumber).toBe(9646);
      // Another location has its own budget.
      expect((await call(sim, 'beta', 'client/config')).status).toBe(200);
      monotonic += 999;
      expect((await call(sim, 'alpha', 'client/config')).status).toBe(429);
      monotonic += 2;
      expect((await call(sim, 'alpha', 'client/config')).status).toBe(200);
      sim.setRateLimit(false);
      for (let i = 0; i < 20; i++) expect((await call(sim, 'alpha', 'client/config')).status).toBe(200);
    } finally {
      await sim.close();
    }
  });

  it('reports per location the busiest second of arrivals, the 429s of the limit and first pages', async () => {
    let monotonic = 5000;
    const sim = await startAppleSim({
      seed: 'rate-stats',
      locations: testLocations,
      rateLimit: 3,
      pageSize: 2,
      monotonicNow: () => monotonic,
      clock: () => fixedNow,
    });
    try {
      // Five arrivals in one instant: three admitted, two refused; all five count as arrivals.
      for (let i = 0; i < 5; i++) await call(sim, 'alpha', 'client/config');
      monotonic += 1000;
      expect((await call(sim, 'alpha', 'assignments')).status).toBe(200);
      expect((await call(sim, 'alpha', 'assignments?pageIndex=1')).status).toBe(200);
      expect((await call(sim, 'beta', 'assets')).status).toBe(200);
      const expected = {
        alpha: { busiestSecond: 5, rateLimited: 2, firstPages: { assignments: 1 } },
        beta: { busiestSecond: 1, rateLimited: 0, firstPages: { assets: 1 } },
      };
      expect(sim.rateStats()).toEqual(expected);
      expect(await (await fetch(`${sim.adminUrl}/rate`)).json()).toEqual(expected);
      sim.resetRequestCounts();
      expect(sim.rateStats()).toEqual({});
    } finally {
      await sim.close();
    }
  });
});

describe('apple-sim concurrency', () => {
  it('measures requests in flight per location and, when asked, refuses more than maxInFlight with 429', async () => {
    const held: (() => void)[] = [];
    const sim = await startAppleSim({
      seed: 'inflight',
      locations: testLocations,
      rateLimit: false,
      maxInFlight: 2,
      clock: () => fixedNow,
      // Latency that ends only when the test releases it, so overlap is certain.
      sleep: () => new Promise<void>((resolve) => held.push(resolve)),
    });
    try {
      sim.faults.latency('alpha', 1);
      const first = call(sim, 'alpha', 'client/config');
      const second = call(sim, 'alpha', 'client/config');
      while (held.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
      const third = await call(sim, 'alpha', 'client/config');
      expect(third.status).toBe(429);
      expect(third.body.errorNumber).toBe(9646);
      for (const release of held) release();
      expect((await first).status).toBe(200);
      expect((await second).status).toBe(200);
      expect(sim.peakInFlight()).toEqual({ alpha: 3 });
      expect(await (await fetch(`${sim.adminUrl}/in-flight`)).json()).toEqual({ alpha: 3 });
      sim.resetRequestCounts();
      expect(sim.peakInFlight()).toEqual({});
    } finally {
      await sim.close();
    }
  });
});

describe('apple-sim faults', () => {
  const clock: Clock = { now: fixedNow };
  let sim: AppleSim;
  const slept: number[] = [];

  beforeAll(async () => {
    sim = await startTestSim(clock, {
      sleep: async (ms) => {
        slept.push(ms);
      },
    });
  });
  afterAll(async () => {
    await sim.close();
  });

  it('fails the next N calls with 5xx and Retry-After', async () => {
    sim.faults.serverError('beta', 2, { retryAfter: 7 });
    for (let i = 0; i < 2; i++) {
      const response = await call(sim, 'beta', 'assets');
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('7');
      expect(response.body.errorNumber).toBe(9603);
    }
    expect((await call(sim, 'beta', 'assets')).status).toBe(200);
  });

  it('can fail like a front-end proxy: 5xx with an HTML page and no Apple error', async () => {
    sim.faults.serverError('beta', 1, { status: 502, errorNumber: 0, retryAfter: 0 });
    const response = await fetch(`${sim.baseUrl}/assets`, {
      headers: { authorization: `Bearer ${sim.tokenFor('beta')}` },
    });
    expect(response.status).toBe(502);
    expect(response.headers.get('content-type')).toBe('text/html');
    expect(response.headers.get('retry-after')).toBeNull();
    expect(await response.text()).toContain('<html>');
  });

  it('scopes a fault to one endpoint when asked', async () => {
    sim.faults.serverError('beta', 1, { status: 500, endpoint: 'assignments' });
    expect((await call(sim, 'beta', 'assets')).status).toBe(200);
    expect((await call(sim, 'beta', 'assignments')).status).toBe(500);
    expect((await call(sim, 'beta', 'assignments')).status).toBe(200);
  });

  it('answers a 429 burst', async () => {
    sim.faults.rateLimitBurst('beta', 3);
    for (let i = 0; i < 3; i++) {
      const response = await call(sim, 'beta', 'client/config');
      expect(response.status).toBe(429);
      expect(response.body.errorNumber).toBe(9646);
    }
    expect((await call(sim, 'beta', 'client/config')).status).toBe(200);
  });

  it('returns an error inside an HTTP 200 body', async () => {
    sim.faults.errorInBody('beta', 9622);
    sim.faults.errorInBody('beta', 9722);
    const first = await call(sim, 'beta', 'assignments');
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ errorNumber: 9622, errorMessage: 'Invalid authentication token' });
    const second = await call(sim, 'beta', 'assignments');
    expect(second.status).toBe(200);
    expect(second.body.errorNumber).toBe(9722);
    expect((await call(sim, 'beta', 'assignments')).body.assignments).toBeDefined();
  });

  it('switches token state: invalid, revoked, expired and back', async () => {
    const expectations = [
      ['invalid', 9622],
      ['revoked', 9625],
      ['expired', 9621],
    ] as const;
    for (const [state, errorNumber] of expectations) {
      sim.faults.setTokenState('beta', state);
      const response = await call(sim, 'beta', 'client/config');
      expect(response.status).toBe(401);
      expect(response.body.errorNumber).toBe(errorNumber);
    }
    sim.faults.setTokenState('beta', 'active');
    expect((await call(sim, 'beta', 'client/config')).status).toBe(200);
  });

  it('lets another MDM claim a location', async () => {
    sim.faults.setMdmInfo('beta', { id: 'someone-else', name: 'Rival MDM' });
    expect((await call(sim, 'beta', 'client/config')).body.mdmInfo).toEqual({
      id: 'someone-else',
      name: 'Rival MDM',
    });
    sim.faults.setMdmInfo('beta', null);
    expect((await call(sim, 'beta', 'client/config')).body.mdmInfo).toBeUndefined();
  });

  it('adds latency per request through the injected sleep', async () => {
    slept.length = 0;
    sim.faults.latency('beta', 250);
    await call(sim, 'beta', 'client/config');
    await call(sim, 'alpha', 'client/config');
    sim.faults.latency('beta', 0);
    await call(sim, 'beta', 'client/config');
    expect(slept).toEqual([250]);
  });

  it('changes the data between pages: later pages carry another versionId, counts still agree', async () => {
    sim.faults.changeDataAfterPage('alpha', 0);
    const page0 = await call(sim, 'alpha', 'assignments?pageIndex=0');
    const page1 = await call(sim, 'alpha', 'assignments?pageIndex=1');
    expect(page1.body.versionId).not.toBe(page0.body.versionId);
    // The fault fires once: a restarted paging sees one stable version.
    const again0 = await call(sim, 'alpha', 'assignments?pageIndex=0');
    const again1 = await call(sim, 'alpha', 'assignments?pageIndex=1');
    expect(again0.body.versionId).toBe(page1.body.versionId);
    expect(again1.body.versionId).toBe(page1.body.versionId);
    const all = await allPages<Assignment>(sim, 'alpha', 'assignments');
    // One license moved, one was added.
    expect(all).toHaveLength(701);
    const before = new Set((page0.body.assignments as Assignment[]).map(keyOf));
    expect((again0.body.assignments as Assignment[]).map(keyOf).every((k) => before.has(k))).toBe(false);
    const assets = await allPages<Asset>(sim, 'alpha', 'assets');
    for (const asset of assets) {
      expect(asset.assignedCount).toBe(
        all.filter((a) => a.adamId === asset.adamId && a.pricingParam === asset.pricingParam).length,
      );
    }
  });

  it('drives every fault through the admin API too, and reset restores the seeded state', async () => {
    const admin = (path: string, method = 'GET', body?: unknown) =>
      fetch(`${sim.adminUrl}${path}`, {
        method,
        ...(body !== undefined
          ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }
          : {}),
      });
    const locations = (await (await admin('/locations')).json()) as {
      id: string;
      tokens: string[];
      uId: string;
    }[];
    expect(locations.map((l) => l.id)).toEqual(testLocations.map((l) => l.id));
    expect(locations.find((l) => l.id === 'twin')?.tokens).toHaveLength(2);
    expect(await (await admin('/locations/beta/token')).text()).toBe(sim.tokenFor('beta'));
    expect(await (await admin('/locations/twin/token/1')).text()).toBe(sim.tokenFor('twin', 1));

    expect(
      (await admin('/locations/beta/faults', 'POST', { type: 'serverError', count: 1, status: 502 })).status,
    ).toBe(200);
    expect((await call(sim, 'beta', 'assets')).status).toBe(502);
    await admin('/locations/beta/faults', 'POST', { type: 'rateLimitBurst', count: 1 });
    expect((await call(sim, 'beta', 'assets')).status).toBe(429);
    await admin('/locations/beta/faults', 'POST', { type: 'errorInBody', count: 1, errorNumber: 9722 });
    expect((await call(sim, 'beta', 'assets')).body.errorNumber).toBe(9722);
    await admin('/locations/beta/faults', 'POST', { type: 'serverError', count: 5 });
    expect(
      ((await (await admin('/locations/beta/faults')).json()) as { pending: unknown[] }).pending,
    ).toHaveLength(1);
    expect((await admin('/locations/beta/faults', 'DELETE')).status).toBe(204);
    expect((await call(sim, 'beta', 'assets')).status).toBe(200);

    expect((await admin('/locations/beta/token-state', 'PUT', { state: 'revoked' })).status).toBe(200);
    expect((await call(sim, 'beta', 'assets')).body.errorNumber).toBe(9625);
    await admin('/locations/beta/mdm-info', 'PUT', { mdmInfo: { id: 'rival', name: 'Rival' } });
    const versionBefore = ((await (await admin('/locations/beta')).json()) as { versionId: string })
      .versionId;
    await admin('/locations/beta/change-data', 'POST');
    const changed = (await (await admin('/locations/beta')).json()) as {
      versionId: string;
      mdmInfo: unknown;
    };
    expect(changed.versionId).not.toBe(versionBefore);
    expect(changed.mdmInfo).toEqual({ id: 'rival', name: 'Rival' });
    await admin('/faults', 'POST', { type: 'serverError', count: 1, endpoint: 'service/config' });
    expect((await call(sim, null, 'service/config')).status).toBe(503);
    await admin('/locations/alpha/faults', 'POST', { type: 'latency', ms: 5 });
    await admin('/locations/alpha/faults', 'POST', { type: 'changeDataAfterPage', page: 2 });

    expect((await admin('/rate-limit', 'PUT', { maxRequestPerSecond: 0 })).status).toBe(400);
    expect((await admin('/locations/nope')).status).toBe(404);
    expect((await admin('/locations/beta/faults', 'POST', { type: 'meteor' })).status).toBe(400);
    expect((await admin('/reset', 'POST')).status).toBe(204);
    const reset = (await (await admin('/locations/beta')).json()) as {
      versionId: string;
      mdmInfo: unknown;
      tokenState: string;
    };
    expect(reset.tokenState).toBe('active');
    expect(reset.mdmInfo).toBeNull();
    expect((await call(sim, 'beta', 'assets')).status).toBe(200);
    expect(
      ((await (await admin('/faults')).json()) as Record<string, { latencyMs: number }>).alpha?.latencyMs,
    ).toBe(0);
    expect(await (await admin('/requests')).json()).toEqual({ beta: { 'GET assets': 1 } });
  });
});

describe('apple-sim asynchronous events', () => {
  const clock: Clock = { now: fixedNow };
  let sim: AppleSim;

  beforeAll(async () => {
    sim = await startTestSim(clock, { eventPolls: 1, eventDelayMs: 60_000 });
  });
  afterAll(async () => {
    await sim.close();
  });

  async function pickAsset(locationId: string, predicate: (a: Asset) => boolean): Promise<Asset> {
    const asset = (await allPages<Asset>(sim, locationId, 'assets')).find(predicate);
    expect(asset).toBeDefined();
    return asset!;
  }

  it('associates a license: PENDING, then COMPLETE, counts and versionId move', async () => {
    const asset = await pickAsset('alpha', (a) => a.deviceAssignable && a.availableCount > 0);
    const version0 = (await call(sim, 'alpha', 'assignments')).body.versionId;
    const serialNumber = 'NEWDEVICE001';
    const posted = await call(sim, 'alpha', 'assets/associate', {
      body: {
        assets: [{ adamId: asset.adamId, pricingParam: asset.pricingParam }],
        serialNumbers: [serialNumber],
      },
    });
    expect(posted.status).toBe(200);
    const eventId = posted.body.eventId as string;
    expect(eventId).toMatch(/^[0-9a-f-]{36}$/);
    expect(posted.body.uId).toBeDefined();

    const pending = await call(sim, 'alpha', `status?eventId=${eventId}`);
    expect(pending.body).toMatchObject({
      eventStatus: 'PENDING',
      eventType: 'ASSOCIATE',
      numRequested: 1,
      numCompleted: 0,
    });
    const done = await call(sim, 'alpha', `status?eventId=${eventId}`);
    expect(done.body).toMatchObject({
      eventStatus: 'COMPLETE',
      numRequested: 1,
      numCompleted: 1,
      failures: [],
    });

    const after = await pickAsset(
      'alpha',
      (a) => a.adamId === asset.adamId && a.pricingParam === asset.pricingParam,
    );
    expect(after.assignedCount).toBe(asset.assignedCount + 1);
    expect(after.availableCount).toBe(asset.availableCount - 1);
    const bySerial = await call(sim, 'alpha', `assignments?serialNumber=${serialNumber}`);
    expect(bySerial.body.assignments).toEqual([
      { adamId: asset.adamId, pricingParam: asset.pricingParam, serialNumber },
    ]);
    expect(bySerial.body.versionId).not.toBe(version0);

    const delta = await call(sim, 'alpha', `assignments?sinceVersionId=${version0}`);
    expect(delta.body.assignments).toEqual([
      { adamId: asset.adamId, pricingParam: asset.pricingParam, serialNumber },
    ]);
    const current = await call(sim, 'alpha', `assignments?sinceVersionId=${bySerial.body.versionId}`);
    expect(current.body).toMatchObject({ size: 0, assignments: [] });
    const badVersion = await call(sim, 'alpha', 'assignments?sinceVersionId=nope');
    expect(badVersion.status).toBe(400);
    expect(badVersion.body.errorNumber).toBe(9721);
  });

  it('revokes a device’s revocable licenses: PENDING then COMPLETE', async () => {
    const all = await allPages<Assignment>(sim, 'alpha', 'assignments');
    const serialNumber = all.find((a) => a.serialNumber !== undefined)!.serialNumber!;
    const held = all.filter((a) => a.serialNumber === serialNumber);
    const posted = await call(sim, 'alpha', 'assets/revoke', { body: { serialNumbers: [serialNumber] } });
    const eventId = posted.body.eventId as string;
    expect((await call(sim, 'alpha', `status?eventId=${eventId}`)).body.eventStatus).toBe('PENDING');
    const done = await call(sim, 'alpha', `status?eventId=${eventId}`);
    expect(done.body).toMatchObject({
      eventStatus: 'COMPLETE',
      eventType: 'REVOKE',
      numRequested: 1,
      numCompleted: 1,
    });
    const remaining = await call(sim, 'alpha', `assignments?serialNumber=${serialNumber}`);
    expect(remaining.body.assignments).toEqual([]);
    expect(held.length).toBeGreaterThan(0);
    expect((await allPages<Assignment>(sim, 'alpha', 'assignments')).length).toBe(all.length - held.length);
  });

  it('completes an event when the clock passes its delay, without polls', async () => {
    const asset = await pickAsset('beta', (a) => a.deviceAssignable && a.availableCount > 0);
    const posted = await call(sim, 'beta', 'assets/associate', {
      body: {
        assets: [{ adamId: asset.adamId, pricingParam: asset.pricingParam }],
        serialNumbers: ['CLOCKDEVICE1'],
      },
    });
    clock.now = new Date(fixedNow.getTime() + 60_000);
    try {
      const listed = await call(sim, 'beta', 'assignments?serialNumber=CLOCKDEVICE1');
      expect((listed.body.assignments as unknown[]).length).toBe(1);
      const status = await call(sim, 'beta', `status?eventId=${posted.body.eventId as string}`);
      expect(status.body.eventStatus).toBe('COMPLETE');
    } finally {
      clock.now = fixedNow;
    }
  });

  it('reports per-item failures: a license that does not exist, a user Apple does not know', async () => {
    const asset = await pickAsset('beta', () => true);
    const posted = await call(sim, 'beta', 'assets/disassociate', {
      body: {
        assets: [{ adamId: asset.adamId, pricingParam: asset.pricingParam }],
        serialNumbers: ['NOT-ASSIGNED-1'],
      },
    });
    const eventId = posted.body.eventId as string;
    await call(sim, 'beta', `status?eventId=${eventId}`);
    const failed = await call(sim, 'beta', `status?eventId=${eventId}`);
    expect(failed.body).toMatchObject({
      eventStatus: 'FAILED',
      eventType: 'DISASSOCIATE',
      numCompleted: 0,
      failures: [{ adamId: asset.adamId, serialNumber: 'NOT-ASSIGNED-1', errorNumber: 9610 }],
    });
    const unknownUser = await call(sim, 'beta', 'assets/associate', {
      body: {
        assets: [{ adamId: asset.adamId, pricingParam: asset.pricingParam }],
        clientUserIds: ['nobody'],
      },
    });
    const id = unknownUser.body.eventId as string;
    await call(sim, 'beta', `status?eventId=${id}`);
    expect(
      ((await call(sim, 'beta', `status?eventId=${id}`)).body.failures as { errorNumber: number }[])[0]
        ?.errorNumber,
    ).toBe(9609);
  });

  it('accepts sinceVersionId on users (no user changes: zero records) and rejects unknown versions', async () => {
    const page = await call(sim, 'beta', 'users');
    const delta = await call(sim, 'beta', `users?sinceVersionId=${page.body.versionId as string}`);
    expect(delta.body).toMatchObject({ size: 0, totalPages: 0, users: [] });
    const bad = await call(sim, 'beta', 'users?sinceVersionId=unknown');
    expect(bad.status).toBe(400);
    expect(bad.body.errorNumber).toBe(9721);
  });

  it('filters assets by adamId, pricingParam, productType and deviceAssignable', async () => {
    const all = await allPages<Asset>(sim, 'alpha', 'assets');
    const one = all[3]!;
    const byId = await allPages<Asset>(
      sim,
      'alpha',
      'assets',
      `adamId=${one.adamId}&pricingParam=${one.pricingParam}`,
    );
    expect(byId).toEqual([one]);
    const books = await allPages<Asset>(sim, 'alpha', 'assets', 'productType=Book');
    expect(books.map((a) => a.adamId)).toEqual(
      all.filter((a) => a.productType === 'Book').map((a) => a.adamId),
    );
    const deviceOnly = await allPages<Asset>(sim, 'alpha', 'assets', 'deviceAssignable=true');
    expect(deviceOnly.length).toBe(all.filter((a) => a.deviceAssignable).length);
    expect((await call(sim, 'alpha', 'assets?revocable=maybe')).body.errorNumber).toBe(9602);
  });

  it('enforces Apple’s request limits with 9602', async () => {
    const assets = Array.from({ length: 26 }, (_, i) => ({ adamId: String(i + 1), pricingParam: 'STDQ' }));
    const tooMany = await call(sim, 'beta', 'assets/associate', { body: { assets, serialNumbers: ['A'] } });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.errorNumber).toBe(9602);
    const serials = Array.from({ length: 101 }, (_, i) => `S${i}`);
    const revoke = await call(sim, 'beta', 'assets/revoke', { body: { serialNumbers: serials } });
    expect(revoke.status).toBe(400);
    expect(revoke.body.errorNumber).toBe(9602);
    const unknown = await call(sim, 'beta', 'status?eventId=does-not-exist');
    expect(unknown.body.errorNumber).toBe(9708);
  });
});

describe('apple-sim at scale', () => {
  it('serves a 1,000,000-assignment location on demand (sampled pages, no full scan)', async () => {
    const startedAt = performance.now();
    const sim = await startAppleSim({
      seed: 'scale',
      rateLimit: false,
      pageSize: 500,
      locations: [
        {
          id: 'huge',
          name: 'Huge District',
          orgName: 'Huge',
          countryCode: 'US',
          assets: 2000,
          assignments: 1_000_000,
          users: 50_000,
        },
      ],
    });
    const startMs = performance.now() - startedAt;
    try {
      // Generated on demand: start-up does not build a million records.
      expect(startMs).toBeLessThan(5000);
      const first = await call(sim, 'huge', 'assignments');
      expect(first.body.totalPages).toBe(2000);
      expect(first.body.size).toBe(500);
      for (const index of [1, 777, 1999]) {
        const page = await call(sim, 'huge', `assignments?pageIndex=${index}`);
        expect(page.body.size).toBe(500);
        expect(page.body.currentPageIndex).toBe(index);
        expect(page.body.versionId).toBe(first.body.versionId);
        const keys = (page.body.assignments as Assignment[]).map(keyOf);
        expect(new Set(keys).size).toBe(500);
      }
      expect('nextPageIndex' in (await call(sim, 'huge', 'assignments?pageIndex=1999')).body).toBe(false);
      const assets = await allPages<Asset>(sim, 'huge', 'assets');
      expect(assets.reduce((sum, a) => sum + a.assignedCount, 0)).toBe(1_000_000);
      expect(assets.every((a) => a.availableCount === a.totalCount - a.assignedCount)).toBe(true);
    } finally {
      await sim.close();
    }
  });
});

const externalAddress = Object.values(networkInterfaces())
  .flat()
  .find((i) => i !== undefined && !i.internal && i.family === 'IPv4')?.address;

describe('apple-sim admin API exposure', () => {
  it.skipIf(externalAddress === undefined)('serves /_sim only to loopback clients', async () => {
    const sim = await startAppleSim({ host: '0.0.0.0', locations: testLocations, seed: 'exposure' });
    try {
      const port = new URL(sim.url).port;
      expect((await fetch(`http://127.0.0.1:${port}/_sim/locations`)).status).toBe(200);
      const remote = await fetch(`http://${externalAddress}:${port}/_sim/locations`);
      expect(remote.status).toBe(403);
      // Apple's API itself is served to anyone who can reach the port.
      expect((await fetch(`http://${externalAddress}:${port}/mdm/v2/service/config`)).status).toBe(200);
    } finally {
      await sim.close();
    }
  });
});
