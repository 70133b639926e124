import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VppToken } from '../src/domain/vpp-token.js';
import { type RunningServer, startServer } from '../src/server/start-server.js';
import { tenantA, testConfig } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { seedTokens } from './helpers/seed-tokens.js';
import { storageEngines, testDatabaseUrl } from './helpers/storage-engines.js';

// A list page whose kept answer retired (any event of the tenant) is rebuilt from each token's kept
// JSON, re-reading only the tokens whose own newest event moved (graph/token-fragments.ts). Two
// servers on one database: `warm` has kept every token's form, `cold` reads everything for each
// request (it is asked each list once, right after the change). Both must answer the same bytes.

const base = '/beta/deviceAppManagement/vppTokens';
const lists = [
  `${base}`,
  `${base}?$top=3`,
  `${base}?$top=2&$skip=2&$count=true`,
  `${base}?$select=displayName,lastSyncStatus&$orderby=displayName desc`,
  `${base}?$filter=lastSyncStatus eq 'failed'`,
];

describe.each(storageEngines)('Graph list from kept token forms (%s)', (engine) => {
  let dir: string;
  let database: string;
  let warm: RunningServer;
  let authorization: string;
  let tokens: VppToken[];
  let coldCount = 0;
  const reads: string[][] = [];

  const get = async (server: RunningServer, path: string, headers: Record<string, string> = {}) => {
    const response = await request(`${server.url}${encodeURI(path)}`, {
      headers: { authorization, ...headers },
    });
    const text = await response.body.text();
    expect(response.statusCode, text).toBe(200);
    return text;
  };

  /** Each list on a fresh server (nothing kept) and on `warm`: the same bytes. */
  const expectSameAsCold = async (headers: Record<string, string> = {}) => {
    const cold = await startServer(testConfig({ port: '0', host: '127.0.0.1', database }));
    coldCount++;
    try {
      for (const path of lists) {
        // Links name the server that answered: compared without its origin.
        const fresh = (await get(cold, path, headers)).replaceAll(cold.url, 'ORIGIN');
        expect((await get(warm, path, headers)).replaceAll(warm.url, 'ORIGIN'), path).toBe(fresh);
      }
    } finally {
      await cold.close();
    }
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vppd-fragments-'));
    database = await testDatabaseUrl(engine, `sqlite:${join(dir, 'vppd.db')}`);
    warm = await startServer(testConfig({ port: '0', host: '127.0.0.1', database }));
    authorization = `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite], now: new Date() })}`;
    tokens = await seedTokens(warm.context.tokens, {
      tenantId: tenantA,
      count: 6,
      changes: (i) => (i % 2 === 0 ? { lastSyncStatus: 'failed' } : undefined),
    });
    // Counts the tokens the list path reads whole.
    const store = warm.context.tokens;
    const getMany = store.getMany.bind(store);
    store.getMany = (tenantId, ids) => {
      reads.push([...ids]);
      return getMany(tenantId, ids);
    };
  });

  afterAll(async () => {
    await warm?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads each token once, then only the tokens that changed', async () => {
    await get(warm, base);
    expect(reads.flat().sort()).toEqual(tokens.map((t) => t.id).sort());
    reads.length = 0;
    // Another token's change retires the kept answer of the whole tenant; the page reads that token only.
    const renamed = tokens[3] as VppToken;
    await warm.context.tokens.update(tenantA, renamed.id, { displayName: 'Renamed by the test' });
    const text = await get(warm, base);
    expect(reads).toEqual([[renamed.id]]);
    expect(text).toContain('Renamed by the test');
    await expectSameAsCold();
  });

  it('answers what a fresh read answers after renames, status changes, creates and deletes', async () => {
    for (const path of lists) await get(warm, path);
    await warm.context.tokens.update(tenantA, (tokens[0] as VppToken).id, { lastSyncStatus: 'completed' });
    await warm.context.tokens.update(tenantA, (tokens[1] as VppToken).id, { displayName: 'Zulu' });
    await warm.context.tokens.delete(tenantA, (tokens[2] as VppToken).id);
    tokens.push(...(await seedTokens(warm.context.tokens, { tenantId: tenantA, count: 2 })));
    await expectSameAsCold();
    // Prefer changes the forms (enum members): kept apart from the forms without it.
    await expectSameAsCold({ prefer: 'include-unknown-enum-members' });
    expect(coldCount).toBe(3);
  });

  it('falls back to reading the page whole when a token goes between its two reads', async () => {
    const store = warm.context.tokens;
    const counting = store.getMany;
    const victim = tokens[4] as VppToken;
    await store.update(tenantA, victim.id, { displayName: 'About to go' });
    store.getMany = async (tenantId, ids) => {
      store.getMany = counting;
      await store.delete(tenantId, victim.id);
      return counting(tenantId, ids);
    };
    const text = await get(warm, base);
    expect(store.getMany).toBe(counting);
    expect(text).not.toContain(victim.id);
    await expectSameAsCold();
  });

  it('keeps forms of tokens whose events were pruned only briefly, and sees their next change', async () => {
    await get(warm, base);
    // Every event gone, as after the event retention: no token has a version.
    await sql`delete from events`.execute(warm.context.db);
    await get(warm, `${base}?$top=50`);
    const target = tokens[5] as VppToken;
    await warm.context.tokens.update(tenantA, target.id, { displayName: 'Changed after the prune' });
    expect(await get(warm, `${base}?$top=50`)).toContain('Changed after the prune');
    await expectSameAsCold();
  });
});
