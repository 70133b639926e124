import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageEngine } from '../src/storage/engine.js';
import { createTokenCipher } from '../src/storage/token-cipher.js';
import { createVppTokenStore, type VppTokenStore } from '../src/storage/vpp-token-store.js';
import { seedTokens } from './helpers/seed-tokens.js';
import { openTestStorage } from './helpers/storage-engines.js';

// Issue 14: on PostgreSQL, back-to-back tenant-stamp reads keep their pool connection from one read to
// the next (storage/postgres/change-stamp.ts). A pool of ONE connection shows it never starves the rest
// of vppd: a write waiting for the connection gets it while reads go on, and once reads stop the
// connection goes back to the pool (else the query after them would wait forever).

const tenant = 'c0a1e5ce-0000-4000-8000-0000000000c1';

/** Polls `condition` once per event-loop turn until it holds. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise<void>((resolve) => setImmediate(resolve));
}

describe('tenant-stamp reads on a PostgreSQL pool of one connection', () => {
  let storage: StorageEngine;
  let tokens: VppTokenStore;
  let tokenId: string;

  beforeAll(async () => {
    storage = await openTestStorage('postgres', { poolSize: 1 });
    tokens = createVppTokenStore({
      storage,
      cipher: createTokenCipher(Buffer.alloc(32, 6)),
      clock: () => new Date(),
    });
    const [token] = await seedTokens(tokens, { tenantId: tenant, count: 1 });
    if (!token) throw new Error('no token seeded');
    tokenId = token.id;
  });
  afterAll(async () => {
    await storage?.close();
  });

  const readStamp = async () => {
    const [seq] = await storage.readTenantStampsWithoutProgress([tenant]);
    return Number(seq);
  };

  it('lets a write through while reads follow each other, and the reads then see it', async () => {
    let reads = 0;
    let stop = false;
    const seen: number[] = [];
    const reader = (async () => {
      while (!stop) {
        seen.push(await readStamp());
        reads += 1;
      }
    })();
    await until(() => reads >= 5);
    const before = seen.at(-1) ?? 0;
    const readsBeforeWrite = reads;
    await tokens.update(tenant, tokenId, { displayName: 'renamed while reading' });
    const written = await storage.readTenantStamp(tenant);
    // The reads went on during the write and pick it up.
    await until(() => (seen.at(-1) ?? 0) >= Number(written));
    stop = true;
    await reader;
    expect(Number(written)).toBeGreaterThan(before);
    expect(reads).toBeGreaterThan(readsBeforeWrite);
  });

  it('gives the connection back once reads stop', async () => {
    for (let i = 0; i < 20; i++) await readStamp();
    // With the connection kept for good, this would wait for it forever.
    const token = await tokens.get(tenant, tokenId);
    expect(token?.displayName).toBe('renamed while reading');
    // And reads take it again afterwards.
    expect(await readStamp()).toBeGreaterThan(0);
  });
});
