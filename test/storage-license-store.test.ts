import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import type { StorageEngine, StorageEngineKind } from '../src/storage/engine.js';
import { createLicenseReadStore } from '../src/storage/license-read-store.js';
import {
  createLicenseStore,
  type LicenseAssetInput,
  type LicenseAssignmentInput,
  type LicenseStore,
} from '../src/storage/license-store.js';
import type { VppdDatabase } from '../src/storage/open-database.js';
import { mergeAssetLicenses } from '../src/storage/snapshot-merge.js';
import { type ClaimedSync, createSyncJobStore, type SyncJobStore } from '../src/storage/sync-job-store.js';
import { createTokenCipher } from '../src/storage/token-cipher.js';
import { createVppTokenStore } from '../src/storage/vpp-token-store.js';
import { createFakeClock, createSequentialIds } from './helpers/fake-clock.js';
import {
  countRunRows,
  currentSnapshot,
  listAssets,
  listAssignments,
} from './helpers/license-snapshot-sql.js';
import { seedTokens } from './helpers/seed-tokens.js';
import { openTestStorage, storageEngines } from './helpers/storage-engines.js';

// The license store's write path against each real engine: staging in sorted batches, read back through
// the snapshot pointer.

const dir = mkdtempSync(join(tmpdir(), 'vppd-license-store-'));
const tenantId = 'cccccccc-0000-4000-8000-000000000000';
const opened: StorageEngine[] = [];
const unlimited = 2147483647;

afterAll(async () => {
  for (const storage of opened) await storage.close();
  rmSync(dir, { recursive: true, force: true });
});

let files = 0;
interface Fixture {
  readonly db: VppdDatabase;
  readonly licenses: LicenseStore;
  readonly jobs: SyncJobStore;
  readonly claim: ClaimedSync;
}

/**
 * A database with one token whose sync is claimed: a run to stage rows into. On SQLite a file or
 * memory; on PostgreSQL a new database either way.
 */
async function fixture(kind: 'file' | 'memory', engine: StorageEngineKind): Promise<Fixture> {
  files += 1;
  const file = join(dir, `license-${files}.db`);
  const storage = await openTestStorage(engine, {
    sqliteUrl: kind === 'file' ? `sqlite:${file}` : 'sqlite::memory:',
  });
  opened.push(storage);
  const { db } = storage;
  const clock = createFakeClock();
  const ids = createSequentialIds('dddddddd');
  const tokens = createVppTokenStore({
    storage,
    cipher: createTokenCipher(Buffer.alloc(32, 3)),
    clock: clock.now,
  });
  const [token] = await seedTokens(tokens, { tenantId, count: 1, newId: ids, now: clock.now });
  const jobs = createSyncJobStore({ storage, newId: ids });
  await jobs.requestSync(tenantId, token?.id as string, 'api', clock.now());
  const claimed = await jobs.claimNext({
    workerId: 'test-worker',
    now: clock.now(),
    leaseMs: 60_000,
    maxActive: 1,
    maxAttempts: 2,
    newRunId: ids,
  });
  if (claimed?.kind !== 'claimed') throw new Error('no claim');
  return { db, licenses: createLicenseStore({ storage }), jobs, claim: claimed.claim };
}

const assets: LicenseAssetInput[] = ['100000001', '100000002', '100000003', '100000004'].flatMap(
  (adamId, i) =>
    (['STDQ', 'PLUS'] as const).map((pricingParam) => ({
      adamId,
      pricingParam,
      productType: 'App',
      totalCount: i === 0 ? unlimited : 1000,
      assignedCount: 10,
      availableCount: i === 0 ? unlimited - 10 : 990,
      retiredCount: 0,
      deviceAssignable: true,
      revocable: true,
      supportedPlatforms: ['iOS'],
    })),
);

