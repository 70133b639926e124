import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatGraphDateTime } from '../src/domain/graph-date-time.js';
import { decodeSToken } from '../src/domain/stoken.js';
import { createTestApp, type TestApp, tenantA } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { buildSToken } from './helpers/stoken-builder.js';
import { storageEngines } from './helpers/storage-engines.js';

const base = '/beta/deviceAppManagement/vppTokens';
const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// Every suite runs on each storage engine (a new PostgreSQL database per app).
describe.each(storageEngines)('Graph vppTokens on %s', (engine) => {
  let t: TestApp;
  const logLines: string[] = [];

  beforeAll(async () => {
    t = await createTestApp({ logLines, engine });
  });
  afterAll(async () => {
    await t.close();
  });

  async function call(options: InjectOptions & { as?: string | null }): Promise<LightMyRequestResponse> {
    const { as, headers, ...rest } = options;
    const authorization = as === undefined ? t.auth.a : as;
    return t.app.inject({
      ...rest,
      headers: { ...(authorization === null ? {} : { authorization }), ...(headers ?? {}) },
    });
  }

  async function createToken(
    body: Record<string, unknown> = {},
    as?: string,
  ): Promise<Record<string, unknown>> {
    const response = await call({
      method: 'POST',
      url: base,
      payload: { token: buildSToken(), ...body },
      ...(as ? { as } : {}),
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json();
  }

  /** Asserts Graph's error shape and returns the error object. */
  function expectGraphError(response: LightMyRequestResponse, status: number, code: string) {
    expect(response.statusCode, response.body).toBe(status);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const body = response.json() as {
      error: { code: string; message: string; innerError: Record<string, string> };
    };
    expect(body.error.code).toBe(code);
    expect(body.error.message.length).toBeGreaterThan(0);
    expect(body.error.innerError['request-id']).toBe(response.headers['request-id']);
    expect(body.error.innerError.date).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(Object.keys(body.error)).toEqual(['code', 'message', 'innerError']);
    return body.error;
  }

  describe('POST /vppTokens (create)', () => {
    it('decodes the sToken and answers 201 with the bare entity, token null, Graph annotations', async () => {
      const content = buildSToken({ orgName: 'Contoso Schools', expDate: new Date('2027-05-01T10:00:00Z') });
      const response = await call({
        method: 'POST',
        url: base,
        headers: { 'client-request-id': 'my-client-id-1' },
        payload: { token: `\n${content}\n`, displayName: 'Main campus', vppTokenAccountType: 'education' },
      });
      expect(response.statusCode).toBe(201);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(response.headers['request-id']).toMatch(guidPattern);
      expect(response.headers['client-request-id']).toBe('my-client-id-1');
      const body = response.json();
      expect(response.headers.location).toBe(`http://localhost${base}/${body.id}`);
      expect(body).toEqual({
        '@odata.context': 'http://localhost/beta/$metadata#deviceAppManagement/vppTokens/$entity',
        '@odata.type': '#microsoft.graph.vppToken',
        id: expect.stringMatching(guidPattern),
        organizationName: 'Contoso Schools',
        vppTokenAccountType: 'education',
        appleId: null,
        expirationDateTime: '2027-05-01T10:00:00Z',
        lastSyncDateTime: '0001-01-01T00:00:00Z',
        token: null,
        lastModifiedDateTime: formatGraphDateTime(t.clock.now()),
        state: 'unknown',
        tokenActionResults: [],
        lastSyncStatus: 'none',
        automaticallyUpdateApps: false,
        countryOrRegion: null,
        dataSharingConsentGranted: false,
        displayName: 'Main campus',
        locationName: null,
        claimTokenManagementFromExternalMdm: false,
        roleScopeTagIds: [],
        appleDeviceAppDeliveryProtocolType: 'default',
      });
      expect(await t.context.tokens.readSToken(tenantA, body.id)).toBe(content);
    });

    it('accepts every writable property', async () => {
      const body = await createToken({
        appleId: 'vpp@contoso.example',
        automaticallyUpdateApps: true,
        countryOrRegion: 'us',
        dataSharingConsentGranted: true,
        claimTokenManagementFromExternalMdm: true,
        roleScopeTagIds: ['0', '5'],
        appleDeviceAppDeliveryProtocolType: 'declarativeDeviceManagement',
        '@odata.type': '#microsoft.graph.vppToken',
      });
      expect(body).toMatchObject({
        appleId: 'vpp@contoso.example',
        automaticallyUpdateApps: true,
        countryOrRegion: 'us',
        dataSharingConsentGranted: true,
        claimTokenManagementFromExternalMdm: true,
        roleScopeTagIds: ['0', '5'],
        appleDeviceAppDeliveryProtocolType: 'declarativeDeviceManagement',
      });
    });

    it('stores an already expired sToken as expired', async () => {
      const body = await createToken({ token: buildSToken({ expDate: new Date('2020-01-01T00:00:00Z') }) });
      expect(body.state).toBe('expired');
      expect(body.lastSyncStatus).toBe('none');
    });

    it('answers 409 for the same sToken twice in a tenant', async () => {
      const content = buildSToken();
      await createToken({ token: content });
      const response = await call({ method: 'POST', url: base, payload: { token: content } });
      const error = expectGraphError(response, 409, 'Conflict');
      expect(error.message).not.toContain(content);
    });

    it.each([
      ['no token', {}, 400, /'token' is required/],
      ['token not a string', { token: 42 }, 400, /'token' must be a string/],
      ['token not base64', { token: 'not a token!' }, 400, /VPP token is not valid/],
      ['token without fields', { token: Buffer.from('{"a":1}').toString('base64') }, 400, /token missing/],
      ['unknown property', { colour: 'blue' }, 400, /'colour' does not exist/],
      ['misspelled enum member', { vppTokenAccountType: 'Business' }, 400, /not a valid member/],
      ['enum as a number', { vppTokenAccountType: 0 }, 400, /not a valid member/],
      ['wrong boolean type', { automaticallyUpdateApps: 'yes' }, 400, /must be a boolean/],
      ['wrong @odata.type', { '@odata.type': '#microsoft.graph.user' }, 400, /@odata.type/],
    ])('answers 400 for %s', async (_name, extra, status, message) => {
      const content = buildSToken();
      const payload = 'token' in extra || _name === 'no token' ? extra : { token: content, ...extra };
      const response = await call({ method: 'POST', url: base, payload });
      const error = expectGraphError(response, status, 'BadRequest');
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain(content);
    });

    it('ignores annotations and server-owned properties in a create body copied from a GET', async () => {
      // A body built from a GET response (or Graph's docs): annotations, server-owned properties and the
      // write-only token shown as null are ignored, as on Graph; the writable ones are applied.
      const template = await createToken({ displayName: 'template' });
      const response = await call({
        method: 'POST',
        url: base,
        payload: {
          ...template,
          '@odata.context':
            'https://graph.microsoft.com/beta/$metadata#deviceAppManagement/vppTokens/$entity',
          'displayName@odata.type': '#String',
          state: 'valid',
          lastSyncStatus: 'completed',
          organizationName: 'Someone else',
          token: buildSToken({ orgName: 'Copied Org' }),
          displayName: 'copy',
        },
      });
      expect(response.statusCode).toBe(201);
      const created = response.json();
      expect(created.id).not.toBe(template.id);
      expect(created).toMatchObject({
        displayName: 'copy',
        organizationName: 'Copied Org',
        state: 'unknown',
      });
      const unknown = await call({
        method: 'POST',
        url: base,
        payload: { ...template, token: buildSToken(), colour: 1 },
      });
      expect(expectGraphError(unknown, 400, 'BadRequest').message).toMatch(/'colour' does not exist/);
      const noToken = await call({ method: 'POST', url: base, payload: { ...template } });
      expect(expectGraphError(noToken, 400, 'BadRequest').message).toMatch(/'token' is required/);
    });

    it('rejects beta-only properties on v1.0', async () => {
      const response = await call({
        method: 'POST',
        url: '/v1.0/deviceAppManagement/vppTokens',
        payload: { token: buildSToken(), appleDeviceAppDeliveryProtocolType: 'default' },
      });
      expect(expectGraphError(response, 400, 'BadRequest').message).toMatch(/does not exist/);
    });

    it('answers 415 for a non-JSON body, 400 for malformed or empty JSON, 413 for a huge body', async () => {
      const text = await call({
        method: 'POST',
        url: base,
        headers: { 'content-type': 'text/plain' },
        payload: buildSToken(),
      });
      expectGraphError(text, 415, 'UnsupportedMediaType');
      const form = await call({
        method: 'POST',
        url: base,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'token=x',
      });
      expectGraphError(form, 415, 'UnsupportedMediaType');
      const malformed = await call({
        method: 'POST',
        url: base,
        headers: { 'content-type': 'application/json' },
        payload: '{"token": ',
      });
      expectGraphError(malformed, 400, 'BadRequest');
      const empty = await call({
        method: 'POST',
        url: base,
        headers: { 'content-type': 'application/json' },
        payload: '',
      });
      expectGraphError(empty, 400, 'BadRequest');
      const array = await call({ method: 'POST', url: base, payload: [1, 2] });
      expectGraphError(array, 400, 'BadRequest');
      const huge = await call({
        method: 'POST',
        url: base,
        payload: { token: buildSToken(), displayName: 'x'.repeat(300 * 1024) },
      });
      expectGraphError(huge, 413, 'RequestEntityTooLarge');
    });

    it('rejects query options on a create', async () => {
      const response = await call({
        method: 'POST',
        url: `${base}?$select=id`,
        payload: { token: buildSToken() },
      });
      expectGraphError(response, 400, 'BadRequest');
    });
  });

  describe('GET /vppTokens/{id}', () => {
    it('returns the bare entity with its @odata.context', async () => {
      const created = await createToken({ displayName: 'Get me' });
      const response = await call({ method: 'GET', url: `${base}/${created.id}` });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual(created);
    });

    it('honours $select (id kept) and rejects $expand', async () => {
      const created = await createToken({ displayName: 'Selective' });
      const response = await call({
        method: 'GET',
        url: `${base}/${created.id}?$select=displayName,lastSyncStatus`,
      });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({
        '@odata.context':
          'http://localhost/beta/$metadata#deviceAppManagement/vppTokens(displayName,lastSyncStatus)/$entity',
        '@odata.type': '#microsoft.graph.vppToken',
        id: created.id,
        lastSyncStatus: 'none',
        displayName: 'Selective',
      });
      expectGraphError(
        await call({ method: 'GET', url: `${base}/${created.id}?$expand=x` }),
        400,
        'BadRequest',
      );
      expectGraphError(await call({ method: 'GET', url: `${base}/${created.id}?$top=1` }), 400, 'BadRequest');
    });

    it('answers 404 for an unknown id', async () => {
      const response = await call({ method: 'GET', url: `${base}/00000000-0000-4000-8000-00000000dead` });
      expect(expectGraphError(response, 404, 'ResourceNotFound').message).toContain(
        '00000000-0000-4000-8000-00000000dead',
      );
    });

    it('serves v1.0 without beta-only properties and with v1.0 enum members', async () => {
      const created = await createToken();
      await t.context.tokens.update(tenantA, created.id as string, { state: 'duplicateLocationId' });
      const beta = (await call({ method: 'GET', url: `${base}/${created.id}` })).json();
      expect(beta.state).toBe('duplicateLocationId');
      const v1 = await call({ method: 'GET', url: `/v1.0/deviceAppManagement/vppTokens/${created.id}` });
      expect(v1.statusCode).toBe(200);
      const body = v1.json();
      expect(body['@odata.context']).toBe(
        'http://localhost/v1.0/$metadata#deviceAppManagement/vppTokens/$entity',
      );
      expect(body).not.toHaveProperty('appleDeviceAppDeliveryProtocolType');
      expect(body.state).toBe('invalid');
    });

    it('presents tokenActionResults, the derived revoke type with a #-prefixed @odata.type', async () => {
      const created = await createToken();
      const at = new Date('2026-03-01T12:30:00.000Z');
      await t.context.tokens.replaceActionResults(tenantA, created.id as string, [
        { actionName: 'syncLicenses', actionState: 'active', startDateTime: at, lastUpdatedDateTime: at },
        {
          actionName: 'revokeLicenses',
          actionState: 'done',
          startDateTime: at,
          lastUpdatedDateTime: at,
          revoke: { actionFailureReason: 'none', totalLicensesCount: 4, failedLicensesCount: 0 },
        },
      ]);
      const body = (await call({ method: 'GET', url: `${base}/${created.id}` })).json();
      expect(body.tokenActionResults).toEqual([
        {
          actionName: 'syncLicenses',
          actionState: 'active',
          startDateTime: '2026-03-01T12:30:00Z',
          lastUpdatedDateTime: '2026-03-01T12:30:00Z',
        },
        {
          '@odata.type': '#microsoft.graph.vppTokenRevokeLicensesActionResult',
          actionName: 'revokeLicenses',
          actionState: 'done',
          startDateTime: '2026-03-01T12:30:00Z',
          lastUpdatedDateTime: '2026-03-01T12:30:00Z',
          actionFailureReason: 'none',
          totalLicensesCount: 4,
          failedLicensesCount: 0,
        },
      ]);
    });
  });

  describe('PATCH /vppTokens/{id}', () => {
    it('answers 204 and changes only the sent properties', async () => {
      const created = await createToken({ displayName: 'Before', countryOrRegion: 'us' });
      t.clock.advance(60_000);
      const response = await call({
        method: 'PATCH',
        url: `${base}/${created.id}`,
        payload: { displayName: 'After', automaticallyUpdateApps: true },
      });
      expect(response.statusCode).toBe(204);
      expect(response.body).toBe('');
      const after = (await call({ method: 'GET', url: `${base}/${created.id}` })).json();
      expect(after).toMatchObject({
        displayName: 'After',
        automaticallyUpdateApps: true,
        countryOrRegion: 'us',
        organizationName: created.organizationName,
        lastModifiedDateTime: formatGraphDateTime(t.clock.now()),
      });
    });

    it('returns the entity with Prefer: return=representation', async () => {
      const created = await createToken();
      const response = await call({
        method: 'PATCH',
        url: `${base}/${created.id}`,
        headers: { prefer: 'return=representation' },
        payload: { displayName: null },
      });
      expect(response.statusCode).toBe(200);
      expect(response.headers['preference-applied']).toBe('return=representation');
      const body = response.json();
      expect(body['@odata.context']).toMatch(/vppTokens\/\$entity$/);
      expect(body.displayName).toBeNull();
      expect(body.token).toBeNull();
    });

    it('re-decodes a renewed token: organization and expiry change, state back to unknown', async () => {
      const created = await createToken();
      await t.context.tokens.update(tenantA, created.id as string, {
        state: 'valid',
        lastSyncStatus: 'completed',
      });
      const renewed = buildSToken({ orgName: 'Renewed Org', expDate: new Date('2028-02-02T02:02:02Z') });
      const response = await call({
        method: 'PATCH',
        url: `${base}/${created.id}`,
        headers: { prefer: 'return=representation' },
        payload: { token: renewed },
      });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({
        organizationName: 'Renewed Org',
        expirationDateTime: '2028-02-02T02:02:02Z',
        state: 'unknown',
        lastSyncStatus: 'completed',
        token: null,
      });
      expect(await t.context.tokens.readSToken(tenantA, created.id as string)).toBe(renewed);
    });

    it('applies a PATCH whose body is the GET response with one field changed', async () => {
      const created = await createToken({ displayName: 'before' });
      const got = (await call({ method: 'GET', url: `${base}/${created.id}` })).json();
      const response = await call({
        method: 'PATCH',
        url: `${base}/${created.id}`,
        payload: { ...got, id: 'another-id', lastSyncStatus: 'completed', displayName: 'after' },
      });
      expect(response.statusCode).toBe(204);
      const after = (await call({ method: 'GET', url: `${base}/${created.id}` })).json();
      expect(after).toMatchObject({
        displayName: 'after',
        lastSyncStatus: created.lastSyncStatus,
        state: created.state,
      });
      const unknown = await call({
        method: 'PATCH',
        url: `${base}/${created.id}`,
        payload: { ...got, nmae: 'x' },
      });
      expect(expectGraphError(unknown, 400, 'BadRequest').message).toMatch(/'nmae' does not exist/);
    });

    it('answers 409 when the renewed sToken belongs to another token of the tenant', async () => {
      const content = buildSToken();
      await createToken({ token: content });
      const other = await createToken();
      const response = await call({
        method: 'PATCH',
        url: `${base}/${other.id}`,
        payload: { token: content },
      });
      expectGraphError(response, 409, 'Conflict');
    });

    it.each([
      ['an unknown property', { nmae: 'x' }, /does not exist/],
      ['a misspelled enum member', { vppTokenAccountType: 'EDUCATION' }, /not a valid member/],
      ['an invalid sToken', { token: 'bm90IGEgdG9rZW4=' }, /VPP token is not valid/],
    ])('answers 400 for %s and changes nothing', async (_name, payload, message) => {
      const created = await createToken({ displayName: 'Unchanged' });
      const response = await call({ method: 'PATCH', url: `${base}/${created.id}`, payload });
      expect(expectGraphError(response, 400, 'BadRequest').message).toMatch(message);
      const after = (await call({ method: 'GET', url: `${base}/${created.id}` })).json();
      expect(after).toEqual(created);
    });

    it('answers 404 for an unknown id', async () => {
      const response = await call({
        method: 'PATCH',
        url: `${base}/00000000-0000-4000-8000-00000000beef`,
        payload: { displayName: 'x' },
      });
      expectGraphError(response, 404, 'ResourceNotFound');
    });
  });

  describe('DELETE /vppTokens/{id}', () => {
    it('answers 204, then 404', async () => {
      const created = await createToken();
      const first = await call({ method: 'DELETE', url: `${base}/${created.id}` });
      expect(first.statusCode).toBe(204);
      expect(first.body).toBe('');
      expectGraphError(
        await call({ method: 'DELETE', url: `${base}/${created.id}` }),
        404,
        'ResourceNotFound',
      );
      expectGraphError(await call({ method: 'GET', url: `${base}/${created.id}` }), 404, 'ResourceNotFound');
      expect(await t.context.tokens.readSToken(tenantA, created.id as string)).toBeUndefined();
    });
  });

  describe('GET /vppTokens (list) and /$count', () => {
    let fresh: TestApp;
    let bearer: string;
    beforeAll(async () => {
      fresh = await createTestApp({ engine });
      bearer = fresh.auth.a;
      for (const [i, name] of ['delta', 'alpha', 'charlie', 'bravo', 'echo'].entries()) {
        const response = await fresh.app.inject({
          method: 'POST',
          url: base,
          headers: { authorization: bearer },
          payload: { token: buildSToken(), displayName: name, automaticallyUpdateApps: i % 2 === 0 },
        });
        expect(response.statusCode).toBe(201);
        fresh.clock.advance(1000);
      }
    });
    afterAll(async () => {
      await fresh.close();
    });
    const list = (url: string) =>
      fresh.app.inject({ method: 'GET', url, headers: { authorization: bearer } });

    it('ignores a trailing slash, as Graph does', async () => {
      const response = await list(`${base}/`);
      expect(response.statusCode).toBe(200);
      expect(response.json().value).toHaveLength(5);
    });

    it('lists in creation order with @odata.context and no nextLink when all fit', async () => {
      const response = await list(base);
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(Object.keys(body)).toEqual(['@odata.context', 'value']);
      expect(body['@odata.context']).toBe('http://localhost/beta/$metadata#deviceAppManagement/vppTokens');
      expect(body.value.map((v: { displayName: string }) => v.displayName)).toEqual([
        'delta',
        'alpha',
        'charlie',
        'bravo',
        'echo',
      ]);
      for (const item of body.value) expect(item.token).toBeNull();
    });

    it('pages with $top and absolute @odata.nextLink until done, with $count', async () => {
      const seen: string[] = [];
      let url: string | undefined = `${base}?$top=2&$count=true&$orderby=displayName`;
      let pages = 0;
      while (url) {
        const response = await list(url);
        expect(response.statusCode, response.body).toBe(200);
        const body = response.json();
        expect(body['@odata.count']).toBe(5);
        seen.push(...body.value.map((v: { displayName: string }) => v.displayName));
        const next = body['@odata.nextLink'] as string | undefined;
        if (next) expect(next).toMatch(/^http:\/\/localhost\/beta\/deviceAppManagement\/vppTokens\?/);
        url = next ? next.replace('http://localhost', '') : undefined;
        pages += 1;
      }
      expect(pages).toBe(3);
      expect(seen).toEqual(['alpha', 'bravo', 'charlie', 'delta', 'echo']);
    });

    it('filters, orders and selects; the $ is optional on beta', async () => {
      const response = await list(
        `${base}?filter=automaticallyUpdateApps eq true and lastSyncStatus eq 'none'&$orderby=displayName desc&$select=displayName`,
      );
      expect(response.statusCode, response.body).toBe(200);
      const body = response.json();
      expect(body['@odata.context']).toBe(
        'http://localhost/beta/$metadata#deviceAppManagement/vppTokens(displayName)',
      );
      expect(body.value).toEqual([
        { '@odata.type': '#microsoft.graph.vppToken', id: expect.any(String), displayName: 'echo' },
        { '@odata.type': '#microsoft.graph.vppToken', id: expect.any(String), displayName: 'delta' },
        { '@odata.type': '#microsoft.graph.vppToken', id: expect.any(String), displayName: 'charlie' },
      ]);
    });

    it('rejects what it cannot honour with 400: bad syntax, unknown properties, misspelled enum members, $-less options on v1.0', async () => {
      for (const url of [
        `${base}?$filter=displayName eq`,
        `${base}?$filter=colour eq 'x'`,
        `${base}?$filter=lastSyncStatus eq 'Completed'`,
        `${base}?$orderby=token`,
        `${base}?$expand=apps`,
        `${base}?$search=x`,
        `${base}?$top=-1`,
        `${base}?$top=1&$top=2`,
        `${base}?$skiptoken=garbage`,
        "/v1.0/deviceAppManagement/vppTokens?filter=displayName eq 'x'",
        `/v1.0/deviceAppManagement/vppTokens?$filter=state eq 'duplicateLocationId'`,
        `/v1.0/deviceAppManagement/vppTokens?$select=appleDeviceAppDeliveryProtocolType`,
      ]) {
        const response = await list(url);
        expect(response.statusCode, `${url} → ${response.body}`).toBe(400);
        expect(response.json().error.code).toBe('BadRequest');
      }
    });

    it('$count answers text/plain, honouring $filter', async () => {
      const all = await list(`${base}/$count`);
      expect(all.statusCode).toBe(200);
      expect(all.headers['content-type']).toMatch(/^text\/plain/);
      expect(all.body).toBe('5');
      const some = await list(`${base}/$count?$filter=startswith(displayName,'A')`);
      expect(some.body).toBe('1');
      expect((await list(`${base}/$count?$top=1`)).statusCode).toBe(400);
    });

    it('v1.0 lists without beta-only properties', async () => {
      const body = (await list('/v1.0/deviceAppManagement/vppTokens?$top=1')).json();
      expect(body['@odata.context']).toBe('http://localhost/v1.0/$metadata#deviceAppManagement/vppTokens');
      expect(body.value[0]).not.toHaveProperty('appleDeviceAppDeliveryProtocolType');
      expect(body['@odata.nextLink']).toMatch(
        /^http:\/\/localhost\/v1\.0\/deviceAppManagement\/vppTokens\?\$top=1&\$skiptoken=/,
      );
    });
  });

  describe('authentication and permissions', () => {
    it('answers 401 without, or with a bad, bearer token', async () => {
      const now = t.clock.now();
      const cases: (string | null)[] = [
        null,
        'Basic dXNlcjpwYXNz',
        'Bearer',
        'Bearer not.a.jwt',
        `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite], secret: 'another-secret-of-at-least-32-bytes!!', now })}`,
        `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite], expiresIn: -3600, now })}`,
        `Bearer ${await mintToken({ roles: [roles.readWrite], now })}`,
        `Bearer ${await mintToken({ tenantId: '', roles: [roles.readWrite], now })}`,
      ];
      for (const as of cases) {
        const response = await call({ method: 'GET', url: base, as });
        expectGraphError(response, 401, 'InvalidAuthenticationToken');
        expect(response.headers['www-authenticate']).toBe('Bearer');
      }
    });

    it('answers 403 when the token lacks the permission, and accepts roles or scp', async () => {
      const now = t.clock.now();
      const none = `Bearer ${await mintToken({ tenantId: tenantA, roles: ['User.Read.All'], now })}`;
      // The first time verified in full, then recalled as verified: the same 403 either way.
      for (let attempt = 0; attempt < 2; attempt++) {
        const refused = expectGraphError(
          await call({ method: 'GET', url: base, as: none }),
          403,
          'Forbidden',
        );
        expect(refused.message).toBe(
          'Missing permission: this request needs one of DeviceManagementServiceConfig.Read.All, DeviceManagementApps.Read.All, DeviceManagementServiceConfig.ReadWrite.All, DeviceManagementApps.ReadWrite.All.',
        );
      }
      // A read permission cannot write.
      expect((await call({ method: 'GET', url: base, as: t.auth.aReadOnly })).statusCode).toBe(200);
      for (const request of [
        { method: 'POST', url: base, payload: { token: buildSToken() } },
        { method: 'PATCH', url: `${base}/x`, payload: {} },
        { method: 'DELETE', url: `${base}/x` },
      ] as const) {
        expectGraphError(await call({ ...request, as: t.auth.aReadOnly }), 403, 'Forbidden');
      }
      const appsRead = `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.appsRead], now })}`;
      expect((await call({ method: 'GET', url: `${base}/$count`, as: appsRead })).statusCode).toBe(200);
      const delegated = `Bearer ${await mintToken({ tenantId: tenantA, scp: `openid ${roles.appsReadWrite} profile`, now })}`;
      const created = await call({
        method: 'POST',
        url: base,
        as: delegated,
        payload: { token: buildSToken() },
      });
      expect(created.statusCode).toBe(201);
    });

    it('checks auth before looking at the body', async () => {
      const response = await call({
        method: 'POST',
        url: base,
        as: null,
        headers: { 'content-type': 'text/plain' },
        payload: 'x',
      });
      expectGraphError(response, 401, 'InvalidAuthenticationToken');
    });
  });

  describe('Graph conventions', () => {
    it('names the unknown segment in 404s', async () => {
      const cases: [string, string][] = [
        ['/beta/deviceManagement/managedDevices', 'managedDevices'],
        ['/beta/deviceAppManagement/vppTokens/abc/unknownAction', 'unknownAction'],
        ['/beta/deviceAppManagement', 'deviceAppManagement'],
        ['/v2.0/deviceAppManagement/vppTokens', 'v2.0'],
        ['/beta/deviceAppManagement/managedEBooks?$top=1', 'managedEBooks'],
      ];
      for (const [url, segment] of cases) {
        const response = await call({ method: 'POST', url, payload: {} });
        const error = expectGraphError(response, 404, 'ResourceNotFound');
        expect(error.message).toBe(`Resource not found for the segment '${segment}'.`);
      }
    });

    it('answers 405 with Allow for a method a resource does not serve', async () => {
      const cases: [string, string, string][] = [
        ['PUT', base, 'GET, POST, HEAD'],
        ['DELETE', base, 'GET, POST, HEAD'],
        ['POST', `${base}/00000000-0000-4000-8000-000000000001`, 'GET, PATCH, DELETE, HEAD'],
        ['PUT', `${base}/00000000-0000-4000-8000-000000000001`, 'GET, PATCH, DELETE, HEAD'],
        ['POST', `${base}/$count`, 'GET, HEAD'],
        ['POST', '/beta/$metadata', 'GET, HEAD'],
      ];
      for (const [method, url, allow] of cases) {
        const response = await call({ method: method as 'PUT', url, payload: {} });
        expectGraphError(response, 405, 'MethodNotAllowed');
        expect(response.headers.allow).toBe(allow);
      }
    });

    it('echoes client-request-id on errors too, and ignores an unsafe one', async () => {
      const response = await call({
        method: 'GET',
        url: '/beta/nope',
        headers: { 'client-request-id': 'abc-123' },
      });
      expect(response.headers['client-request-id']).toBe('abc-123');
      expect(response.json().error.innerError['client-request-id']).toBe('abc-123');
      const unsafe = await call({
        method: 'GET',
        url: '/beta/nope',
        headers: { 'client-request-id': 'a b' },
      });
      expect(unsafe.headers['client-request-id']).toBeUndefined();
    });

    it('answers 500 without leaking internals when storage fails', async () => {
      const broken = await createTestApp({ engine });
      await broken.context.db.destroy();
      const response = await broken.app.inject({
        method: 'GET',
        url: base,
        headers: { authorization: broken.auth.a },
      });
      const error = expectGraphError(response, 500, 'InternalServerError');
      expect(error.message).toBe('An internal server error occurred.');
      await broken.app.close();
    });

    it('serves $metadata without auth as XML', async () => {
      const response = await call({ method: 'GET', url: '/beta/$metadata', as: null });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^application\/xml/);
      expect(response.body).toContain('<EntityType Name="vppToken" BaseType="graph.entity">');
    });

    it('answers /healthz', async () => {
      const response = await call({ method: 'GET', url: '/healthz', as: null });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ status: 'ok' });
    });

    it('never writes an sToken or a bearer token to the logs', async () => {
      const content = buildSToken();
      const inner = decodeSToken(content).token;
      await call({ method: 'POST', url: base, payload: { token: content } });
      await call({ method: 'POST', url: base, payload: { token: content } });
      await call({ method: 'POST', url: base, payload: { token: `${content}!!` } });
      const logs = logLines.join('\n');
      expect(logLines.length).toBeGreaterThan(0);
      expect(logs).not.toContain(content);
      expect(logs).not.toContain(inner);
      expect(logs).not.toContain(t.auth.a.slice('Bearer '.length));
    });
  });
});
