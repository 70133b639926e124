// Conformance with `@microsoft/microsoft-graph-client` v3 (docs/graph-api.md, "Checked with
// Microsoft's own clients"). That client only behaves over HTTPS: it sends the Authorization header
// only to https URLs of Graph's hosts or of `customHosts`, and it re-parses absolute nextLinks by looking for
// "https://". So vppd is served with a throw-away self-signed certificate and the client trusts it
// through an undici Agent holding that certificate as its only CA, passed as `fetchOptions.dispatcher`
// (the client calls the global fetch with its fetchOptions; Node's fetch accepts an undici dispatcher).
// Nothing in the process's global TLS settings changes. The Agent is composed with a small interceptor
// that records each request as it leaves for the socket, so the test sees the real page requests.
import { Client, type GraphError, PageIterator, ResponseType } from '@microsoft/microsoft-graph-client';
import { Agent, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import { tenantA, tenantB, testConfig } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { buildSToken } from './helpers/stoken-builder.js';
import { createSelfSignedCertificate } from './helpers/tls.js';

interface SentRequest {
  readonly method: string;
  readonly origin: string;
  readonly path: string;
  readonly authorization: string | undefined;
}

interface GraphVppToken {
  readonly id: string;
  readonly displayName: string | null;
  readonly lastSyncStatus: string;
  readonly token: string | null;
}

interface GraphCollection<T> {
  readonly '@odata.context': string;
  readonly '@odata.nextLink'?: string;
  readonly value: T[];
}

const tokenCount = 250;
let server: RunningServer;
let agent: Agent;
let trusting: Dispatcher;
let client: Client;
const sent: SentRequest[] = [];

/** Reads the authorization header whatever shape undici was given the headers in. */
function authorizationOf(headers: Dispatcher.DispatchOptions['headers']): string | undefined {
  if (!headers) return undefined;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === 'authorization') return String(headers[i + 1]);
    }
    return undefined;
  }
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) {
    if (name.toLowerCase() === 'authorization') return String(value);
  }
  return undefined;
}

/**
 * Fetch options that route a request through the trusting dispatcher. The cast is only needed because
 * undici's own types and Node's bundled `undici-types` are distinct (structurally equal) declarations.
 */
function trustingFetchOptions(): RequestInit {
  return { dispatcher: trusting } as unknown as RequestInit;
}

function graphClient(accessToken: string): Client {
  return Client.initWithMiddleware({
    authProvider: { getAccessToken: async () => accessToken },
    // The client joins baseUrl + defaultVersion + path, so the version goes in defaultVersion.
    baseUrl: server.url,
    defaultVersion: 'beta',
    customHosts: new Set([new URL(server.url).hostname]),
    fetchOptions: trustingFetchOptions(),
  });
}

beforeAll(async () => {
  const certificate = await createSelfSignedCertificate();
  server = await startServer(testConfig({ port: '0' }), { https: certificate });
  expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  agent = new Agent({ connect: { ca: certificate.cert }, connections: 16 });
  trusting = agent.compose((dispatch) => (options, handler) => {
    sent.push({
      method: options.method,
      origin: String(options.origin),
      path: options.path,
      authorization: authorizationOf(options.headers),
    });
    return dispatch(options, handler);
  });
  client = graphClient(await mintToken({ tenantId: tenantA, roles: [roles.readWrite] }));
});
afterAll(async () => {
  await agent?.close();
  await server?.close();
});