/** `count` assignments over the assets above in a seeded random order (Apple promises no order). */
function assignments(count: number, seed: number): LicenseAssignmentInput[] {
  const keys = fc.sample(fc.integer({ min: 0, max: assets.length - 1 }), { numRuns: count, seed });
  return keys.map((k, i) => {
    const asset = assets[k] as LicenseAssetInput;
    return i % 3 === 0
      ? {
          adamId: asset.adamId,
          pricingParam: asset.pricingParam,
          // Client ids are the MDM's own strings: not always ASCII.
          clientUserId: i < 300 ? `utilisateur-é-ユーザー-😀-${i}` : `user-${i}`,
        }
      : {
          adamId: asset.adamId,
          pricingParam: asset.pricingParam,
          serialNumber: `SN${i.toString(36).toUpperCase()}`,
        };
  });
}

async function stage(f: Fixture, rows: readonly LicenseAssignmentInput[], flushRows: number): Promise<void> {
  await f.licenses.insertAssets({ runId: f.claim.runId, tenantId, tokenId: f.claim.job.tokenId }, assets);
  const writer = f.licenses.assignmentWriter(f.claim.runId, { flushRows });
  for (let i = 0; i < rows.length; i += 137) await writer.write(rows.slice(i, i + 137));
  await writer.close();
}

async function commit(f: Fixture, rows: readonly LicenseAssignmentInput[]): Promise<void> {
  const sum = (pick: (a: LicenseAssetInput) => number) => assets.reduce((n, a) => n + pick(a), 0);
  const now = new Date('2026-03-01T12:01:00Z');
  await f.jobs.commit(
    f.claim,
    {
      locationUid: 'loc-1',
      locationName: 'Location',
      countryOrRegion: 'us',
      expirationDateTime: undefined,
      versionId: 'v1',
      assetCount: assets.length,
      assignmentCount: rows.length,
      pageCount: 1,
      totalLicenseCount: sum((a) => a.totalCount),
      usedLicenseCount: sum((a) => a.assignedCount),
      availableLicenseCount: sum((a) => a.availableCount),
    },
    now,
    new Date(now.getTime() + 3_600_000),
  );
}

const keyOf = (a: LicenseAssignmentInput) =>
  `${a.adamId}|${a.pricingParam}|${a.serialNumber ?? ''}|${a.clientUserId ?? ''}`;

async function readAll(f: Fixture, query: { adamId?: string; pricingParam?: string } = {}) {
  const out: { seq: number; key: string }[] = [];
  for (let afterSeq = -1; ; ) {
    const page = await listAssignments(f.db, tenantId, f.claim.job.tokenId, {
      ...query,
      afterSeq,
      limit: 700,
    });
    if (page.length === 0) return out;
    for (const a of page) out.push({ seq: a.seq, key: keyOf(a) });
    afterSeq = page[page.length - 1]?.seq as number;
  }
}

/**
 * Keeps chunk writes of `f`'s run from landing until `release()`: a transaction that holds the table
 * (PostgreSQL: a share lock, which inserts wait for; SQLite: the one connection every transaction of
 * the store queues for). `done` answers the licenses the run had when the hold ended, read inside it.
 */
async function holdChunkWrites(
  f: Fixture,
  engine: StorageEngineKind,
): Promise<{ release(): void; readonly done: Promise<number> }> {
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let held = () => {};
  const holding = new Promise<void>((resolve) => {
    held = resolve;
  });
  const done = f.db.transaction().execute(async (trx) => {
    if (engine === 'postgres') await sql`lock table license_assignment_chunks in share mode`.execute(trx);
    held();
    await released;
    return (await countRunRows(trx, f.claim.runId)).assignments;
  });
  await holding;
  return { release, done };
}

