// Conformance with the official beta SDK's Kiota models (docs/graph-api.md, "Checked with
// Microsoft's own clients"): vppd listens on a real socket on 127.0.0.1 and every response is read
// by the SDK's own deserializers — `createVppTokenFromDiscriminatorValue`, the collection response
// parser and, for errors, `createODataErrorFromDiscriminatorValue` through the error mapping — and
// paged with msgraph-sdk-core's `PageIterator`. Kiota turns any enum spelling it does not know into
// undefined, so every enum is compared with what the store holds.

import {
  createVppTokenCollectionResponseFromDiscriminatorValue,
  type VppToken as KiotaVppToken,
  type VppTokenRevokeLicensesActionResult,
} from '@microsoft/msgraph-beta-sdk/models/index.js';
import type { ODataError } from '@microsoft/msgraph-beta-sdk/models/oDataErrors/index.js';
import { type PageCollection, PageIterator } from '@microsoft/msgraph-sdk-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  actionState,
  appleDeviceDeliveryProtocol,
  vppTokenAccountType,
  vppTokenActionFailureReason,
  vppTokenState,
  vppTokenSyncStatus,
} from '../src/domain/enums.js';
import { neverSyncedIso, type TokenActionResult } from '../src/domain/sync-lifecycle.js';
import type { VppToken } from '../src/domain/vpp-token.js';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import { tenantA, tenantB, testConfig } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import {
  createBetaAdapter,
  type Exchange,
  graphErrorMappings,
  vppTokensClient,
} from './helpers/kiota-vpp-tokens.js';
import { seedTokens } from './helpers/seed-tokens.js';
import { buildSToken } from './helpers/stoken-builder.js';

let server: RunningServer;
let baseUrl: string;
const exchanges: Exchange[] = [];
let client: ReturnType<typeof vppTokensClient>;
let adapter: ReturnType<typeof createBetaAdapter>;

beforeAll(async () => {
  server = await startServer(testConfig({ port: '0' }));
  baseUrl = `${server.url}/beta`;
  expect(baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/beta$/);
  adapter = createBetaAdapter(baseUrl, await mintToken({ tenantId: tenantA, roles: [roles.readWrite] }), {
    exchanges,
  });
  client = vppTokensClient(adapter);
});
afterAll(async () => {
  await server?.close();
});

/** The last exchange the adapter made (what the wire said, which Kiota does not surface). */
function lastExchange(): Exchange {
  const last = exchanges.at(-1);
  if (!last) throw new Error('no exchange recorded');
  return last;
}

