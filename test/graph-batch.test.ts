// Graph JSON batching ($batch) in-process: validation, per-step auth and status, dependsOn, URL forms.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './helpers/graph-test-app.js';
import { buildSToken } from './helpers/stoken-builder.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t.close();
});

interface StepResponse {
  id: string;
  status: number;
  headers: Record<string, string>;
  body?: Record<string, unknown> | string;
}

async function batch(payload: unknown, authorization: string | null = t.auth.a, version = 'beta') {
  const response = await t.app.inject({
    method: 'POST',
    url: `/${version}/$batch`,
    headers: authorization === null ? {} : { authorization },
    payload: payload as Record<string, unknown>,
  });
  return {
    status: response.statusCode,
    body: response.json() as { responses: StepResponse[]; error?: { code: string; message: string } },
  };
}

describe('$batch', () => {
  it('runs each step as if it came alone: create (201 + Location), get, list, $count', async () => {
    const { status, body } = await batch({
      requests: [
        {
          id: '1',
          method: 'POST',
          url: '/deviceAppManagement/vppTokens',
          headers: { 'Content-Type': 'application/json' },
          body: { token: buildSToken(), displayName: 'From a batch' },
        },
        {
          id: '2',
          method: 'GET',
          url: 'deviceAppManagement/vppTokens?$select=displayName',
          dependsOn: ['1'],
        },
        { id: '3', method: 'get', url: '/deviceAppManagement/vppTokens/$count' },
        { id: '4', method: 'GET', url: '/deviceAppManagement/vppTokens/not-a-guid' },
      ],
    });
    expect(status).toBe(200);
    const [created, list, count, missing] = body.responses as [
      StepResponse,
      StepResponse,
      StepResponse,
      StepResponse,
    ];
    expect(created.status).toBe(201);
    const id = (created.body as Record<string, unknown>).id as string;
    expect(created.headers.Location).toBe(`http://localhost/beta/deviceAppManagement/vppTokens/${id}`);
    expect(created.headers['Content-Type']).toMatch(/^application\/json/);
    expect(list.status).toBe(200);
    expect((list.body as { value: unknown[] }).value).toEqual([
      { '@odata.type': '#microsoft.graph.vppToken', id, displayName: 'From a batch' },
    ]);
    expect(count.status).toBe(200);
    expect(Buffer.from(count.body as string, 'base64').toString()).toBe('1');
    expect(missing.status).toBe(404);
    expect((missing.body as { error: { code: string } }).error.code).toBe('ResourceNotFound');
    expect(body.responses.map((r) => r.id)).toEqual(['1', '2', '3', '4']);
  });

  it('applies the batch token to each step: a read-only token reads but cannot write', async () => {
    const { body } = await batch(
      {
        requests: [
          { id: 'w', method: 'POST', url: '/deviceAppManagement/vppTokens', body: { token: buildSToken() } },
          { id: 'r', method: 'GET', url: '/deviceAppManagement/vppTokens' },
        ],
      },
      t.auth.aReadOnly,
    );
    expect(body.responses.map((r) => r.status)).toEqual([403, 200]);
  });

  it('a step depending on a failed step answers 424 FailedDependency, and so does its dependant', async () => {
    const { body } = await batch({
      requests: [
        {
          id: 'a',
          method: 'GET',
          url: '/deviceAppManagement/vppTokens/00000000-0000-0000-0000-000000000000',
        },
        { id: 'b', method: 'GET', url: '/deviceAppManagement/vppTokens', dependsOn: ['a'] },
        { id: 'c', method: 'GET', url: '/deviceAppManagement/vppTokens', dependsOn: 'b' },
        { id: 'd', method: 'GET', url: '/deviceAppManagement/vppTokens' },
      ],
    });
    expect(body.responses.map((r) => [r.id, r.status])).toEqual([
      ['a', 404],
      ['b', 424],
      ['c', 424],
      ['d', 200],
    ]);
    expect(((body.responses[1] as StepResponse).body as { error: { code: string } }).error.code).toBe(
      'FailedDependency',
    );
  });

  it('accepts relative, version-prefixed and same-version absolute URLs; numeric ids (PowerShell)', async () => {
    const { body } = await batch({
      requests: [
        { id: 0, method: 'GET', url: 'deviceAppManagement/vppTokens?$top=1' },
        { id: 1, method: 'GET', url: '/beta/deviceAppManagement/vppTokens?$top=1' },
        {
          id: 2,
          method: 'GET',
          url: 'https://graph.microsoft.com/beta/deviceAppManagement/vppTokens?$top=1',
        },
        { id: 3, method: 'GET', url: "deviceAppManagement/vppTokens?$filter=displayName eq 'From a batch'" },
      ],
    });
    expect(body.responses.map((r) => [r.id, r.status])).toEqual([
      ['0', 200],
      ['1', 200],
      ['2', 200],
      ['3', 200],
    ]);
  });

  it('refuses what Graph refuses with a Graph error 400', async () => {
    const many = Array.from({ length: 21 }, (_, i) => ({
      id: String(i),
      method: 'GET',
      url: '/deviceAppManagement/vppTokens',
    }));
    const cases: [unknown, RegExp][] = [
      [{ requests: many }, /^Number of requests inside batch exceeds the limit\.$/],
      [{}, /"requests" must be an array/],
      [{ requests: [] }, /"requests" is empty/],
      [{ requests: [{ method: 'GET', url: '/x' }] }, /needs an "id"/],
      [{ requests: [{ id: '1', method: 'TRACE', url: '/x' }] }, /"method" must be one of/],
      [{ requests: [{ id: '1', method: 'GET' }] }, /needs a "url"/],
      [
        {
          requests: [
            { id: '1', method: 'GET', url: '/a' },
            { id: '1', method: 'GET', url: '/b' },
          ],
        },
        /used more than once/,
      ],
      [{ requests: [{ id: '1', method: 'GET', url: '/a', dependsOn: ['9'] }] }, /not in the batch/],
      [
        {
          requests: [
            { id: '1', method: 'GET', url: '/a', dependsOn: ['2'] },
            { id: '2', method: 'GET', url: '/b', dependsOn: ['1'] },
          ],
        },
        /cycle/,
      ],
      [
        { requests: [{ id: '1', method: 'GET', url: '/v1.0/deviceAppManagement/vppTokens' }] },
        /can only hold \/beta requests/,
      ],
      [
        {
          requests: [
            { id: '1', method: 'GET', url: 'https://graph.microsoft.com/v1.0/deviceAppManagement/vppTokens' },
          ],
        },
        /must address \/beta/,
      ],
      [
        { requests: [{ id: '1', method: 'GET', url: '/deviceAppManagement/../../metrics' }] },
        /'\.' or '\.\.' segments/,
      ],
      [{ requests: [{ id: '1', method: 'GET', url: '/%2e%2e/metrics' }] }, /'\.' or '\.\.' segments/],
    ];
    for (const [payload, message] of cases) {
      const { status, body } = await batch(payload);
      expect(status, JSON.stringify(payload).slice(0, 80)).toBe(400);
      expect(body.error?.code).toBe('BadRequest');
      expect(body.error?.message).toMatch(message);
    }
  });

  it('needs a valid token for the batch itself; refuses a nested $batch step; 405 on GET', async () => {
    expect(
      (await batch({ requests: [{ id: '1', method: 'GET', url: '/deviceAppManagement/vppTokens' }] }, null))
        .status,
    ).toBe(401);
    const nested = await batch({
      requests: [
        {
          id: '1',
          method: 'POST',
          url: '/$batch',
          body: { requests: [{ id: 'x', method: 'GET', url: '/deviceAppManagement/vppTokens' }] },
        },
      ],
    });
    expect(nested.body.responses[0]?.status).toBe(400);
    expect(
      ((nested.body.responses[0] as StepResponse).body as { error: { message: string } }).error.message,
    ).toMatch(/Nested \$batch/);
    const get = await t.app.inject({
      method: 'GET',
      url: '/beta/$batch',
      headers: { authorization: t.auth.a },
    });
    expect(get.statusCode).toBe(405);
  });

  it('serves v1.0 batches; a step cannot smuggle forwarded headers or another Authorization', async () => {
    const { status, body } = await batch(
      {
        requests: [
          {
            id: '1',
            method: 'GET',
            url: '/deviceAppManagement/vppTokens',
            headers: {
              Authorization: t.auth.b,
              'X-Forwarded-Host': 'evil.example',
              ConsistencyLevel: 'eventual',
            },
          },
        ],
      },
      t.auth.a,
      'v1.0',
    );
    expect(status).toBe(200);
    const step = body.responses[0] as StepResponse;
    expect(step.status).toBe(200);
    const result = step.body as { '@odata.context': string; value: unknown[] };
    expect(result['@odata.context']).toMatch(/^http:\/\/localhost(:80)?\/v1\.0\/\$metadata#/);
    // Tenant A's tokens (the batch's token), not tenant B's.
    expect(result.value.length).toBeGreaterThan(0);
  });
});