describe.each(storageEngines)('LicenseStore staging on %s', (engine) => {
  it('stages a multi-batch run in random order: every record once, with its Apple position', async () => {
    const f = await fixture('file', engine);
    const rows = assignments(5000, 7);
    await stage(f, rows, 1000);
    await commit(f, rows);

    expect(await countRunRows(f.db, f.claim.runId)).toEqual({
      assets: assets.length,
      assignments: 5000,
    });
    expect(await readAll(f)).toEqual(rows.map((a, seq) => ({ seq, key: keyOf(a) })));
    // One app's licenses: its own rows only, in Apple's order, paged by seq.
    const app = assets[3] as LicenseAssetInput;
    const expected = rows
      .map((a, seq) => ({ seq, key: keyOf(a) }))
      .filter((r) => r.key.startsWith(`${app.adamId}|${app.pricingParam}|`));
    expect(expected.length).toBeGreaterThan(400);
    expect(await readAll(f, { adamId: app.adamId, pricingParam: app.pricingParam })).toEqual(expected);

    const reads = createLicenseReadStore({ db: f.db });
    const key = { tokenId: f.claim.job.tokenId, adamId: app.adamId, pricingParam: app.pricingParam };
    expect(await reads.countAssignedLicenses(tenantId, key)).toBe(expected.length);
    const second = await reads.listAssignedLicenses(tenantId, key, {
      fromSeq: (expected[100]?.seq as number) + 0,
      limit: 50,
    });
    expect(second.map((l) => l.seq)).toEqual(expected.slice(100, 150).map((r) => r.seq));
  });

  it('stores the same rows whatever the batch size (sorted batches never reorder an asset)', async () => {
    const rows = assignments(3000, 11);
    const onFile = await fixture('file', engine);
    const inMemory = await fixture('memory', engine);
    await stage(onFile, rows, 700);
    await stage(inMemory, rows, 1);
    await commit(onFile, rows);
    await commit(inMemory, rows);
    expect(await readAll(inMemory)).toEqual(await readAll(onFile));
  });

  it('a batch is written while the caller goes on; close waits for every batch', async () => {
    const f = await fixture('file', engine);
    // 8 assets: ~375 licenses each, so full chunks (128) and a batch of at least 400 during the writes.
    const rows = assignments(3000, 21);
    const writer = f.licenses.assignmentWriter(f.claim.runId, { flushRows: 400 });
    const hold = await holdChunkWrites(f, engine);
    // The batch cannot land while the table is held: write returning proves it did not wait for it.
    await writer.write(rows.slice(0, 2000));
    let closed = false;
    const closing = writer.write(rows.slice(2000)).then(async () => {
      await writer.close();
      closed = true;
    });
    expect(closed).toBe(false);
    hold.release();
    expect(await hold.done).toBe(0);
    await closing;
    expect(await countRunRows(f.db, f.claim.runId)).toEqual({ assets: 0, assignments: 3000 });
    await f.licenses.insertAssets({ runId: f.claim.runId, tenantId, tokenId: f.claim.job.tokenId }, assets);
    await commit(f, rows);
    expect(await readAll(f)).toEqual(rows.map((a, seq) => ({ seq, key: keyOf(a) })));
  });

  it('while a batch is written, writes go on until four batches are ready, then wait for it', async () => {
    const f = await fixture('file', engine);
    // 8 assets: 2,000 licenses fill ~8 chunks (~1,000 licenses) for the first batch.
    const rows = assignments(8000, 23);
    const batches: { licenses: number; landed: boolean }[] = [];
    const writer = f.licenses.assignmentWriter(f.claim.runId, {
      flushRows: 400,
      onBatch: (batch) => {
        const seen = { licenses: batch.licenses, landed: false };
        batches.push(seen);
        void batch.written.then(() => {
          seen.landed = true;
        });
      },
    });
    const hold = await holdChunkWrites(f, engine);
    await writer.write(rows.slice(0, 2000));
    expect(batches).toHaveLength(1);
    // Under 4 x 400 licenses ready: no second batch, no wait.
    await writer.write(rows.slice(2000, 2500));
    expect(batches).toHaveLength(1);
    let waited = false;
    const waiting = writer.write(rows.slice(2500, 5000)).then(() => {
      waited = true;
    });
    expect(waited).toBe(false);
    hold.release();
    expect(await hold.done).toBe(0);
    await waiting;
    expect(batches).toHaveLength(2);
    expect(batches[0]?.landed).toBe(true);
    expect(batches[1]?.licenses).toBeGreaterThanOrEqual(1600);
    await writer.write(rows.slice(5000));
    await writer.close();
    await f.licenses.insertAssets({ runId: f.claim.runId, tenantId, tokenId: f.claim.job.tokenId }, assets);
    await commit(f, rows);
    expect(batches.reduce((n, b) => n + b.licenses, 0)).toBe(8000);
    expect(await readAll(f)).toEqual(rows.map((a, seq) => ({ seq, key: keyOf(a) })));
  });

  it('discard waits for the batch in flight, so clearRun after it leaves nothing behind', async () => {
    const f = await fixture('file', engine);
    const rows = assignments(3000, 22);
    const writer = f.licenses.assignmentWriter(f.claim.runId, { flushRows: 400 });
    const hold = await holdChunkWrites(f, engine);
    await writer.write(rows);
    const discarding = writer.discard();
    hold.release();
    expect(await hold.done).toBe(0);
    await discarding;
    // The batch in flight landed (at least 400 licenses in full chunks); what was buffered did not.
    const landed = (await countRunRows(f.db, f.claim.runId)).assignments;
    expect(landed).toBeGreaterThanOrEqual(400);
    expect(landed).toBeLessThan(3000);
    await f.licenses.clearRun(f.claim.runId);
    expect(await countRunRows(f.db, f.claim.runId)).toEqual({ assets: 0, assignments: 0 });
  });

  it('a run deleted mid-staging (token deleted) fails the writer with a foreign-key violation', async () => {
    const f = await fixture('file', engine);
    const writer = f.licenses.assignmentWriter(f.claim.runId, { flushRows: 400 });
    const rows = assignments(2000, 5);
    await writer.write(rows.slice(0, 900));
    await f.db.deleteFrom('vpp_tokens').where('id', '=', f.claim.job.tokenId).execute();
    const failed = (async () => {
      await writer.write(rows.slice(900));
      await writer.close();
    })();
    const error = await failed.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(f.jobs.isForeignKeyViolation(error)).toBe(true);
    const left = await f.db
      .selectFrom('license_assignment_chunks')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    expect(Number(left.n)).toBe(0);
  });

  it('clearRun deletes a run in key ranges and forgets its run key', async () => {
    const f = await fixture('file', engine);
    // More rows than one delete range (20,000).
    await stage(f, assignments(30_000, 9), 14_000);
    expect((await countRunRows(f.db, f.claim.runId)).assignments).toBe(30_000);
    await f.licenses.clearRun(f.claim.runId);
    expect(await countRunRows(f.db, f.claim.runId)).toEqual({ assets: 0, assignments: 0 });
    const keys = await f.db.selectFrom('license_runs').selectAll().execute();
    expect(keys).toEqual([]);
  });

  it('stores every asset field as given, over several statements, keeping the last of a repeated asset', async () => {
    const f = await fixture('file', engine);
    const many: LicenseAssetInput[] = Array.from({ length: 1203 }, (_, i) => ({
      adamId: String(200_000_000 + i),
      pricingParam: i % 2 === 0 ? 'STDQ' : 'PLUS',
      productType: i % 3 === 0 ? undefined : 'Book',
      totalCount: i,
      assignedCount: Math.floor(i / 2),
      availableCount: i - Math.floor(i / 2),
      retiredCount: i % 7,
      deviceAssignable: i % 3 === 0 ? undefined : i % 3 === 1,
      revocable: i % 5 === 0 ? undefined : i % 5 > 2,
      supportedPlatforms: i % 4 === 0 ? [] : ['iOS', 'macOS'].slice(0, i % 2 === 0 ? 1 : 2),
    }));
    // The same (adamId, pricingParam) again later in the call: Apple's last answer wins.
    const repeated = {
      ...(many[10] as LicenseAssetInput),
      totalCount: 5000,
      assignedCount: 1,
      availableCount: 4999,
    };
    await f.licenses.insertAssets({ runId: f.claim.runId, tenantId, tokenId: f.claim.job.tokenId }, [
      ...many,
      repeated,
    ]);
    await commit(f, []);
    const listed = await listAssets(f.db, tenantId, f.claim.job.tokenId);
    const expected = many.map((a, i) => ({
      ...(i === 10 ? repeated : a),
      tokenId: f.claim.job.tokenId,
      metadata: undefined,
    }));
    const byKey = (a: LicenseAssetInput) => `${a.adamId}|${a.pricingParam}`;
    expect([...listed].sort((a, b) => byKey(a).localeCompare(byKey(b)))).toEqual(
      expected.sort((a, b) => byKey(a).localeCompare(byKey(b))),
    );
  });

  it('upserts metadata over several statements; a later lookup replaces every field', async () => {
    const f = await fixture('file', engine);
    const staged = [...new Set(assets.map((a) => a.adamId))];
    const entries = Array.from({ length: 450 }, (_, i) => ({
      adamId: staged[i] ?? String(300_000_000 + i),
      name: i % 4 === 0 ? undefined : `App ${i}`,
      bundleId: i % 3 === 0 ? undefined : `com.example.app${i}`,
      kind: i % 2 === 0 ? 'software' : undefined,
      artworkUrl: i % 5 === 0 ? undefined : `https://art.example/${i}.png`,
      deviceFamilies: i % 2 === 0 ? ['iphone', 'ipad'] : [],
    }));
    const first = new Date('2026-03-01T10:00:00Z');
    const second = new Date('2026-03-02T10:00:00Z');
    await f.licenses.upsertMetadata(entries, { platform: 'volumestore', country: 'us' }, first);
    const renamed = entries
      .slice(0, 2)
      .map((e) => ({ ...e, name: `${e.name ?? 'none'} v2`, deviceFamilies: ['mac'] }));
    await f.licenses.upsertMetadata(renamed, { platform: 'enterprisestore', country: 'fr' }, second);
    expect([...(await f.licenses.knownMetadata(entries.map((e) => e.adamId)))].sort()).toEqual(
      [...new Set(entries.map((e) => e.adamId))].sort(),
    );
    await f.licenses.insertAssets({ runId: f.claim.runId, tenantId, tokenId: f.claim.job.tokenId }, assets);
    await commit(f, []);
    const listed = await listAssets(f.db, tenantId, f.claim.job.tokenId);
    const metadataOf = (adamId: string) => listed.find((a) => a.adamId === adamId)?.metadata;
    const [e0, e1, e2] = entries as [(typeof entries)[0], (typeof entries)[0], (typeof entries)[0]];
    expect(metadataOf(e0.adamId)).toEqual({
      adamId: e0.adamId,
      name: 'none v2',
      bundleId: undefined,
      kind: 'software',
      artworkUrl: undefined,
      deviceFamilies: ['mac'],
      fetchedAt: second,
    });
    expect(metadataOf(e1.adamId)).toEqual({
      adamId: e1.adamId,
      name: 'App 1 v2',
      bundleId: 'com.example.app1',
      kind: undefined,
      artworkUrl: 'https://art.example/1.png',
      deviceFamilies: ['mac'],
      fetchedAt: second,
    });
    expect(metadataOf(e2.adamId)).toEqual({
      adamId: e2.adamId,
      name: 'App 2',
      bundleId: 'com.example.app2',
      kind: 'software',
      artworkUrl: 'https://art.example/2.png',
      deviceFamilies: ['iphone', 'ipad'],
      fetchedAt: first,
    });
    const stored = await f.db
      .selectFrom('license_app_metadata')
      .select(['adam_id', 'platform', 'country'])
      .where('adam_id', 'in', [e0.adamId, e2.adamId])
      .orderBy('adam_id')
      .execute();
    expect(stored).toEqual([
      { adam_id: e0.adamId, platform: 'enterprisestore', country: 'fr' },
      { adam_id: e2.adamId, platform: 'volumestore', country: 'us' },
    ]);
  });

  it('a snapshot patch rewrites only the chunks that change; the rest keep their rows', async () => {
    const f = await fixture('file', engine);
    const rows = assignments(3000, 11);
    await stage(f, rows, 1000);
    await commit(f, rows);
    const run = await f.db
      .selectFrom('license_runs')
      .select('run_key')
      .where('run_id', '=', f.claim.runId)
      .executeTakeFirstOrThrow();
    const runKey = Number(run.run_key);
    const chunkRows = async () =>
      (
        await f.db
          .selectFrom('license_assignment_chunks')
          .select(['adam_id', 'pricing_param', 'first_seq', 'last_seq', 'holder_count', 'seqs', 'holders'])
          .where('run_key', '=', runKey)
          .execute()
      ).map((c) => JSON.stringify([c.adam_id, c.pricing_param, Number(c.first_seq), c.seqs, c.holders]));
    const before = new Set(await chunkRows());
    const listed = await readAll(f);
    const [grown, shrunk, replaced, same] = [assets[0], assets[3], assets[5], assets[1]] as [
      LicenseAssetInput,
      LicenseAssetInput,
      LicenseAssetInput,
      LicenseAssetInput,
    ];
    const of = (a: LicenseAssetInput) =>
      listed.filter((l) => l.key.startsWith(`${a.adamId}|${a.pricingParam}|`));
    const holder = (key: string) => {
      const [, , serial, user] = key.split('|');
      return serial ? `d:${serial}` : `u:${user}`;
    };
    // One license taken from the middle of `shrunk`; 200 new ones for `grown` (its last chunk fills,
    // then new chunks); `replaced` keeps every other license and gains two.
    const middle = of(shrunk)[Math.floor(of(shrunk).length / 2)] as { key: string };
    const kept = of(replaced).filter((_, i) => i % 2 === 0);
    const additions = Array.from({ length: 200 }, (_, i) => `d:MERGE${i}`);
    const result = await f.db.transaction().execute((trx) =>
      mergeAssetLicenses(trx, runKey, [
        { ...grown, add: new Set(additions), remove: new Set() },
        { ...shrunk, add: new Set(), remove: new Set([holder(middle.key)]) },
        {
          ...replaced,
          add: new Set(),
          remove: new Set(),
          replace: [...kept.map((l) => holder(l.key)), 'd:MERGE-R1', 'u:merge-r2'],
        },
        // Nothing changes: nothing is written.
        { ...same, add: new Set(), remove: new Set() },
      ]),
    );
    const replacedBefore = of(replaced).length;
    expect(result).toEqual({ added: 202, removed: 1 + replacedBefore - kept.length });

    // Read per asset: new positions follow the asset's own last one, so they may repeat another's.
    const after = new Map<LicenseAssetInput, { seq: number; key: string }[]>();
    for (const a of assets)
      after.set(a, await readAll(f, { adamId: a.adamId, pricingParam: a.pricingParam }));
    const keysOf = (list: typeof after, a: LicenseAssetInput) => list.get(a) ?? [];
    // Positions stay; new licenses follow the asset's last position in the order given.
    const grownAfter = keysOf(after, grown);
    expect(grownAfter.slice(0, of(grown).length)).toEqual(of(grown));
    expect(grownAfter.slice(of(grown).length).map((l) => holder(l.key))).toEqual(additions);
    expect(keysOf(after, shrunk)).toEqual(of(shrunk).filter((l) => l.key !== middle.key));
    expect(keysOf(after, replaced).map((l) => holder(l.key))).toEqual([
      ...kept.map((l) => holder(l.key)),
      'd:MERGE-R1',
      'u:merge-r2',
    ]);
    for (const a of assets.filter((x) => x !== grown && x !== shrunk && x !== replaced)) {
      expect(keysOf(after, a)).toEqual(of(a));
    }

    // Rows: every chunk of an unchanged asset, and of `shrunk` but the one that lost a license, is the
    // same row as before; chunks stay within their size and never overlap.
    const afterRows = await chunkRows();
    const changedRows = afterRows.filter((r) => !before.has(r)).map((r) => JSON.parse(r) as unknown[]);
    const changedAssets = changedRows.map((r) => `${r[0]}|${r[1]}`);
    expect(new Set(changedAssets)).toEqual(
      new Set([grown, shrunk, replaced].map((a) => `${a.adamId}|${a.pricingParam}`)),
    );
    expect(changedAssets.filter((a) => a === `${shrunk.adamId}|${shrunk.pricingParam}`)).toHaveLength(1);
    const chunks = await f.db
      .selectFrom('license_assignment_chunks')
      .select(['adam_id', 'pricing_param', 'first_seq', 'last_seq', 'holder_count'])
      .where('run_key', '=', runKey)
      .orderBy('adam_id')
      .orderBy('pricing_param')
      .orderBy('first_seq')
      .execute();
    let previous: (typeof chunks)[number] | undefined;
    for (const c of chunks) {
      expect(Number(c.holder_count)).toBeGreaterThan(0);
      expect(Number(c.holder_count)).toBeLessThanOrEqual(128);
      if (previous?.adam_id === c.adam_id && previous.pricing_param === c.pricing_param) {
        expect(Number(c.first_seq)).toBeGreaterThan(Number(previous.last_seq));
      }
      previous = c;
    }
  });

  it('additions only: a holder already there is skipped, the same text as the other kind is added', async () => {
    const f = await fixture('file', engine);
    const rows = assignments(3000, 11);
    await stage(f, rows, 1000);
    await commit(f, rows);
    const { run_key } = await f.db
      .selectFrom('license_runs')
      .select('run_key')
      .where('run_id', '=', f.claim.runId)
      .executeTakeFirstOrThrow();
    const asset = assets[0] as LicenseAssetInput;
    const listed = await readAll(f, { adamId: asset.adamId, pricingParam: asset.pricingParam });
    const present = listed.find((l) => l.key.split('|')[2] !== '') as { key: string };
    const serial = present.key.split('|')[2] as string;
    const merge = (add: string[]) =>
      f.db
        .transaction()
        .execute((trx) =>
          mergeAssetLicenses(trx, Number(run_key), [{ ...asset, add: new Set(add), remove: new Set() }]),
        );
    // Already held: nothing is written.
    expect(await merge([`d:${serial}`])).toEqual({ added: 0, removed: 0 });
    // The held device's serial number as a user's clientUserId is another holder; with a new device.
    expect(await merge([`u:${serial}`, `d:${serial}`, 'd:ADDONLY1'])).toEqual({ added: 2, removed: 0 });
    const after = await readAll(f, { adamId: asset.adamId, pricingParam: asset.pricingParam });
    expect(after.slice(0, listed.length)).toEqual(listed);
    expect(after.slice(listed.length).map((l) => l.key)).toEqual([
      `${asset.adamId}|${asset.pricingParam}||${serial}`,
      `${asset.adamId}|${asset.pricingParam}|ADDONLY1|`,
    ]);
  });

  it('sums of unlimited assets pass 2^31 in the snapshot totals', async () => {
    const f = await fixture('file', engine);
    const rows = assignments(10, 1);
    await stage(f, rows, 1000);
    await commit(f, rows);
    const snapshot = await currentSnapshot(f.db, tenantId, f.claim.job.tokenId);
    expect(snapshot?.totalLicenseCount).toBe(2 * unlimited + 6 * 1000);
    expect(snapshot?.availableLicenseCount).toBe(2 * (unlimited - 10) + 6 * 990);
    const listed = await listAssets(f.db, tenantId, f.claim.job.tokenId);
    expect(listed.filter((a) => a.totalCount === unlimited)).toHaveLength(2);
  });
});
