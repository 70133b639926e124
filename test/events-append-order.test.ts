import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageEngine } from '../src/storage/engine.js';
import { appendEvents } from '../src/storage/event-store.js';
import { openTestStorage, storageEngines } from './helpers/storage-engines.js';

// Issue 14 part 3: a tenant's events become visible in `seq` order, so a reader that sees `seq` n as
// the tenant's newest has seen every event of the tenant up to n, and the tenant's change stamp never
// skips a commit. On PostgreSQL the head upsert and the events insert are one statement
// (storage/postgres/event-append.ts); this drives many concurrent appends, some naming two tenants,
// some holding their transaction open after appending, while a reader keeps checking the rule.

const tenants = ['a0000000-0000-4000-8000-00000000000a', 'b0000000-0000-4000-8000-00000000000b'] as const;

describe.each(storageEngines)('event appends on %s', (kind) => {
  let storage: StorageEngine;
  beforeAll(async () => {
    storage = await openTestStorage(kind, { poolSize: 12 });
  });
  afterAll(async () => {
    await storage?.close();
  });

  const visible = async (tenantId: string): Promise<number[]> => {
    const rows = await storage.db
      .selectFrom('events')
      .select('seq')
      .where('tenant_id', '=', tenantId)
      .orderBy('seq')
      .execute();
    return rows.map((r) => Number(r.seq));
  };

  it('makes a tenant’s events visible in seq order under concurrent appends', async () => {
    const writers = kind === 'postgres' ? 8 : 2;
    const perWriter = 15;
    const observations: { tenantId: string; seen: number[] }[] = [];
    let writing = true;
    const reader = (async () => {
      while (writing) {
        for (const tenantId of tenants) observations.push({ tenantId, seen: await visible(tenantId) });
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) {
          await storage.db.transaction().execute(async (trx) => {
            const both = (w + i) % 3 === 0;
            const own = tenants[(w + i) % 2] as string;
            await appendEvents(
              trx,
              storage,
              new Date(),
              (both ? tenants : [own]).map((tenantId) => ({ tenantId, tokenId: null, type: 'tokenUpdated' })),
            );
            // Hold some transactions open after appending: later appends of the tenant must wait.
            if (kind === 'postgres' && i % 4 === 0) await sql`select pg_sleep(0.005)`.execute(trx);
          });
        }
      }),
    );
    writing = false;
    await reader;

    const all = new Map<string, number[]>();
    for (const tenantId of tenants) all.set(tenantId, await visible(tenantId));
    const total = [...all.values()].reduce((n, seqs) => n + seqs.length, 0);
    expect(total).toBe(
      Array.from({ length: writers * perWriter }, (_, k) => k).reduce(
        (n, k) => n + ((Math.floor(k / perWriter) + (k % perWriter)) % 3 === 0 ? 2 : 1),
        0,
      ),
    );
    expect(observations.length).toBeGreaterThan(0);
    for (const { tenantId, seen } of observations) {
      if (seen.length === 0) continue;
      const newest = seen[seen.length - 1] as number;
      // Everything of the tenant up to the newest seq seen was already visible then.
      const expected = (all.get(tenantId) ?? []).filter((seq) => seq <= newest);
      expect(seen).toEqual(expected);
    }
  });
});
