import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp, tenantA, tenantB } from './helpers/graph-test-app.js';
import { buildSToken } from './helpers/stoken-builder.js';

// Two tenants, every route: nothing of one is visible to, countable by, or changeable by the other,
// and another tenant's token id is indistinguishable from an id that never existed.
const versions = ['beta', 'v1.0'] as const;

let t: TestApp;
const created: Record<'a' | 'b', string[]> = { a: [], b: [] };
const shared = buildSToken({ orgName: 'Shared Location' });

beforeAll(async () => {
  t = await createTestApp();
  for (const [who, auth] of [
    ['a', t.auth.a],
    ['b', t.auth.b],
  ] as const) {
    for (const token of [shared, buildSToken(), buildSToken()]) {
      const response = await t.app.inject({
        method: 'POST',
        url: '/beta/deviceAppManagement/vppTokens',
        headers: { authorization: auth },
        payload: { token, displayName: `${who}-token` },
      });
      // The same sToken in two tenants is not a conflict: a location belongs to each tenant separately.
      expect(response.statusCode, response.body).toBe(201);
      created[who].push(response.json().id);
    }
  }
});
afterAll(async () => {
  await t.close();
});

describe.each(versions)('tenant isolation on /%s', (version) => {
  const base = `/${version}/deviceAppManagement/vppTokens`;
  const as = (who: 'a' | 'b') => ({ authorization: who === 'a' ? t.auth.a : t.auth.b });

  it('lists and counts only the caller’s tokens, whatever the query', async () => {
    for (const who of ['a', 'b'] as const) {
      for (const url of [
        base,
        `${base}?$top=1&$count=true`,
        `${base}?$filter=displayName eq 'a-token' or displayName eq 'b-token'`,
        `${base}?$orderby=displayName desc&$count=true`,
      ]) {
        const response = await t.app.inject({ method: 'GET', url, headers: as(who) });
        expect(response.statusCode, response.body).toBe(200);
        const body = response.json();
        for (const item of body.value) {
          expect(created[who]).toContain(item.id);
          expect(item.displayName).toBe(`${who}-token`);
        }
        if (body['@odata.count'] !== undefined) expect(body['@odata.count']).toBe(3);
      }
      const count = await t.app.inject({ method: 'GET', url: `${base}/$count`, headers: as(who) });
      expect(count.body).toBe('3');
      const filtered = await t.app.inject({
        method: 'GET',
        url: `${base}/$count?$filter=displayName eq '${who === 'a' ? 'b' : 'a'}-token'`,
        headers: as(who),
      });
      expect(filtered.body).toBe('0');
    }
  });

  it('answers 404 for another tenant’s id on get, PATCH and DELETE, exactly as for a missing id', async () => {
    const missing = '00000000-0000-4000-8000-0000000f00f0';
    for (const [who, other] of [
      ['a', 'b'],
      ['b', 'a'],
    ] as const) {
      for (const id of created[other]) {
        for (const request of [
          { method: 'GET' as const, url: `${base}/${id}` },
          { method: 'GET' as const, url: `${base}/${id}?$select=displayName` },
          { method: 'PATCH' as const, url: `${base}/${id}`, payload: { displayName: 'stolen' } },
          {
            method: 'PATCH' as const,
            url: `${base}/${id}`,
            payload: { token: buildSToken() },
            headers: { prefer: 'return=representation' },
          },
          { method: 'DELETE' as const, url: `${base}/${id}` },
        ]) {
          const response = await t.app.inject({
            ...request,
            headers: { ...as(who), ...(request.headers ?? {}) },
          });
          const probe = await t.app.inject({
            ...request,
            url: request.url.replace(id, missing),
            headers: { ...as(who), ...(request.headers ?? {}) },
          });
          expect(response.statusCode).toBe(404);
          expect(probe.statusCode).toBe(404);
          const strip = (body: string) =>
            JSON.parse(body.replaceAll(id, 'ID').replaceAll(missing, 'ID')).error.message as string;
          // Same message shape: nothing tells "exists elsewhere" from "does not exist".
          expect(strip(response.body)).toBe(strip(probe.body));
        }
      }
    }
  });

  it('left every token untouched', async () => {
    for (const who of ['a', 'b'] as const) {
      const tenant = who === 'a' ? tenantA : tenantB;
      for (const id of created[who]) {
        const token = await t.context.tokens.get(tenant, id);
        expect(token?.displayName).toBe(`${who}-token`);
      }
      expect(await t.context.tokens.readSToken(tenant, created[who][0] as string)).toBe(shared);
    }
  });
});
