// vppd as a drop-in behind a TLS-terminating reverse proxy at a path prefix, over real sockets:
//  - a proxy written here (node:https, self-signed certificate) serves https://127.0.0.1:<port>/vppd/
//    and forwards to vppd over plain http, as nginx with `proxy_set_header X-Forwarded-*` would (or,
//    in a second variant, with RFC 7239 `Forwarded` plus `X-Forwarded-Prefix`);
//  - graph-js (`@microsoft/microsoft-graph-client`) creates tokens through it and its PageIterator
//    pages them ($top=2 over 5): every Location, @odata.context and @odata.nextLink starts with the
//    public base; forwarded headers from an untrusted peer are ignored; VPPD_PUBLIC_URL wins;
//  - JSON batches through the proxy: the Kiota core's BatchRequestContent with real requests, and
//    raw-socket replays of the body shapes Maester, Graph's documentation and graph-js send.
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import {
  AllowedHostsValidator,
  BaseBearerTokenAuthenticationProvider,
  HttpMethod,
  RequestInformation,
} from '@microsoft/kiota-abstractions';
import { Client, PageIterator } from '@microsoft/microsoft-graph-client';
import { GraphBetaRequestAdapter } from '@microsoft/msgraph-beta-sdk';
import { serializeVppToken } from '@microsoft/msgraph-beta-sdk/models/index.js';
import { version as betaSdkVersion } from '@microsoft/msgraph-beta-sdk/version.js';
import { BatchRequestContent, createGraphClientFactory } from '@microsoft/msgraph-sdk-core';
import { Agent, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RawSettings } from '../src/config.js';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import { tenantA, testConfig } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { graphErrorMappings, vppTokensUriTemplate } from './helpers/kiota-vpp-tokens.js';
import { buildSToken } from './helpers/stoken-builder.js';
import { createSelfSignedCertificate, type SelfSignedCertificate } from './helpers/tls.js';

type ForwardingMode = 'x-forwarded' | 'forwarded';

interface TlsProxy {
  /** The public base: `https://127.0.0.1:<port>/vppd`. */
  readonly base: string;
  readonly host: string;
  close(): Promise<void>;
}

const prefix = '/vppd';

/**
 * A TLS-terminating reverse proxy at `/vppd/`: strips the prefix, forwards to `target` over http with
 * the upstream's Host (as nginx's proxy_pass does) and the forwarded headers of `mode`; buffers the
 * answer and sends it with a Content-Length.
 */
