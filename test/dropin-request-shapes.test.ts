import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import { tenantA, testConfig } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { buildSToken } from './helpers/stoken-builder.js';

// vppd as a drop-in for graph.microsoft.com: the requests real Graph clients and Intune scripts send,
// replayed byte for byte over a TCP socket (no HTTP client in between to tidy headers or bodies), each
// with the client it comes from. Only the base URL differs from what those clients send to Graph.

interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  json(): Record<string, unknown> & { error?: { code: string; message: string } };
}

let server: RunningServer;
let host: string;
let port: number;
let bearer: string;
let expiredBearer: string;

/** Writes `request` (the exact bytes) on a fresh connection and reads one HTTP/1.1 response. */
function raw(request: string | Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response to:\n${String(request).slice(0, 300)}`));
    }, 10_000);
    const finish = (response: RawResponse) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(response);
    };
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffer.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(head[0]?.split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const rest = buffer.subarray(end + 4);
      let body: Buffer | undefined;
      if (status === 204 || status === 304) body = Buffer.alloc(0);
      else if (headers['content-length'] !== undefined) {
        const length = Number(headers['content-length']);
        if (rest.length >= length) body = rest.subarray(0, length);
      } else if (headers['transfer-encoding']?.includes('chunked')) {
        body = dechunk(rest);
      }
      if (body === undefined) return;
      const text = body.toString('utf8');
      finish({ status, headers, body: text, json: () => JSON.parse(text) });
    });
    socket.write(request);
  });
}

/** The body of a complete chunked stream, or undefined while it is incomplete. */
function dechunk(data: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) return undefined;
    const size = Number.parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (size === 0) return Buffer.concat(parts);
    if (data.length < lineEnd + 2 + size + 2) return undefined;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

/** An HTTP/1.1 request as bytes: request line, the headers in the client's order and spelling, body. */
function http(
  method: string,
  path: string,
  headers: ReadonlyArray<readonly [string, string]>,
  body = '',
): string {
  const lines = [`${method} ${path} HTTP/1.1`, ...headers.map(([name, value]) => `${name}: ${value}`)];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

const base = '/beta/deviceAppManagement/vppTokens';
/** What `ExpiresOn` holds in the Intune samples' auth header: the ADAL token's expiry, as .NET prints it. */
const expiresOn = '12/3/2026 3:14:15 PM +00:00';

// ---- the clients' header sets --------------------------------------------------------------------

/**
 * microsoftgraph/powershell-intune-samples, ApplicationSync/AppleVPP_Sync.ps1: Get-AuthToken builds one
 * hashtable (`Content-Type = application/json`, `Authorization = Bearer …`, `ExpiresOn = …`) passed as
 * `-Headers` to every Invoke-RestMethod, GET, POST and DELETE alike; Windows PowerShell 5.1 adds its
 * User-Agent, Host and Connection, and `Content-Length: 0` on a POST without `-Body`.
 */
const intuneSampleHeaders = (extra: ReadonlyArray<readonly [string, string]> = []) =>
  [
    ['Content-Type', 'application/json'],
    ['Authorization', bearer],
    ['ExpiresOn', expiresOn],
    ['User-Agent', 'Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.22621.2506'],
    ['Host', `${host}:${port}`],
    ...extra,
    ['Connection', 'Keep-Alive'],
  ] as const;

/**
 * Microsoft.Graph.Authentication's Invoke-MgGraphRequest (PowerShell 7): its own User-Agent and SDK
 * headers, a fresh client-request-id, and `Content-Type: application/json` forced on POST/PUT/PATCH,
 * body or not.
 */
const mgGraphRequestHeaders = (clientRequestId: string) =>
  [
    ['Host', `${host}:${port}`],
    [
      'User-Agent',
      'Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) PowerShell/7.4.1 Invoke-MgGraphRequest',
    ],
    ['SdkVersion', 'graph-powershell/2.15.0'],
    ['FeatureFlag', '00000003'],
    ['Cache-Control', 'no-store, no-cache'],
    ['client-request-id', clientRequestId],
    ['Authorization', bearer],
    ['Accept-Encoding', 'gzip'],
    ['Content-Type', 'application/json'],
    ['Content-Length', '0'],
  ] as const;

/** @microsoft/microsoft-graph-client 3.0.7 `client.api(…).post()` / `.delete()` over Node's fetch. */
const graphJsHeaders = (method: 'POST' | 'DELETE') =>
  [
    ['host', `${host}:${port}`],
    ['connection', 'keep-alive'],
    ['authorization', bearer],
    ['sdkversion', 'graph-js/3.0.7'],
    ['client-request-id', randomUUID()],
    ['content-type', 'application/json'],
    ['accept', '*/*'],
    ['accept-language', '*'],
    ['sec-fetch-mode', 'cors'],
    ['user-agent', 'node'],
    ['accept-encoding', 'gzip, deflate'],
    ...(method === 'POST' ? ([['content-length', '0']] as const) : []),
  ] as const;

/**
 * CIPP-API's New-GraphPOSTRequest: Invoke-RestMethod with the token headers from Get-GraphToken
 * (`Authorization`) and `-ContentType 'application/json; charset=utf-8'`; Invoke-ExecSyncVPP posts
 * syncLicenses with no body.
 */
const cippHeaders = () =>
  [
    ['Host', `${host}:${port}`],
    ['User-Agent', 'Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.20348; en-US) PowerShell/7.4.6'],
    ['Authorization', bearer],
    ['Content-Type', 'application/json; charset=utf-8'],
    ['Content-Length', '0'],
  ] as const;

/** PowerShell 7 `Invoke-RestMethod -Method Post -Headers @{Authorization=…}` without `-Body`/`-ContentType`. */
const invokeRestMethodPostHeaders = () =>
  [
    ['Host', `${host}:${port}`],
    ['User-Agent', 'Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.22631; en-US) PowerShell/7.4.1'],
    ['Authorization', bearer],
    ['Content-Type', 'application/x-www-form-urlencoded'],
    ['Content-Length', '0'],
  ] as const;

/** Windows PowerShell 5.1 `ConvertTo-Json` of a hashtable: 4-space indent, two spaces after the colon. */
function convertToJson51(value: Record<string, string | boolean>): string {
  const entries = Object.entries(value).map(([k, v]) => `    ${JSON.stringify(k)}:  ${JSON.stringify(v)}`);
  return `{\r\n${entries.join(',\r\n')}\r\n}`;
}

/** Creates a token the way the Intune create scripts do: the `.vpptoken` file bytes base64-encoded again. */
async function createToken(
  displayName: string,
  orgName = 'Contoso Schools',
): Promise<Record<string, unknown>> {
  const fileText = buildSToken({ orgName });
  const body = convertToJson51({
    displayName,
    token: Buffer.from(fileText, 'utf8').toString('base64'),
    automaticallyUpdateApps: true,
  });
  const response = await raw(
    http('POST', base, intuneSampleHeaders([['Content-Length', String(Buffer.byteLength(body))]]), body),
  );
  expect(response.status, response.body).toBe(201);
  return response.json();
}

beforeAll(async () => {
  server = await startServer(testConfig({ port: '0' }));
  const url = new URL(server.url);
  host = url.hostname;
  port = Number(url.port);
  bearer = `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite] })}`;
  expiredBearer = `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite], expiresIn: -3600 })}`;
});
afterAll(async () => {
  await server?.close();
});

describe('1. bodiless POST and DELETE carrying a content type', () => {
  it('AppleVPP_Sync.ps1: syncLicenses with its Content-Type: application/json header and no body', async () => {
    const token = await createToken('sample sync');
    const response = await raw(
      http('POST', `${base}/${token.id}/syncLicenses`, intuneSampleHeaders([['Content-Length', '0']])),
    );
    expect(response.status, response.body).toBe(200);
    expect(response.json()).toMatchObject({ id: token.id, lastSyncStatus: 'inProgress' });
  });

  it('Invoke-MgGraphRequest -Method POST: JSON content type forced, Content-Length: 0', async () => {
    const token = await createToken('mg sync');
    const clientRequestId = randomUUID();
    const response = await raw(
      http('POST', `${base}/${token.id}/syncLicenses`, mgGraphRequestHeaders(clientRequestId)),
    );
    expect(response.status, response.body).toBe(200);
    expect(response.headers['client-request-id']).toBe(clientRequestId);
  });

  it('graph-js client.api(...).post() with no content; .delete() with the JSON content type', async () => {
    const counts = await raw(http('POST', `${base}/syncLicenseCounts`, graphJsHeaders('POST')));
    expect(counts.status, counts.body).toBe(204);
    const token = await createToken('graph-js delete');
    const deleted = await raw(http('DELETE', `${base}/${token.id}`, graphJsHeaders('DELETE')));
    expect(deleted.status, deleted.body).toBe(204);
    const gone = await raw(http('GET', `${base}/${token.id}`, intuneSampleHeaders()));
    expect(gone.status).toBe(404);
  });

  it("CIPP's New-GraphPOSTRequest: syncLicenses with application/json; charset=utf-8 and no body", async () => {
    const token = await createToken('cipp sync');
    const response = await raw(http('POST', `${base}/${token.id}/syncLicenses`, cippHeaders()));
    expect(response.status, response.body).toBe(200);
  });

  it('Invoke-RestMethod -Method Post without a body: application/x-www-form-urlencoded, Content-Length: 0', async () => {
    const token = await createToken('irm sync');
    const response = await raw(
      http('POST', `${base}/${token.id}/syncLicenses`, invokeRestMethodPostHeaders()),
    );
    expect(response.status, response.body).toBe(200);
  });

  it('AppleVPP_Sync.ps1-style DELETE (Content-Type: application/json, no body) and a zero-byte chunked POST', async () => {
    const token = await createToken('sample delete');
    const deleted = await raw(http('DELETE', `${base}/${token.id}`, intuneSampleHeaders()));
    expect(deleted.status, deleted.body).toBe(204);
    const other = await createToken('chunked sync');
    const chunked = await raw(
      http(
        'POST',
        `${base}/${other.id}/syncLicenses`,
        intuneSampleHeaders([['Transfer-Encoding', 'chunked']]),
        '0\r\n\r\n',
      ),
    );
    expect(chunked.status, chunked.body).toBe(200);
  });

  it('a body that is present keeps the strict rules: non-JSON 415, malformed JSON 400', async () => {
    const token = await createToken('strict');
    const form = 'notifyManagedDevices=true';
    const formResponse = await raw(
      http(
        'POST',
        `${base}/${token.id}/syncLicenses`,
        [
          ...invokeRestMethodPostHeaders().filter(([name]) => name !== 'Content-Length'),
          ['Content-Length', String(form.length)],
        ],
        form,
      ),
    );
    expect(formResponse.status).toBe(415);
    expect(formResponse.json().error?.code).toBe('UnsupportedMediaType');
    const malformed = '{"displayName": ';
    const malformedResponse = await raw(
      http(
        'PATCH',
        `${base}/${token.id}`,
        intuneSampleHeaders([['Content-Length', String(malformed.length)]]),
        malformed,
      ),
    );
    expect(malformedResponse.status).toBe(400);
    expect(malformedResponse.json().error?.code).toBe('BadRequest');
  });
});

describe('2. dates as Graph writes them', () => {
  // Checkmk's VPP plugin: datetime.strptime(value, '%Y-%m-%dT%H:%M:%SZ'); jq: fromdateiso8601. Both need
  // whole seconds without a fraction, which is what Graph writes for them.
  const strptimeShape = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
  const graphShape = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{0,6}[1-9])?Z$/;

  it('expiry and the never-synced lastSyncDateTime parse with %Y-%m-%dT%H:%M:%SZ; no trailing zeros anywhere', async () => {
    const token = await createToken('dates');
    const response = await raw(http('GET', `${base}/${token.id}`, intuneSampleHeaders()));
    const body = response.json();
    expect(body.expirationDateTime).toBe('2030-11-08T22:33:22Z');
    expect(body.lastSyncDateTime).toBe('0001-01-01T00:00:00Z');
    expect(body.expirationDateTime).toMatch(strptimeShape);
    expect(body.lastSyncDateTime).toMatch(strptimeShape);
    expect(body.lastModifiedDateTime).toMatch(graphShape);
    const synced = await raw(
      http('POST', `${base}/${token.id}/syncLicenses`, intuneSampleHeaders([['Content-Length', '0']])),
    );
    const results = synced.json().tokenActionResults as Array<Record<string, string>>;
    for (const result of results) {
      expect(result.startDateTime).toMatch(graphShape);
      expect(result.lastUpdatedDateTime).toMatch(graphShape);
    }
    // jq's fromdateiso8601 and strptime read the same instant JavaScript does.
    expect(Date.parse(body.expirationDateTime as string)).toBe(Date.UTC(2030, 10, 8, 22, 33, 22));
  });
});

describe('3. namespace-qualified actions and functions', () => {
  it('microsoft.graph.syncLicenses, revokeLicenses, syncLicenseCounts and both functions reach their handlers', async () => {
    const token = await createToken('qualified');
    const sync = await raw(
      http('POST', `${base}/${token.id}/microsoft.graph.syncLicenses`, mgGraphRequestHeaders(randomUUID())),
    );
    expect(sync.status, sync.body).toBe(200);
    const v1 = await raw(
      http(
        'POST',
        `/v1.0/deviceAppManagement/vppTokens/${token.id}/microsoft.graph.syncLicenses`,
        mgGraphRequestHeaders(randomUUID()),
      ),
    );
    expect(v1.status, v1.body).toBe(200);
    const revokeBody = '{"notifyManagedDevices":false}';
    const revoke = await raw(
      http(
        'POST',
        `${base}/${token.id}/microsoft.graph.revokeLicenses`,
        intuneSampleHeaders([['Content-Length', String(revokeBody.length)]]),
        revokeBody,
      ),
    );
    // The token has not been validated by Apple yet: the action itself answers, with Graph's 409.
    expect(revoke.status, revoke.body).toBe(409);
    const counts = await raw(
      http('POST', `${base}/microsoft.graph.syncLicenseCounts`, graphJsHeaders('POST')),
    );
    expect(counts.status, counts.body).toBe(204);
    for (const version of ['beta', 'v1.0']) {
      const licenses = await raw(
        http(
          'GET',
          `/${version}/deviceAppManagement/vppTokens/microsoft.graph.getLicensesForApp(bundleId='com.example.app')`,
          intuneSampleHeaders(),
        ),
      );
      expect(licenses.status, licenses.body).toBe(200);
      expect(licenses.json().value).toEqual([]);
    }
    const expiring = await raw(
      http(
        'GET',
        "/beta/deviceManagement/depOnboardingSettings/microsoft.graph.getExpiringVppTokenCount(expiringBeforeDateTime='2031-01-01T00:00:00Z')",
        intuneSampleHeaders(),
      ),
    );
    expect(expiring.status, expiring.body).toBe(200);
    expect(expiring.json().value).toBeGreaterThan(0);
  });
});

describe('4. 401 with the code scripts refresh on', () => {
  it('no token and an expired token: InvalidAuthenticationToken, Graph messages, WWW-Authenticate', async () => {
    const missing = await raw(
      http('GET', base, [
        ['Host', `${host}:${port}`],
        ['Content-Type', 'application/json'],
      ]),
    );
    expect(missing.status).toBe(401);
    expect(missing.json().error).toMatchObject({
      code: 'InvalidAuthenticationToken',
      message: 'Access token is empty.',
    });
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer/);
    const expired = await raw(
      http(
        'GET',
        base,
        intuneSampleHeaders().map(([name, value]) =>
          name === 'Authorization' ? ([name, expiredBearer] as const) : ([name, value] as const),
        ),
      ),
    );
    expect(expired.status).toBe(401);
    expect(expired.json().error).toMatchObject({
      code: 'InvalidAuthenticationToken',
      message: 'Lifetime validation failed, the token is expired.',
    });
  });
});

describe('8. query and path leniency', () => {
  it('cache busters, $format=json, $count=TRUE, any case, key form, upper-case GUIDs', async () => {
    const token = await createToken('lenient');
    const id = String(token.id);
    const list = await raw(
      http(
        'GET',
        '/beta/deviceappmanagement/vpptokens?_=1700000000&$format=json&$count=TRUE',
        intuneSampleHeaders(),
      ),
    );
    expect(list.status, list.body).toBe(200);
    expect(list.json()['@odata.count']).toBeGreaterThan(0);
    const keyed = await raw(http('GET', `${base}('${id.toUpperCase()}')`, intuneSampleHeaders()));
    expect(keyed.status, keyed.body).toBe(200);
    expect(keyed.json().id).toBe(id);
    const upper = await raw(
      http('POST', `${base}/${id.toUpperCase()}/SyncLicenses`, mgGraphRequestHeaders(randomUUID())),
    );
    expect(upper.status, upper.body).toBe(200);
    const paged = await raw(
      http(
        'GET',
        `${base}/getLicensesForApp(bundleId='com.example.app')?$top=5&$skip=0&$count=true`,
        intuneSampleHeaders(),
      ),
    );
    expect(paged.status, paged.body).toBe(200);
    expect(paged.json()['@odata.count']).toBe(0);
    // The key form reaches mobileApps' item route too (no app synced here: the item's own 404).
    const app = await raw(http('GET', "/beta/deviceAppManagement/mobileApps('abc')", intuneSampleHeaders()));
    expect(app.status).toBe(404);
    expect(app.json().error?.message).toBe("The mobileApp with id 'abc' was not found.");
    const xml = await raw(http('GET', `${base}?$format=xml`, intuneSampleHeaders()));
    expect(xml.status).toBe(400);
    expect(xml.json().error?.message).toContain("'xml'");
    const unknown = await raw(http('GET', '/beta/deviceappmanagement/vppTokenz', intuneSampleHeaders()));
    expect(unknown.status).toBe(404);
    expect(unknown.json().error?.message).toBe("Resource not found for the segment 'vppTokenz'.");
  });
});

describe('9. bodies copied from a GET', () => {
  it('PATCH with the GET response, one field changed (PowerShell: GET, change, ConvertTo-Json, PATCH)', async () => {
    const token = await createToken('before');
    const got = (await raw(http('GET', `${base}/${token.id}`, intuneSampleHeaders()))).json();
    const body = JSON.stringify({ ...got, displayName: 'after' }, null, 4);
    const patched = await raw(
      http(
        'PATCH',
        `${base}/${token.id}`,
        intuneSampleHeaders([['Content-Length', String(Buffer.byteLength(body))]]),
        body,
      ),
    );
    expect(patched.status, patched.body).toBe(204);
    const after = (await raw(http('GET', `${base}/${token.id}`, intuneSampleHeaders()))).json();
    expect(after).toMatchObject({
      displayName: 'after',
      lastSyncStatus: got.lastSyncStatus,
      state: got.state,
    });
    const typo = JSON.stringify({ ...got, dispalyName: 'x' });
    const rejected = await raw(
      http(
        'PATCH',
        `${base}/${token.id}`,
        intuneSampleHeaders([['Content-Length', String(Buffer.byteLength(typo))]]),
        typo,
      ),
    );
    expect(rejected.status).toBe(400);
    expect(rejected.json().error?.message).toContain("'dispalyName'");
  });
});

describe('10. token as base64 of the .vpptoken file text', () => {
  it('the create scripts encode the file once more; both forms are accepted, garbage is not', async () => {
    const created = await createToken('twice encoded', 'Fabrikam Academy');
    expect(created.organizationName).toBe('Fabrikam Academy');
    const plain = convertToJson51({ token: buildSToken({ orgName: 'Plain Org' }) });
    const once = await raw(
      http('POST', base, intuneSampleHeaders([['Content-Length', String(plain.length)]]), plain),
    );
    expect(once.status, once.body).toBe(201);
    const garbage = convertToJson51({ token: Buffer.from('not a vpp token').toString('base64') });
    const bad = await raw(
      http('POST', base, intuneSampleHeaders([['Content-Length', String(garbage.length)]]), garbage),
    );
    expect(bad.status).toBe(400);
    expect(bad.json().error?.message).toMatch(/VPP token is not valid/);
  });
});
