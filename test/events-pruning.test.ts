import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { StorageEngine } from '../src/storage/engine.js';
import { createEventStore } from '../src/storage/event-store.js';
import { createSyncJobStore } from '../src/storage/sync-job-store.js';
import { createTokenCipher } from '../src/storage/token-cipher.js';
import { createVppTokenStore } from '../src/storage/vpp-token-store.js';
import { HistoryPruner } from '../src/sync/history-pruner.js';
import { createFakeClock } from './helpers/fake-clock.js';
import { seedTokens } from './helpers/seed-tokens.js';
import { openTestStorage, storageEngines } from './helpers/storage-engines.js';

// Issue 14 part 3, pruning: the history pruner's pass deletes events older than the retention that
// the alert scanner's cursor has passed, a few rows per delete, and never a tenant's newest event
// (its change stamp would fall back to an older value, under which stale bytes could be kept).

const tenantA = 'a0000000-0000-4000-8000-00000000000a';
const tenantB = 'b0000000-0000-4000-8000-00000000000b';
const day = 86_400_000;
const opened: StorageEngine[] = [];
afterAll(async () => {
  for (const storage of opened) await storage.close();
});

describe.each(storageEngines)('event pruning on %s', (kind) => {
  it('deletes old events behind the cursor in small batches and keeps every tenant stamp', async () => {
    const storage = await openTestStorage(kind);
    opened.push(storage);
    const clock = createFakeClock('2026-03-01T00:00:00.000Z');
    const tokens = createVppTokenStore({
      storage,
      cipher: createTokenCipher(Buffer.alloc(32, 9)),
      clock: clock.now,
    });
    const [a] = await seedTokens(tokens, { tenantId: tenantA, count: 1, now: clock.now });
    await seedTokens(tokens, { tenantId: tenantB, count: 1, now: clock.now });
    if (!a) throw new Error('no token');
    for (let i = 0; i < 20; i++) await tokens.update(tenantA, a.id, { displayName: `old ${i}` });
    const events = createEventStore({ storage });
    const oldNewest = await events.newestSeq();
    // Eight days later: a few recent events of tenant A.
    clock.advance(8 * day);
    for (let i = 0; i < 3; i++) await tokens.update(tenantA, a.id, { displayName: `new ${i}` });
    const stamps = async () => [
      await storage.readTenantStamp(tenantA),
      await storage.readTenantStamp(tenantB),
    ];
    const stampsBefore = await stamps();
    const all = async () =>
      (await events.readAfter(0, 1000)).map((e) => ({ seq: e.seq, tenantId: e.tenantId }));
    const before = await all();
    expect(before).toHaveLength(2 + 20 + 3);

    // The alert scanner has passed the first 10 events only.
    await storage.db
      .insertInto('event_cursors')
      .values({ name: 'alerts', seq: before[9]?.seq ?? 0, updated_at: clock.now().toISOString() })
      .execute();
    const pruner = new HistoryPruner({
      jobs: createSyncJobStore({ storage, newId: randomUUID }),
      clock: clock.now,
      logger: pino({ level: 'silent' }),
      retentionMs: 90 * day,
      batchRows: 3,
      events: { store: events, retentionMs: 7 * day },
    });
    const first = await pruner.prune();
    // The first ten, but tenant B's only event (its newest) stays.
    const firstTen = before.slice(0, 10);
    const keptOfThem = firstTen.filter((e) => e.tenantId === tenantB);
    expect(keptOfThem).toHaveLength(1);
    expect(first.eventsDeleted).toBe(9);
    expect(await all()).toEqual(before.filter((e, i) => i >= 10 || e.tenantId === tenantB));
    expect(await stamps()).toEqual(stampsBefore);

    // Once the cursor passed everything: every old event goes but each tenant's newest; recent ones stay.
    await storage.db
      .updateTable('event_cursors')
      .set({ seq: await events.newestSeq() })
      .where('name', '=', 'alerts')
      .execute();
    const second = await pruner.prune();
    const left = await all();
    expect(left.filter((e) => e.seq <= oldNewest).map((e) => e.tenantId)).toEqual([tenantB]);
    expect(left.filter((e) => e.seq > oldNewest)).toHaveLength(3);
    expect(second.eventsDeleted).toBe(before.length - 9 - left.length);
    expect(await stamps()).toEqual(stampsBefore);
    expect((await pruner.prune()).eventsDeleted).toBe(0);
  });
});