async function startTlsProxy(
  certificate: SelfSignedCertificate,
  target: string,
  mode: ForwardingMode,
): Promise<TlsProxy> {
  const targetUrl = new URL(target);
  let publicHost = '';
  const server = https.createServer({ key: certificate.key, cert: certificate.cert }, (req, res) => {
    const url = req.url ?? '/';
    if (!url.startsWith(`${prefix}/`)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not under the prefix');
      return;
    }
    const headers: http.OutgoingHttpHeaders = { ...req.headers, host: targetUrl.host };
    headers['x-forwarded-prefix'] = prefix;
    if (mode === 'x-forwarded') {
      headers['x-forwarded-proto'] = 'https';
      headers['x-forwarded-host'] = publicHost;
    } else {
      headers.forwarded = `for=${req.socket.remoteAddress};proto=https;host="${publicHost}"`;
    }
    const upstream = http.request(
      {
        host: targetUrl.hostname,
        port: targetUrl.port,
        method: req.method,
        path: url.slice(prefix.length),
        headers,
      },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          const body = Buffer.concat(chunks);
          const out: http.OutgoingHttpHeaders = { ...answer.headers, 'content-length': body.length };
          delete out['transfer-encoding'];
          delete out.connection;
          res.writeHead(answer.statusCode ?? 502, out).end(body);
        });
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  publicHost = `127.0.0.1:${port}`;
  return {
    base: `https://${publicHost}${prefix}`,
    host: publicHost,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An HTTP/1.1 exchange written byte by byte on a TLS socket (no client library in between). */
async function rawHttps(
  certificate: SelfSignedCertificate,
  host: string,
  request: string,
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const [hostname, port] = host.split(':') as [string, string];
  const socket = tls.connect({ host: hostname, port: Number(port), ca: certificate.cert });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  // TLS has no half-close: write, and let `Connection: close` end the exchange from the server side.
  socket.write(request);
  await ended;
  const text = Buffer.concat(chunks).toString('utf8');
  const split = text.indexOf('\r\n\r\n');
  const [statusLine = '', ...headerLines] = text.slice(0, split).split('\r\n');
  const headers = Object.fromEntries(
    headerLines.map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
    }),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, body: text.slice(split + 4) };
}

/** A POST of a JSON body as raw bytes. */
function rawPost(host: string, path: string, authorization: string, json: string): string {
  const body = Buffer.from(json, 'utf8');
  return [
    `POST ${path} HTTP/1.1`,
    `Host: ${host}`,
    `Authorization: ${authorization}`,
    'Content-Type: application/json',
    'Accept: application/json',
    `Content-Length: ${body.length}`,
    'Connection: close',
    '',
    json,
  ].join('\r\n');
}

let certificate: SelfSignedCertificate;
let trusted: RunningServer;
let untrusted: RunningServer;
let pinned: RunningServer;
let proxy: TlsProxy;
let forwardedProxy: TlsProxy;
let untrustedProxy: TlsProxy;
let pinnedProxy: TlsProxy;
let agent: Agent;
let dispatcher: Dispatcher;
let bearer: string;
const sentPaths: string[] = [];

const start = (settings: RawSettings) => startServer(testConfig({ port: '0', ...settings }));
const fetchOptions = () => ({ dispatcher }) as unknown as RequestInit;

async function getJson(url: string): Promise<Record<string, unknown>> {
  const response = await fetch(url, { ...fetchOptions(), headers: { authorization: `Bearer ${bearer}` } });
  expect(response.status, url).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

async function createTokens(base: string, count: number): Promise<string[]> {
  const locations: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const response = await fetch(`${base}/beta/deviceAppManagement/vppTokens`, {
      ...fetchOptions(),
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token: buildSToken(), displayName: `Proxied ${i}` }),
    });
    expect(response.status).toBe(201);
    locations.push(response.headers.get('location') ?? '');
    await response.body?.cancel();
  }
  return locations;
}

beforeAll(async () => {
  certificate = await createSelfSignedCertificate();
  bearer = await mintToken({ tenantId: tenantA, roles: [roles.readWrite] });
  trusted = await start({ trustProxy: '127.0.0.1/32, ::1' });
  untrusted = await start({ trustProxy: '192.0.2.0/24' });
  pinned = await start({ trustProxy: '127.0.0.1', publicUrl: 'https://tools.example.com/vppd/' });
  proxy = await startTlsProxy(certificate, trusted.url, 'x-forwarded');
  forwardedProxy = await startTlsProxy(certificate, trusted.url, 'forwarded');
  untrustedProxy = await startTlsProxy(certificate, untrusted.url, 'x-forwarded');
  pinnedProxy = await startTlsProxy(certificate, pinned.url, 'x-forwarded');
  agent = new Agent({ connect: { ca: certificate.cert } });
  dispatcher = agent.compose((dispatch) => (options, handler) => {
    sentPaths.push(options.path);
    return dispatch(options, handler);
  });
});
afterAll(async () => {
  await agent?.close();
  for (const p of [proxy, forwardedProxy, untrustedProxy, pinnedProxy]) await p?.close();
  for (const s of [trusted, untrusted, pinned]) await s?.close();
});