describe('microsoft-graph-client v3 over HTTPS', () => {
  it('trusts vppd only through the test CA', async () => {
    const url = `${server.url}/beta/deviceAppManagement/vppTokens`;
    const untrusted = await fetch(url).then(
      () => undefined,
      (error: unknown) => error as Error & { cause?: { code?: string } },
    );
    expect(untrusted?.cause?.code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    // With the CA the TLS handshake succeeds (and vppd asks for a bearer token).
    const trusted = await fetch(url, trustingFetchOptions());
    expect(trusted.status).toBe(401);
    await trusted.body?.cancel();
    // The Graph client without the dispatcher cannot connect either.
    const untrustingClient = Client.initWithMiddleware({
      authProvider: { getAccessToken: async () => 'unused' },
      baseUrl: server.url,
      defaultVersion: 'beta',
      customHosts: new Set(['127.0.0.1']),
    });
    const failure = await untrustingClient
      .api('/deviceAppManagement/vppTokens')
      .get()
      .then(
        () => undefined,
        (error: unknown) => error as GraphError,
      );
    expect(failure?.statusCode).toBe(-1);
    expect(failure?.message).toBe('fetch failed');
  });

  it(`creates ${tokenCount} tokens with POST (201, bearer sent to the custom host)`, async () => {
    const before = sent.length;
    // The first one raw, to see the status line and content type the client parses.
    const raw = (await client
      .api('/deviceAppManagement/vppTokens')
      .responseType(ResponseType.RAW)
      .post({ token: buildSToken({ orgName: 'HTTPS Org 0' }), displayName: 'HTTPS token 000' })) as Response;
    expect(raw.status).toBe(201);
    expect(raw.headers.get('content-type')?.split(';')[0]).toBe('application/json');
    const created: GraphVppToken[] = [(await raw.json()) as GraphVppToken];
    // The rest ten at a time over the pooled connections.
    for (let start = 1; start < tokenCount; start += 10) {
      const batch = await Promise.all(
        Array.from(
          { length: Math.min(10, tokenCount - start) },
          (_, offset) =>
            client.api('/deviceAppManagement/vppTokens').post({
              token: buildSToken({ orgName: `HTTPS Org ${start + offset}` }),
              displayName: `HTTPS token ${String(start + offset).padStart(3, '0')}`,
            }) as Promise<GraphVppToken>,
        ),
      );
      created.push(...batch);
    }
    expect(created).toHaveLength(tokenCount);
    expect(new Set(created.map((t) => t.id)).size).toBe(tokenCount);
    // Never synced yet: none, or inProgress when vppd requests a first sync on upload.
    expect(created.every((t) => ['none', 'inProgress'].includes(t.lastSyncStatus) && t.token === null)).toBe(
      true,
    );
    expect(await server.context.tokens.count(tenantA)).toBe(tokenCount);
    const posts = sent.slice(before);
    expect(posts).toHaveLength(tokenCount);
    for (const request of posts) {
      expect(request.method).toBe('POST');
      expect(request.origin).toBe(server.url);
      expect(request.path).toBe('/beta/deviceAppManagement/vppTokens');
      expect(request.authorization).toMatch(/^Bearer ey/);
    }
  });

  it(`pages through all ${tokenCount} with PageIterator, following absolute nextLinks`, async () => {
    const before = sent.length;
    const first = (await client
      .api('/deviceAppManagement/vppTokens')
      .top(40)
      .select(['id', 'displayName', 'lastSyncStatus'])
      .get()) as GraphCollection<GraphVppToken>;
    expect(first.value).toHaveLength(40);
    expect(first['@odata.nextLink']).toMatch(
      new RegExp(`^${server.url.replace(/[.]/g, '\\.')}/beta/deviceAppManagement/vppTokens\\?`),
    );
    const seen = new Map<string, number>();
    const iterator = new PageIterator(client, first, (item: GraphVppToken) => {
      seen.set(item.id, (seen.get(item.id) ?? 0) + 1);
      expect(['none', 'inProgress']).toContain(item.lastSyncStatus);
      expect(Object.keys(item).sort()).toEqual(['@odata.type', 'displayName', 'id', 'lastSyncStatus']);
      return true;
    });
    await iterator.iterate();
    expect(iterator.isComplete()).toBe(true);

    // Each stored token exactly once.
    const stored = await server.context.tokens.list(tenantA);
    expect(seen.size).toBe(tokenCount);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect([...seen.keys()].sort()).toEqual(stored.map((t) => t.id).sort());

    // 250 at 40 a page: the first request and six more, each from a nextLink, each authenticated.
    const pages = sent.slice(before);
    expect(pages).toHaveLength(Math.ceil(tokenCount / 40));
    const [firstRequest, ...following] = pages;
    expect(firstRequest?.path).toMatch(/^\/beta\/deviceAppManagement\/vppTokens\?/);
    expect(following.length).toBeGreaterThanOrEqual(2);
    for (const page of [firstRequest, ...following]) {
      expect(page?.method).toBe('GET');
      expect(page?.origin).toBe(server.url);
      expect(page?.authorization).toMatch(/^Bearer ey/);
    }
    // The second request is the first page's nextLink, sent as vppd wrote it.
    expect(`${server.url}${following[0]?.path}`).toBe(first['@odata.nextLink']);
    for (const page of following) {
      const url = new URL(`${server.url}${page.path}`);
      expect(url.pathname).toBe('/beta/deviceAppManagement/vppTokens');
      expect(url.searchParams.get('$skiptoken')).toBeTruthy();
      expect(url.searchParams.get('$top')).toBe('40');
      expect(url.searchParams.get('$select')).toBe('id,displayName,lastSyncStatus');
    }
  });

  it('pages with a filter kept in every nextLink', async () => {
    // A few tokens fail, as a sync would leave them; the filter must follow the client through pages.
    const stored = await server.context.tokens.list(tenantA);
    const failed = stored.filter((_, i) => i % 7 === 0);
    for (const token of failed) {
      await server.context.tokens.update(tenantA, token.id, { lastSyncStatus: 'failed' });
    }
    const before = sent.length;
    const first = (await client
      .api('/deviceAppManagement/vppTokens')
      .filter("lastSyncStatus eq 'failed'")
      .orderby('displayName desc')
      .top(10)
      .get()) as GraphCollection<GraphVppToken>;
    const ids: string[] = [];
    const iterator = new PageIterator(client, first, (item: GraphVppToken) => {
      expect(item.lastSyncStatus).toBe('failed');
      ids.push(item.id);
      return true;
    });
    await iterator.iterate();
    const expected = [...failed].sort((a, b) => (b.displayName ?? '').localeCompare(a.displayName ?? ''));
    expect(ids).toEqual(expected.map((t) => t.id));
    expect(sent.length - before).toBe(Math.ceil(failed.length / 10));
  });

  it('surfaces vppd errors as GraphError with status, code and request-id', async () => {
    const missing = await client
      .api('/deviceAppManagement/vppTokens/00000000-0000-4000-8000-00000000dead')
      .get()
      .then(
        () => undefined,
        (error: unknown) => error as GraphError,
      );
    expect(missing?.statusCode).toBe(404);
    expect(missing?.code).toBe('ResourceNotFound');
    expect(missing?.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(missing?.date).toBeInstanceOf(Date);

    const otherTenant = graphClient(await mintToken({ tenantId: tenantB, roles: [roles.read] }));
    const forbidden = await otherTenant
      .api('/deviceAppManagement/vppTokens')
      .post({ token: buildSToken() })
      .then(
        () => undefined,
        (error: unknown) => error as GraphError,
      );
    expect(forbidden?.statusCode).toBe(403);
    expect(forbidden?.code).toBe('Forbidden');
    // Tenant B sees none of tenant A's tokens.
    const empty = (await otherTenant
      .api('/deviceAppManagement/vppTokens')
      .get()) as GraphCollection<GraphVppToken>;
    expect(empty.value).toEqual([]);
  });
});