/** Runs a call that must fail and returns the ODataError the SDK threw, checked for Graph's shape. */
async function expectODataError(call: Promise<unknown>, status: number, code: string): Promise<ODataError> {
  let thrown: unknown;
  try {
    await call;
  } catch (error) {
    thrown = error;
  }
  expect(thrown, 'the call should have failed').toBeDefined();
  const error = thrown as ODataError;
  expect(error.responseStatusCode).toBe(status);
  expect(error.errorEscaped?.code).toBe(code);
  expect(error.errorEscaped?.message).toEqual(expect.any(String));
  expect(error.errorEscaped?.message?.length).toBeGreaterThan(0);
  // ODataError lifts the inner message to the thrown error's own `message`.
  expect(error.message).toBe(error.errorEscaped?.message);
  const inner = error.errorEscaped?.innerError;
  expect(inner?.requestId).toMatch(/^[0-9a-f-]{36}$/);
  expect(inner?.requestId).toBe(lastExchange().headers.get('request-id'));
  expect(inner?.date).toBeInstanceOf(Date);
  expect(Number.isNaN(inner?.date?.getTime())).toBe(false);
  expect(Math.abs((inner?.date?.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
  // Nothing of the error body was left unread: every key was a known model property.
  expect(error.errorEscaped?.additionalData ?? {}).toEqual({});
  return error;
}

/** The token as the store holds it. */
async function stored(id: string): Promise<VppToken> {
  const token = await server.context.tokens.get(tenantA, id);
  if (!token) throw new Error(`token ${id} is not stored`);
  return token;
}

/** Asserts that the SDK's view of a token equals the stored entity, property by property. */
function expectSameToken(kiota: KiotaVppToken, token: VppToken): void {
  expect(kiota.id).toBe(token.id);
  expect(kiota.odataType).toBe('#microsoft.graph.vppToken');
  // Enums: defined, and the member the server stores (Kiota maps unknown spellings to undefined).
  expect(kiota.lastSyncStatus).toBeDefined();
  expect(kiota.lastSyncStatus).toBe(token.lastSyncStatus);
  expect(kiota.state).toBeDefined();
  expect(kiota.state).toBe(token.state);
  expect(kiota.vppTokenAccountType).toBeDefined();
  expect(kiota.vppTokenAccountType).toBe(token.vppTokenAccountType);
  expect(kiota.appleDeviceAppDeliveryProtocolType).toBeDefined();
  expect(kiota.appleDeviceAppDeliveryProtocolType).toBe(token.appleDeviceAppDeliveryProtocolType);
  // Dates: the same instants.
  expect(kiota.lastSyncDateTime?.getTime()).toBe(token.lastSyncDateTime.getTime());
  expect(kiota.expirationDateTime?.getTime()).toBe(token.expirationDateTime.getTime());
  expect(kiota.lastModifiedDateTime?.getTime()).toBe(token.lastModifiedDateTime.getTime());
  // Plain properties (Kiota reads JSON null as undefined).
  expect(kiota.organizationName ?? null).toBe(token.organizationName);
  expect(kiota.appleId ?? null).toBe(token.appleId);
  expect(kiota.displayName ?? null).toBe(token.displayName);
  expect(kiota.countryOrRegion ?? null).toBe(token.countryOrRegion);
  expect(kiota.locationName ?? null).toBe(token.locationName);
  expect(kiota.automaticallyUpdateApps).toBe(token.automaticallyUpdateApps);
  expect(kiota.dataSharingConsentGranted).toBe(token.dataSharingConsentGranted);
  expect(kiota.claimTokenManagementFromExternalMdm).toBe(token.claimTokenManagementFromExternalMdm);
  expect(kiota.roleScopeTagIds).toEqual([...token.roleScopeTagIds]);
  // Write-only secret.
  expect(kiota.token ?? null).toBeNull();
  expectSameActionResults(kiota.tokenActionResults ?? [], token.tokenActionResults);
  // Every property the server sent is a property of the model (nothing fell into additionalData).
  expect(kiota.additionalData ?? {}).toEqual({});
}

function expectSameActionResults(
  kiota: NonNullable<KiotaVppToken['tokenActionResults']>,
  results: readonly TokenActionResult[],
): void {
  expect(kiota).toHaveLength(results.length);
  results.forEach((result, index) => {
    const read = kiota[index];
    expect(read?.actionName).toBe(result.actionName);
    expect(read?.actionState).toBeDefined();
    expect(read?.actionState).toBe(result.actionState);
    expect(read?.startDateTime?.getTime()).toBe(result.startDateTime.getTime());
    expect(read?.lastUpdatedDateTime?.getTime()).toBe(result.lastUpdatedDateTime.getTime());
    if (result.revoke) {
      // The derived type is recognised only through `@odata.type` with its leading '#'.
      expect(read?.odataType).toBe('#microsoft.graph.vppTokenRevokeLicensesActionResult');
      const revoke = read as VppTokenRevokeLicensesActionResult;
      expect(revoke.actionFailureReason).toBeDefined();
      expect(revoke.actionFailureReason).toBe(result.revoke.actionFailureReason);
      expect(revoke.totalLicensesCount).toBe(result.revoke.totalLicensesCount);
      expect(revoke.failedLicensesCount).toBe(result.revoke.failedLicensesCount);
    } else {
      expect(read?.odataType ?? undefined).toBeUndefined();
    }
    expect(read?.additionalData ?? {}).toEqual({});
  });
}

/** Reads the whole collection (optionally narrowed) with the SDK's PageIterator; returns items and pages. */
async function readAll(
  via: { client: ReturnType<typeof vppTokensClient>; adapter: ReturnType<typeof createBetaAdapter> },
  query: Parameters<typeof client.list>[0],
) {
  const before = exchanges.length;
  const first = await via.client.list(query);
  if (!first) throw new Error('no first page');
  const items: KiotaVppToken[] = [];
  const iterator = new PageIterator<KiotaVppToken>(
    via.adapter,
    first as PageCollection<KiotaVppToken>,
    (item) => {
      items.push(item);
      return true;
    },
    createVppTokenCollectionResponseFromDiscriminatorValue as never,
    graphErrorMappings,
  );
  await iterator.iterate();
  expect(iterator.getPagingState()).toBe('Complete');
  return { items, pages: exchanges.slice(before) };
}

describe('Kiota beta SDK: create, get, update, delete', () => {
  let createdId: string;

  it('POST answers 201 and the SDK reads the created token whole', async () => {
    const created = await client.create({
      token: buildSToken({ orgName: 'Kiota Schools', expDate: new Date('2029-02-03T04:05:06Z') }),
      displayName: 'Kiota main campus',
      vppTokenAccountType: 'education',
      appleDeviceAppDeliveryProtocolType: 'mobileDeviceManagement',
      countryOrRegion: 'us',
      automaticallyUpdateApps: true,
      roleScopeTagIds: ['0', '7'],
    });
    expect(lastExchange().status).toBe(201);
    expect(lastExchange().method).toBe('POST');
    expect(lastExchange().headers.get('location')).toBe(
      `${baseUrl}/deviceAppManagement/vppTokens/${created?.id}`,
    );
    if (!created?.id) throw new Error('no id');
    createdId = created.id;
    // Its context annotation is the only thing the model has no property for.
    expect(created.additionalData).toEqual({
      '@odata.context': `${baseUrl}/$metadata#deviceAppManagement/vppTokens/$entity`,
    });
    const { additionalData: _context, ...entity } = created;
    expectSameToken(entity, await stored(createdId));
    expect(created.organizationName).toBe('Kiota Schools');
    expect(created.expirationDateTime?.toISOString()).toBe('2029-02-03T04:05:06.000Z');
    // Before any sync ran: none, or inProgress when vppd requests a first sync on upload.
    expect(['none', 'inProgress']).toContain(created.lastSyncStatus);
    expect(created.state).toBe('unknown');
    expect(created.vppTokenAccountType).toBe('education');
    expect(created.appleDeviceAppDeliveryProtocolType).toBe('mobileDeviceManagement');
    // Never synced: Graph's 0001-01-01 sentinel parses to that exact instant.
    expect(created.lastSyncDateTime?.toISOString()).toBe(neverSyncedIso);
    expect(created.lastSyncDateTime?.getTime()).toBe(-62_135_596_800_000);
    expect(created.lastSyncDateTime?.getUTCFullYear()).toBe(1);
    expect(created.tokenActionResults?.every((r) => r.actionName === 'syncLicenses')).toBe(true);
  });

  it('GET reads every property after a failed sync, with action results of both types', async () => {
    // What a failed sync and a revoke leave behind, written as the sync engine would (store level).
    const syncedAt = new Date('2026-02-27T08:09:10.123Z');
    await server.context.tokens.update(tenantA, createdId, {
      lastSyncStatus: 'failed',
      state: 'expired',
      lastSyncDateTime: syncedAt,
      locationName: 'Kiota Location',
    });
    await server.context.tokens.replaceActionResults(tenantA, createdId, [
      {
        actionName: 'syncLicenses',
        actionState: 'failed',
        startDateTime: new Date('2026-03-01T10:00:00.000Z'),
        lastUpdatedDateTime: new Date('2026-03-01T10:00:05.250Z'),
      },
      {
        actionName: 'revokeLicenses',
        actionState: 'done',
        startDateTime: new Date('2026-03-01T11:00:00.000Z'),
        lastUpdatedDateTime: new Date('2026-03-01T11:00:30.000Z'),
        revoke: { actionFailureReason: 'appleFailure', totalLicensesCount: 40, failedLicensesCount: 3 },
      },
    ]);
    const read = await client.get(createdId);
    expect(lastExchange().status).toBe(200);
    if (!read) throw new Error('no token');
    const { additionalData, ...entity } = read;
    expect(additionalData).toEqual({
      '@odata.context': `${baseUrl}/$metadata#deviceAppManagement/vppTokens/$entity`,
    });
    expectSameToken(entity, await stored(createdId));
    expect(read.lastSyncStatus).toBe('failed');
    expect(read.state).toBe('expired');
    expect(read.lastSyncDateTime?.getTime()).toBe(syncedAt.getTime());
    expect(read.tokenActionResults?.[0]?.actionState).toBe('failed');
    const revoke = read.tokenActionResults?.[1] as VppTokenRevokeLicensesActionResult | undefined;
    expect(revoke?.actionFailureReason).toBe('appleFailure');
  });

  it('GET with $select returns only the selected properties (and id)', async () => {
    const read = await client.get(createdId, { select: ['displayName', 'lastSyncStatus'] });
    expect(read?.id).toBe(createdId);
    expect(read?.displayName).toBe('Kiota main campus');
    expect(read?.lastSyncStatus).toBe('failed');
    expect(read?.state).toBeUndefined();
    expect(read?.expirationDateTime).toBeUndefined();
    expect(read?.additionalData).toEqual({
      '@odata.context': `${baseUrl}/$metadata#deviceAppManagement/vppTokens(displayName,lastSyncStatus)/$entity`,
    });
  });

  it('PATCH without a preference answers 204 and the SDK returns nothing; the change is stored', async () => {
    const result = await client.update(createdId, {
      displayName: 'Renamed by Kiota',
      automaticallyUpdateApps: false,
    });
    expect(result).toBeUndefined();
    expect(lastExchange().status).toBe(204);
    expect(lastExchange().method).toBe('PATCH');
    const token = await stored(createdId);
    expect(token.displayName).toBe('Renamed by Kiota');
    expect(token.automaticallyUpdateApps).toBe(false);
  });

  it('PATCH with Prefer: return=representation answers 200 with the updated token', async () => {
    const result = await client.update(
      createdId,
      { appleDeviceAppDeliveryProtocolType: 'declarativeDeviceManagement', vppTokenAccountType: 'business' },
      { Prefer: 'return=representation' },
    );
    expect(lastExchange().status).toBe(200);
    expect(lastExchange().headers.get('preference-applied')).toBe('return=representation');
    if (!result) throw new Error('no representation');
    const { additionalData: _context, ...entity } = result;
    expectSameToken(entity, await stored(createdId));
    expect(result.appleDeviceAppDeliveryProtocolType).toBe('declarativeDeviceManagement');
    expect(result.vppTokenAccountType).toBe('business');
    expect(result.displayName).toBe('Renamed by Kiota');
  });

  it('DELETE answers 204, after which GET is a 404 ODataError', async () => {
    await client.delete(createdId);
    expect(lastExchange().status).toBe(204);
    expect(await server.context.tokens.get(tenantA, createdId)).toBeUndefined();
    await expectODataError(client.get(createdId), 404, 'ResourceNotFound');
  });
});

describe('Kiota beta SDK: every enum member and date survives the SDK', () => {
  let seeded: VppToken[];
  const tenantId = tenantB;
  let tenantBClient: ReturnType<typeof vppTokensClient>;
  let tenantBAdapter: ReturnType<typeof createBetaAdapter>;

  beforeAll(async () => {
    tenantBAdapter = createBetaAdapter(baseUrl, await mintToken({ tenantId, roles: [roles.read] }), {
      exchanges,
    });
    tenantBClient = vppTokensClient(tenantBAdapter);
    // Enough tokens that each member of each enum appears at least once (the longest enum has 7).
    const syncStatuses = vppTokenSyncStatus.names;
    const states = vppTokenState.names;
    const accountTypes = vppTokenAccountType.names;
    const protocols = appleDeviceDeliveryProtocol.allowed({ version: 'beta' });
    const actionStates = actionState.names;
    const failureReasons = vppTokenActionFailureReason.names;
    const pick = <T>(list: readonly T[], index: number): T => list[index % list.length] as T;
    seeded = await seedTokens(server.context.tokens, {
      tenantId,
      count: 8,
      write: (i) => ({
        vppTokenAccountType: pick(accountTypes, i),
        appleDeviceAppDeliveryProtocolType: pick(protocols, i),
        countryOrRegion: i % 2 === 0 ? 'gb' : null,
        appleId: `vpp${i}@example.com`,
      }),
      changes: (i) => ({
        lastSyncStatus: pick(syncStatuses, i),
        state: pick(states, i),
        // Odd tokens have synced once (millisecond precision), even ones never.
        ...(i % 2 === 1 ? { lastSyncDateTime: new Date(Date.UTC(2026, 1, i, 3, 4, 5, 600 + i)) } : {}),
      }),
    });
    for (const [i, token] of seeded.entries()) {
      await server.context.tokens.replaceActionResults(tenantId, token.id, [
        {
          actionName: 'syncLicenses',
          actionState: pick(actionStates, i),
          startDateTime: new Date(Date.UTC(2026, 2, 1, 9, i, 0)),
          lastUpdatedDateTime: new Date(Date.UTC(2026, 2, 1, 9, i, 30, 5)),
        },
        {
          actionName: 'revokeLicenses',
          actionState: pick(actionStates, i + 3),
          startDateTime: new Date(Date.UTC(2026, 2, 2, 9, i, 0)),
          lastUpdatedDateTime: new Date(Date.UTC(2026, 2, 2, 9, i, 1)),
          revoke: {
            actionFailureReason: pick(failureReasons, i),
            totalLicensesCount: 10 + i,
            failedLicensesCount: i,
          },
        },
      ]);
    }
    // Sanity: the seed really covers every member.
    const all = await server.context.tokens.list(tenantId);
    expect(new Set(all.map((t) => t.lastSyncStatus))).toEqual(new Set(syncStatuses));
    expect(new Set(all.map((t) => t.state))).toEqual(new Set(states));
    expect(new Set(all.map((t) => t.vppTokenAccountType))).toEqual(new Set(accountTypes));
    expect(new Set(all.map((t) => t.appleDeviceAppDeliveryProtocolType))).toEqual(new Set(protocols));
    expect(new Set(all.map((t) => t.tokenActionResults[0]?.actionState))).toEqual(new Set(actionStates));
  });

  it('lists them (read-only permission) and each equals the store, enums and instants included', async () => {
    const page = await tenantBClient.list({ count: true });
    expect(lastExchange().status).toBe(200);
    expect(page?.odataCount).toBe(seeded.length);
    expect(page?.odataNextLink ?? undefined).toBeUndefined();
    expect(page?.additionalData).toEqual({
      '@odata.context': `${baseUrl}/$metadata#deviceAppManagement/vppTokens`,
    });
    const byId = new Map((page?.value ?? []).map((t) => [t.id, t]));
    expect(byId.size).toBe(seeded.length);
    for (const token of await server.context.tokens.list(tenantId)) {
      const read = byId.get(token.id);
      if (!read) throw new Error(`token ${token.id} missing from the list`);
      expectSameToken(read, token);
      if (token.lastSyncDateTime.toISOString() === neverSyncedIso) {
        expect(read.lastSyncDateTime?.getUTCFullYear()).toBe(1);
        expect(read.lastSyncDateTime?.toISOString()).toBe('0001-01-01T00:00:00.000Z');
      }
    }
  });

  it('GETs each one and reads the same', async () => {
    for (const token of await server.context.tokens.list(tenantId)) {
      const read = await tenantBClient.get(token.id);
      if (!read) throw new Error('no token');
      const { additionalData: _context, ...entity } = read;
      expectSameToken(entity, token);
    }
  });
});

describe('Kiota beta SDK: list with $filter, $select, $orderby, $top and PageIterator', () => {
  const tenantC = 'cccccccc-3333-4333-8333-333333333333';
  let pagingClient: ReturnType<typeof vppTokensClient>;
  let pagingAdapter: ReturnType<typeof createBetaAdapter>;
  let seeded: VppToken[];

  beforeAll(async () => {
    pagingAdapter = createBetaAdapter(
      baseUrl,
      await mintToken({ tenantId: tenantC, roles: [roles.readWrite] }),
      {
        exchanges,
      },
    );
    pagingClient = vppTokensClient(pagingAdapter);
    // 17 tokens; every third has synced and failed, so the filter keeps 11 of them.
    seeded = await seedTokens(server.context.tokens, {
      tenantId: tenantC,
      count: 17,
      // Display names not in insertion order, so $orderby has work to do.
      write: (i) => ({ displayName: `Campus ${String((i * 7) % 17).padStart(2, '0')}` }),
      changes: (i) => (i % 3 === 0 ? { lastSyncStatus: 'failed' } : undefined),
    });
  });

  it("pages $filter=lastSyncStatus eq 'none' with $select, $orderby desc and $top=4 over several pages", async () => {
    const before = exchanges.length;
    const first = await pagingClient.list({
      filter: "lastSyncStatus eq 'none'",
      select: ['displayName', 'lastSyncStatus'],
      orderby: ['displayName desc'],
      top: 4,
    });
    if (!first) throw new Error('no page');
    // The SDK sent Graph's `$` names (the middleware decodes %24) and vppd's nextLink is absolute.
    const firstUrl = new URL(exchanges[before]?.url ?? 'invalid:');
    expect(exchanges[before]?.requestHeaders.get('authorization')).toMatch(/^Bearer /);
    expect(first.value).toHaveLength(4);
    expect(first.odataNextLink).toMatch(
      new RegExp(`^${baseUrl.replace(/[.]/g, '\\.')}/deviceAppManagement/vppTokens\\?`),
    );
    expect(first.additionalData).toEqual({
      '@odata.context': `${baseUrl}/$metadata#deviceAppManagement/vppTokens(displayName,lastSyncStatus)`,
    });

    const items: KiotaVppToken[] = [];
    const iterator = new PageIterator<KiotaVppToken>(
      pagingAdapter,
      first as PageCollection<KiotaVppToken>,
      (item) => {
        items.push(item);
        return true;
      },
      createVppTokenCollectionResponseFromDiscriminatorValue as never,
      graphErrorMappings,
    );
    await iterator.iterate();
    expect(iterator.getPagingState()).toBe('Complete');

    const expected = seeded
      .filter((t) => t.lastSyncStatus === 'none')
      .sort((a, b) => (b.displayName ?? '').localeCompare(a.displayName ?? ''));
    expect(expected).toHaveLength(11);
    expect(items.map((t) => t.id)).toEqual(expected.map((t) => t.id));
    expect(items.map((t) => t.displayName)).toEqual(expected.map((t) => t.displayName));
    for (const item of items) {
      expect(item.lastSyncStatus).toBe('none');
      // $select: nothing else came back.
      expect(item.state).toBeUndefined();
      expect(item.vppTokenAccountType).toBeUndefined();
      expect(item.lastSyncDateTime).toBeUndefined();
    }
    // 11 rows at 4 per page: three requests, the later two straight from the absolute nextLinks.
    const pages = exchanges.slice(before);
    expect(pages.map((p) => p.status)).toEqual([200, 200, 200]);
    expect(firstUrl.searchParams.get('$filter')).toBe("lastSyncStatus eq 'none'");
    expect(firstUrl.searchParams.get('$top')).toBe('4');
    expect(firstUrl.searchParams.get('$orderby')).toBe('displayName desc');
    expect(firstUrl.searchParams.get('$select')).toBe('displayName,lastSyncStatus');
    for (const page of pages.slice(1)) {
      expect(page.url.startsWith(`${baseUrl}/deviceAppManagement/vppTokens?`)).toBe(true);
      expect(new URL(page.url).searchParams.get('$skiptoken')).toBeTruthy();
      expect(page.requestHeaders.get('authorization')).toMatch(/^Bearer /);
    }
  });

  it('pages the whole collection (no filter) with $top=5: each id exactly once', async () => {
    const { items, pages } = await readAll({ client: pagingClient, adapter: pagingAdapter }, { top: 5 });
    expect(pages.length).toBe(4);
    expect(items.map((t) => t.id).sort()).toEqual(seeded.map((t) => t.id).sort());
    expect(new Set(items.map((t) => t.id)).size).toBe(seeded.length);
    for (const item of items) {
      expect(item.lastSyncStatus).toBeDefined();
      expect(item.state).toBe('unknown');
    }
  });
});

describe('Kiota beta SDK: errors are ODataError with code, message and innerError', () => {
  it('400 for a misspelled enum member in $filter, echoing client-request-id', async () => {
    const error = await expectODataError(
      client.list(
        { filter: "lastSyncStatus eq 'Completed'" },
        { 'client-request-id': 'kiota-conformance-1' },
      ),
      400,
      'BadRequest',
    );
    expect(error.errorEscaped?.message).toContain('Completed');
    expect(error.errorEscaped?.innerError?.clientRequestId).toBe('kiota-conformance-1');
  });

  it('400 for a misspelled enum member in a body the SDK serialized', async () => {
    await expectODataError(
      client.create({ token: buildSToken(), vppTokenAccountType: 'Business' as 'business' }),
      400,
      'BadRequest',
    );
    const list = await client.list({ filter: "displayName eq 'never-created'" });
    expect(list?.value).toEqual([]);
  });

  it('401 for a token signed with another key, and for an expired one', async () => {
    const forged = await mintToken({
      tenantId: tenantA,
      roles: [roles.readWrite],
      secret: 'another-secret-that-is-at-least-32-bytes!!',
    });
    const forgedClient = vppTokensClient(createBetaAdapter(baseUrl, forged, { exchanges }));
    await expectODataError(forgedClient.list(), 401, 'InvalidAuthenticationToken');
    expect(lastExchange().headers.get('www-authenticate')).toMatch(/^Bearer/);

    const expired = await mintToken({ tenantId: tenantA, roles: [roles.readWrite], expiresIn: -600 });
    const expiredClient = vppTokensClient(createBetaAdapter(baseUrl, expired, { exchanges }));
    await expectODataError(
      expiredClient.get('00000000-0000-4000-8000-000000000000'),
      401,
      'InvalidAuthenticationToken',
    );
  });

  it('403 for a write with a read-only permission; nothing is stored', async () => {
    const readOnly = await mintToken({ tenantId: tenantA, roles: [roles.read] });
    const readOnlyClient = vppTokensClient(createBetaAdapter(baseUrl, readOnly, { exchanges }));
    const countBefore = await server.context.tokens.count(tenantA);
    await expectODataError(
      readOnlyClient.create({ token: buildSToken(), displayName: 'not allowed' }),
      403,
      'Forbidden',
    );
    expect(await server.context.tokens.count(tenantA)).toBe(countBefore);
  });

  it('404 for an unknown id on GET, PATCH and DELETE', async () => {
    const missing = '0badc0de-0000-4000-8000-000000000000';
    await expectODataError(client.get(missing), 404, 'ResourceNotFound');
    await expectODataError(client.update(missing, { displayName: 'x' }), 404, 'ResourceNotFound');
    await expectODataError(client.delete(missing), 404, 'ResourceNotFound');
  });

  it('409 when the same sToken is uploaded twice to a tenant', async () => {
    const sToken = buildSToken({ orgName: 'Twice Inc' });
    const first = await client.create({ token: sToken, displayName: 'first' });
    expect(lastExchange().status).toBe(201);
    const error = await expectODataError(
      client.create({ token: sToken, displayName: 'second' }),
      409,
      'Conflict',
    );
    // The secret is never echoed in an error.
    expect(JSON.stringify(error)).not.toContain(sToken);
    await client.delete(first?.id ?? '');
  });
});