describe('behind a TLS-terminating proxy at /vppd', () => {
  it('graph-js creates 5 tokens (Location under the public base) and PageIterator pages them 2 at a time', async () => {
    const client = Client.initWithMiddleware({
      authProvider: { getAccessToken: async () => bearer },
      baseUrl: proxy.base,
      defaultVersion: 'beta',
      customHosts: new Set(['127.0.0.1']),
      fetchOptions: fetchOptions(),
    });
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const created = (await client
        .api('/deviceAppManagement/vppTokens')
        .post({ token: buildSToken(), displayName: `graph-js ${i}` })) as { id: string };
      ids.push(created.id);
    }
    const raw = await fetch(`${proxy.base}/beta/deviceAppManagement/vppTokens`, {
      ...fetchOptions(),
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token: buildSToken(), displayName: 'raw' }),
    });
    expect(raw.status).toBe(201);
    const rawCreated = (await raw.json()) as { id: string };
    expect(raw.headers.get('location')).toBe(
      `${proxy.base}/beta/deviceAppManagement/vppTokens/${rawCreated.id}`,
    );
    await client.api(`/deviceAppManagement/vppTokens/${rawCreated.id}`).delete();

    const before = sentPaths.length;
    const first = (await client.api('/deviceAppManagement/vppTokens').top(2).get()) as {
      '@odata.context': string;
      '@odata.nextLink': string;
      value: { id: string }[];
    };
    expect(first['@odata.context']).toBe(`${proxy.base}/beta/$metadata#deviceAppManagement/vppTokens`);
    expect(first['@odata.nextLink'].startsWith(`${proxy.base}/beta/deviceAppManagement/vppTokens?`)).toBe(
      true,
    );
    const seen: string[] = [];
    const iterator = new PageIterator(client, first, (item: { id: string }) => {
      seen.push(item.id);
      return true;
    });
    await iterator.iterate();
    expect(iterator.isComplete()).toBe(true);
    expect(seen.sort()).toEqual([...ids].sort());
    // Three pages, every one through the proxy under the prefix (the nextLinks kept it).
    const pages = sentPaths.slice(before);
    expect(pages).toHaveLength(3);
    for (const path of pages) expect(path.startsWith('/vppd/beta/deviceAppManagement/vppTokens?')).toBe(true);
    expect(pages.slice(1).every((p) => p.includes('$skiptoken='))).toBe(true);
  });

  it('every @odata.context and @odata.nextLink of every page starts with the public base (both header styles)', async () => {
    for (const base of [proxy.base, forwardedProxy.base]) {
      let next: string | undefined = `${base}/beta/deviceAppManagement/vppTokens?$top=2&$select=displayName`;
      let pages = 0;
      while (next !== undefined) {
        const page = await getJson(next);
        expect(String(page['@odata.context']), base).toMatch(
          new RegExp(`^${base.replace(/[.]/g, '\\.')}/beta/\\$metadata#`),
        );
        next = page['@odata.nextLink'] as string | undefined;
        if (next !== undefined) expect(next.startsWith(`${base}/beta/`)).toBe(true);
        pages += 1;
      }
      expect(pages).toBe(3);
      const single = await getJson(`${base}/v1.0/deviceAppManagement/vppTokens?$top=1`);
      expect(String(single['@odata.context']).startsWith(`${base}/v1.0/$metadata#`)).toBe(true);
    }
  });

  it('ignores forwarded headers from a peer that is not a trusted proxy', async () => {
    await createTokens(untrustedProxy.base, 3);
    const page = await getJson(`${untrustedProxy.base}/beta/deviceAppManagement/vppTokens?$top=2`);
    expect(String(page['@odata.context']).startsWith(`${untrusted.url}/beta/$metadata#`)).toBe(true);
    expect(String(page['@odata.nextLink']).startsWith(`${untrusted.url}/beta/`)).toBe(true);
    // Sent straight to vppd from a peer it does not trust, forged headers change nothing.
    const forged = await fetch(`${untrusted.url}/beta/deviceAppManagement/vppTokens?$top=1`, {
      headers: {
        authorization: `Bearer ${bearer}`,
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'https',
        forwarded: 'proto=https;host=evil.example',
      },
    });
    const body = (await forged.json()) as Record<string, string>;
    expect(body['@odata.context']?.startsWith(`${untrusted.url}/beta/`)).toBe(true);
  });

  it('VPPD_PUBLIC_URL wins over the forwarded headers', async () => {
    const locations = await createTokens(pinnedProxy.base, 3);
    for (const location of locations)
      expect(location.startsWith('https://tools.example.com/vppd/beta/deviceAppManagement/vppTokens/')).toBe(
        true,
      );
    const page = await getJson(`${pinnedProxy.base}/beta/deviceAppManagement/vppTokens?$top=2`);
    expect(page['@odata.context']).toBe(
      'https://tools.example.com/vppd/beta/$metadata#deviceAppManagement/vppTokens',
    );
    expect(String(page['@odata.nextLink']).startsWith('https://tools.example.com/vppd/beta/')).toBe(true);
  });
});

