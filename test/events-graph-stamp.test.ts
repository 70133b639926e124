import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEventStore } from '../src/storage/event-store.js';
import type { ClaimedSync } from '../src/storage/sync-job-store.js';
import { createSyncProgressStore } from '../src/storage/sync-progress-store.js';
import { createTestApp, type TestApp, tenantA } from './helpers/graph-test-app.js';
import { buildSToken } from './helpers/stoken-builder.js';
import { storageEngines } from './helpers/storage-engines.js';

// Graph's vppTokens keep their answers under the tenant's stamp without progress notes
// (StorageEngine.readTenantStampWithoutProgress): a running sync's `syncProgressed` events, at most one a
// second per run, no longer retire them, while every change a vppToken shows still does at once. The
// dashboard's live view keeps the full stamp and still shows each progress note.

const base = '/beta/deviceAppManagement/vppTokens';

describe.each(storageEngines)('the Graph stamp without progress on %s', (kind) => {
  let t: TestApp;
  let id = '';
  let claim: ClaimedSync;
  beforeAll(async () => {
    t = await createTestApp({ engine: kind });
    const created = await t.app.inject({
      method: 'POST',
      url: base,
      headers: { authorization: t.auth.a, 'content-type': 'application/json' },
      payload: JSON.stringify({ token: buildSToken(), displayName: 'before' }),
    });
    id = (JSON.parse(created.body) as { id: string }).id;
    await t.app.inject({
      method: 'POST',
      url: `${base}/${id}/syncLicenses`,
      headers: { authorization: t.auth.a },
    });
    const claimed = await t.context.sync.jobs.claimNext({
      workerId: 'graph-stamp-worker',
      now: t.clock.now(),
      leaseMs: 60_000,
      maxActive: 4,
      maxAttempts: 2,
      newRunId: randomUUID,
    });
    if (claimed?.kind !== 'claimed') throw new Error('nothing claimed');
    claim = claimed.claim;
  });
  afterAll(async () => {
    await t?.close();
  });

  const get = async (path: string) => {
    const response = await t.app.inject({ method: 'GET', url: path, headers: { authorization: t.auth.a } });
    expect(response.statusCode, response.body).toBe(200);
    return response.body;
  };
  const stamps = async () => ({
    all: Number(await t.context.storage.readTenantStamp(tenantA)),
    graph: Number(await t.context.storage.readTenantStampWithoutProgress(tenantA)),
  });

  it('keeps Graph answers through progress notes; the live view shows each note', async () => {
    const reads = vi.spyOn(t.context.tokens, 'get');
    const lists = vi.spyOn(t.context.tokens, 'listPage');
    try {
      const one = await get(`${base}/${id}`);
      const list = await get(base);
      const before = await stamps();
      const progress = createSyncProgressStore({ storage: t.context.storage });
      for (const pages of [1, 2, 3]) {
        await progress.record(
          claim.job.id,
          claim.runId,
          { phase: 'assignments', pages, records: pages * 100 },
          t.clock.now(),
        );
        const live = JSON.parse(await get(`/vppd/v1/tokens/${id}/sync`)) as {
          sync?: { pages: number };
          pages?: number;
        };
        expect(live.sync?.pages ?? live.pages).toBe(pages);
      }
      const after = await stamps();
      expect(after.all).toBeGreaterThan(before.all);
      expect(after.graph).toBe(before.graph);
      reads.mockClear();
      lists.mockClear();
      // Answered from the kept bytes: no store read at all.
      expect(await get(`${base}/${id}`)).toBe(one);
      expect(await get(base)).toBe(list);
      expect(reads).not.toHaveBeenCalled();
      expect(lists).not.toHaveBeenCalled();
    } finally {
      reads.mockRestore();
      lists.mockRestore();
    }
  });

  it('shows a rename on the very next read after progress notes', async () => {
    await get(`${base}/${id}`);
    const before = await stamps();
    const patched = await t.app.inject({
      method: 'PATCH',
      url: `${base}/${id}`,
      headers: { authorization: t.auth.a, 'content-type': 'application/json' },
      payload: JSON.stringify({ displayName: 'renamed' }),
    });
    expect(patched.statusCode, patched.body).toBe(204);
    expect((await stamps()).graph).toBeGreaterThan(before.graph);
    expect(JSON.parse(await get(`${base}/${id}`)).displayName).toBe('renamed');
    expect(await get(`${base}?$filter=displayName eq 'renamed'`)).toContain(id);
  });

  it('shows a sync completion on the very next read', async () => {
    expect(JSON.parse(await get(`${base}/${id}`)).lastSyncStatus).toBe('inProgress');
    const committed = await t.context.sync.jobs.commit(
      claim,
      {
        locationUid: 'loc-graph-stamp',
        locationName: 'Graph Stamp Campus',
        countryOrRegion: 'us',
        expirationDateTime: undefined,
        versionId: 'v1',
        assetCount: 0,
        assignmentCount: 0,
        pageCount: 1,
        totalLicenseCount: 0,
        usedLicenseCount: 0,
        availableLicenseCount: 0,
      },
      t.clock.now(),
      new Date(t.clock.now().getTime() + 86_400_000),
    );
    expect(committed).toBeTruthy();
    const answer = JSON.parse(await get(`${base}/${id}`)) as Record<string, unknown>;
    expect(answer.lastSyncStatus).toBe('completed');
    expect(answer.locationName).toBe('Graph Stamp Campus');
  });

  it('keeps a tenant’s newest event other than progress when pruning, so the stamp never falls back', async () => {
    const { db } = t.context.storage;
    const tenantId = 'cccccccc-3333-4333-8333-333333333333';
    const old = '2020-01-01T00:00:00.000Z';
    const rows = ['tokenCreated', 'tokenUpdated', 'syncProgressed', 'syncProgressed'].map((type) => ({
      tenant_id: tenantId,
      token_id: null,
      type,
      payload: '{}',
      created_at: old,
    }));
    await db.insertInto('events').values(rows).execute();
    const graphBefore = Number(await t.context.storage.readTenantStampWithoutProgress(tenantId));
    const allBefore = Number(await t.context.storage.readTenantStamp(tenantId));
    const pruned = await createEventStore({ storage: t.context.storage }).prune(
      new Date('2021-01-01T00:00:00.000Z'),
      500,
    );
    expect(pruned).toBeGreaterThanOrEqual(2);
    const left = await db
      .selectFrom('events')
      .select(['seq', 'type'])
      .where('tenant_id', '=', tenantId)
      .orderBy('seq')
      .execute();
    // tokenCreated and the older progress note went; tokenUpdated (the Graph stamp) and the newest stay.
    expect(left.map((r) => r.type)).toEqual(['tokenUpdated', 'syncProgressed']);
    expect(Number(await t.context.storage.readTenantStampWithoutProgress(tenantId))).toBe(graphBefore);
    expect(Number(await t.context.storage.readTenantStamp(tenantId))).toBe(allBefore);
  });
});