describe('JSON batching through the proxy', () => {
  it('Kiota core BatchRequestContent: real requests, statuses and Location under the public base', async () => {
    const validator = new AllowedHostsValidator(new Set(['127.0.0.1']));
    const auth = new BaseBearerTokenAuthenticationProvider({
      getAuthorizationToken: async () => bearer,
      getAllowedHostsValidator: () => validator,
    });
    const httpClient = createGraphClientFactory(
      { graphServiceTargetVersion: 'beta', graphServiceLibraryClientVersion: betaSdkVersion },
      (url: string, init: RequestInit) => fetch(url, { ...init, ...fetchOptions() }),
    );
    const adapter = new GraphBetaRequestAdapter(auth, undefined, undefined, httpClient);
    adapter.baseUrl = `${proxy.base}/beta`;

    const list = new RequestInformation(HttpMethod.GET, vppTokensUriTemplate, { baseurl: adapter.baseUrl });
    list.configure(
      { queryParameters: { top: 2, select: ['displayName'] } },
      { top: '%24top', select: '%24select' },
    );
    const create = new RequestInformation(HttpMethod.POST, vppTokensUriTemplate, {
      baseurl: adapter.baseUrl,
    });
    create.setContentFromParsable(
      adapter,
      'application/json',
      { token: buildSToken(), displayName: 'From a Kiota batch' },
      serializeVppToken,
    );
    const missing = new RequestInformation(HttpMethod.GET, '{+baseurl}/deviceAppManagement/vppTokens/{id}', {
      baseurl: adapter.baseUrl,
      id: '00000000-0000-0000-0000-000000000000',
    });
    const content = new BatchRequestContent(adapter, graphErrorMappings);
    content.addBatchRequest(list, 'list');
    content.addBatchRequest(create, 'create');
    content.addBatchRequest(missing, 'missing');
    const before = sentPaths.length;
    const response = await content.postAsync();
    expect(sentPaths.slice(before)).toEqual(['/vppd/beta/$batch']);
    expect(Object.fromEntries(await (response?.getResponsesStatusCodes() ?? new Map()))).toEqual({
      list: 200,
      create: 201,
      missing: 404,
    });
    const created = response?.getResponseById('create');
    const headers = created?.headers as unknown as { value: Record<string, { value: string }> };
    expect(
      headers.value.Location?.value.startsWith(`${proxy.base}/beta/deviceAppManagement/vppTokens/`),
    ).toBe(true);
  });

  it('raw replays of the batch shapes scripts and SDKs send', async () => {
    const auth = `Bearer ${bearer}`;
    const send = async (json: string, version = 'beta') => {
      const response = await rawHttps(
        certificate,
        proxy.host,
        rawPost(proxy.host, `/vppd/${version}/$batch`, auth, json),
      );
      expect(response.status, JSON.stringify(response)).toBe(200);
      return (
        JSON.parse(response.body) as {
          responses: {
            id: string;
            status: number;
            headers: Record<string, string>;
            body?: Record<string, unknown>;
          }[];
        }
      ).responses;
    };

    // Maester, powershell/public/Invoke-MtGraphRequest.ps1 (maester365/maester): numbered ids, URLs
    // relative without a leading '/', a ConsistencyLevel header, written by ConvertTo-Json (properties
    // in hashtable order, indented), posted with Invoke-MgGraphRequest.
    const maester = `{
    "requests":  [
                     {
                         "headers":  {
                                         "ConsistencyLevel":  "eventual"
                                     },
                         "url":  "deviceAppManagement/vppTokens?%24top=2",
                         "method":  "GET",
                         "id":  0
                     },
                     {
                         "headers":  {
                                         "ConsistencyLevel":  "eventual"
                                     },
                         "url":  "deviceAppManagement/mobileApps?%24filter=isof(%27microsoft.graph.iosVppApp%27)",
                         "method":  "GET",
                         "id":  1
                     }
                 ]
}`;
    const fromMaester = await send(maester, 'v1.0');
    expect(fromMaester.map((r) => [r.id, r.status])).toEqual([
      ['0', 200],
      ['1', 200],
    ]);
    expect(String(fromMaester[0]?.body?.['@odata.nextLink']).startsWith(`${proxy.base}/v1.0/`)).toBe(true);
    expect(String(fromMaester[1]?.body?.['@odata.context']).startsWith(`${proxy.base}/v1.0/$metadata#`)).toBe(
      true,
    );

    // Graph's documentation (JSON batching): string ids, leading '/', a POST with Content-Type and a
    // JSON body, dependsOn chaining the steps.
    const documented = JSON.stringify({
      requests: [
        {
          id: '1',
          method: 'POST',
          url: '/deviceAppManagement/vppTokens',
          headers: { 'Content-Type': 'application/json' },
          body: { token: buildSToken(), displayName: 'Documented batch' },
        },
        {
          id: '2',
          dependsOn: ['1'],
          method: 'GET',
          url: "/deviceAppManagement/vppTokens?$filter=displayName eq 'Documented batch'",
        },
        {
          id: '3',
          dependsOn: ['2'],
          method: 'GET',
          url: '/deviceAppManagement/vppTokens/00000000-0000-0000-0000-000000000000',
        },
        { id: '4', dependsOn: ['3'], method: 'GET', url: '/deviceAppManagement/vppTokens' },
      ],
    });
    const fromDocs = await send(documented);
    expect(fromDocs.map((r) => [r.id, r.status])).toEqual([
      ['1', 201],
      ['2', 200],
      ['3', 404],
      ['4', 424],
    ]);
    expect(
      fromDocs[0]?.headers.Location?.startsWith(`${proxy.base}/beta/deviceAppManagement/vppTokens/`),
    ).toBe(true);
    expect((fromDocs[1] as unknown as { body: { value: unknown[] } }).body.value.length).toBe(1);
    expect((fromDocs[3] as unknown as { body: { error: { code: string } } }).body.error.code).toBe(
      'FailedDependency',
    );

    // graph-js BatchRequestContent (microsoft-graph-client, src/content/BatchRequestContent.ts): an
    // absolute Request URL becomes '/' + everything after the host, so behind the proxy
    // '/vppd/beta/...'; header names as the Fetch Headers object lower-cases them.
    const graphJs = JSON.stringify({
      requests: [
        {
          url: '/vppd/beta/deviceAppManagement/vppTokens/$count',
          method: 'GET',
          headers: { accept: 'text/plain' },
          id: 'count',
        },
        {
          url: '/vppd/beta/deviceAppManagement/vppTokens',
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: { token: buildSToken(), displayName: 'graph-js batch' },
          id: 'post',
        },
      ],
    });
    const fromGraphJs = await send(graphJs);
    expect(fromGraphJs.map((r) => [r.id, r.status])).toEqual([
      ['count', 200],
      ['post', 201],
    ]);
    // A non-JSON body comes back base64-encoded, as on Graph.
    expect(Number(Buffer.from(String(fromGraphJs[0]?.body), 'base64').toString())).toBeGreaterThan(0);

    // Too many steps: Graph's message.
    const tooMany = JSON.stringify({
      requests: Array.from({ length: 21 }, (_, i) => ({
        id: `${i}`,
        method: 'GET',
        url: '/deviceAppManagement/vppTokens',
      })),
    });
    const refused = await rawHttps(
      certificate,
      proxy.host,
      rawPost(proxy.host, '/vppd/beta/$batch', auth, tooMany),
    );
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.body).error).toMatchObject({
      code: 'BadRequest',
      message: 'Number of requests inside batch exceeds the limit.',
    });
  });
});
