import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coalesceReads, createTenantChangeStamp } from '../src/storage/change-stamp.js';
import type { StorageEngine } from '../src/storage/engine.js';
import { createTokenCipher } from '../src/storage/token-cipher.js';
import { createVppTokenStore, type VppTokenStore } from '../src/storage/vpp-token-store.js';
import { seedTokens } from './helpers/seed-tokens.js';
import { openTestStorage, storageEngines } from './helpers/storage-engines.js';

// Issue 14 (Graph GET on PostgreSQL): tenant change stamps are read through one coalescer
// (storage/change-stamp.ts, coalesceReads) that keeps one read in flight, shares it among callers, and
// never answers a caller with a read sent before its call. Runs on both engines against real databases
// and the real token store's writes (each appends the tenant's event, as a PATCH does).

const tenantA = 'c0a1e5ce-0000-4000-8000-00000000000a';
const tenantB = 'c0a1e5ce-0000-4000-8000-00000000000b';
const tenantNone = 'c0a1e5ce-0000-4000-8000-0000000000ff';

/** The next turn of the event loop (its check phase), so each call below arrives in a turn of its own. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A promise the test settles when it wants: holds a read's answer back while the test acts. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

describe.each(storageEngines)('tenant change stamps coalesced on %s', (kind) => {
  let storage: StorageEngine;
  let tokens: VppTokenStore;
  let tokenA: string;
  let tokenB: string;
  let renames = 0;
  /** A committed write of `tenantId`'s token (a rename: the PATCH path); resolves after the commit. */
  const commitWrite = (tenantId: string) =>
    tokens.update(tenantId, tenantId === tenantA ? tokenA : tokenB, { displayName: `renamed ${++renames}` });
  const seqOf = async (tenantId: string) => Number(await storage.readTenantStamp(tenantId));

  beforeAll(async () => {
    storage = await openTestStorage(kind);
    tokens = createVppTokenStore({
      storage,
      cipher: createTokenCipher(Buffer.alloc(32, 5)),
      clock: () => new Date(),
    });
    const [a] = await seedTokens(tokens, { tenantId: tenantA, count: 1 });
    const [b] = await seedTokens(tokens, { tenantId: tenantB, count: 1 });
    if (!a || !b) throw new Error('no tokens seeded');
    tokenA = a.id;
    tokenB = b.id;
    await commitWrite(tenantA);
  });
  afterAll(async () => {
    await storage?.close();
  });

  it('reads several tenants at once, in the order asked, 0 for a tenant without events', async () => {
    const [a, b] = [await seqOf(tenantA), await seqOf(tenantB)];
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(0);
    expect(a).not.toBe(b);
    expect(await storage.readTenantStamps([tenantB, tenantNone, tenantA])).toEqual([b, 0, a]);
    expect(await storage.readTenantStamps([tenantA])).toEqual([a]);
  });

  it('answers concurrent callers of several tenants with each tenant’s newest seq, and moves after a write', async () => {
    const stamp = createTenantChangeStamp(storage);
    const calls: Promise<string>[] = [];
    for (let turn = 0; turn < 40; turn++) {
      calls.push(stamp(tenantA), stamp(tenantB), stamp(tenantNone));
      await nextTurn();
    }
    const answers = await Promise.all(calls);
    const expected = [String(await seqOf(tenantA)), String(await seqOf(tenantB)), '0'];
    expect(answers).toEqual(calls.map((_, i) => expected[i % 3]));
    await commitWrite(tenantB);
    expect(await stamp(tenantB)).toBe(String(await seqOf(tenantB)));
    expect(Number(await stamp(tenantB))).toBeGreaterThan(Number(expected[1]));
    // Another tenant's write leaves A's stamp alone.
    expect(await stamp(tenantA)).toBe(expected[0]);
  });

  it('gives every caller of one engine the same reader, so the process keeps one read in flight', () => {
    expect(createTenantChangeStamp(storage)).toBe(createTenantChangeStamp(storage));
  });

  it('answers a caller that arrives while a read is in flight with a read sent after it', async () => {
    const hold = gate();
    const sent: (readonly string[])[] = [];
    const stamp = coalesceReads<string, number>(async (ids) => {
      sent.push(ids);
      // The engine's real read, whose answer is held back until the test lets it go: the first read
      // has been answered by the database before the write below commits.
      const seqs = await storage.readTenantStamps(ids);
      if (sent.length === 1) await hold.opened;
      return seqs;
    });
    const before = await seqOf(tenantA);
    const first = stamp(tenantA);
    while (sent.length === 0) await nextTurn();
    await commitWrite(tenantA);
    const after = await seqOf(tenantA);
    expect(after).toBeGreaterThan(before);
    // This caller arrives after the commit, while the first read (older than the commit) is in flight.
    const second = stamp(tenantA);
    const alsoSecond = stamp(tenantA);
    await nextTurn();
    expect(sent).toHaveLength(1);
    hold.open();
    expect(await first).toBe(before);
    expect(await second).toBe(after);
    expect(await alsoSecond).toBe(after);
    expect(sent).toEqual([[tenantA], [tenantA]]);
  });

  it('rejects every caller of a failed read, then reads again for the callers that came after', async () => {
    const hold = gate();
    let reads = 0;
    const stamp = coalesceReads<string, number>(async (ids) => {
      reads += 1;
      const seqs = await storage.readTenantStamps(ids);
      if (reads === 1) {
        await hold.opened;
        throw new Error('connection lost');
      }
      return seqs;
    });
    const failing = [stamp(tenantA), stamp(tenantB), stamp(tenantA)];
    while (reads === 0) await nextTurn();
    const waiting = [stamp(tenantA), stamp(tenantB)];
    hold.open();
    for (const call of failing) await expect(call).rejects.toThrow('connection lost');
    expect(await Promise.all(waiting)).toEqual([await seqOf(tenantA), await seqOf(tenantB)]);
    expect(reads).toBe(2);
    // Not wedged: a later caller gets a read of its own.
    expect(await stamp(tenantB)).toBe(await seqOf(tenantB));
    expect(reads).toBe(3);
  });

  it('rejects the callers of a read that throws at once and of one that answers the wrong count', async () => {
    let mode: 'throw' | 'short' | 'ok' = 'throw';
    const stamp = coalesceReads<string, number>((ids) => {
      if (mode === 'throw') throw new Error('no connection');
      if (mode === 'short') return storage.readTenantStamps(ids.slice(1));
      return storage.readTenantStamps(ids);
    });
    await expect(stamp(tenantA)).rejects.toThrow('no connection');
    mode = 'short';
    const short = [stamp(tenantA), stamp(tenantB)];
    for (const call of short) await expect(call).rejects.toThrow('answered 1 values for 2 keys');
    mode = 'ok';
    expect(await stamp(tenantA)).toBe(await seqOf(tenantA));
  });

  it('serves many callers that arrive while a read is in flight with one more read', async () => {
    const hold = gate();
    const sent: (readonly string[])[] = [];
    const stamp = coalesceReads<string, number>(async (ids) => {
      sent.push(ids);
      const seqs = await storage.readTenantStamps(ids);
      if (sent.length === 1) await hold.opened;
      return seqs;
    });
    const first = stamp(tenantA);
    while (sent.length === 0) await nextTurn();
    const later: Promise<number>[] = [];
    for (let turn = 0; turn < 300; turn++) {
      later.push(stamp(turn % 2 === 0 ? tenantA : tenantB));
      await nextTurn();
    }
    hold.open();
    await first;
    const [a, b] = [await seqOf(tenantA), await seqOf(tenantB)];
    expect(await Promise.all(later)).toEqual(later.map((_, turn) => (turn % 2 === 0 ? a : b)));
    // One read for the first caller, one for the 300 that came while it was in flight (both tenants).
    expect(sent).toEqual([[tenantA], [tenantA, tenantB]]);
  });
});

describe('tenant change stamps under steady load on postgres', () => {
  let storage: StorageEngine;
  beforeAll(async () => {
    storage = await openTestStorage('postgres');
  });
  afterAll(async () => {
    await storage?.close();
  });

  it('shares each query among the calls that arrived while the one before was in flight', async () => {
    let queries = 0;
    let inFlight = 0;
    let mostInFlight = 0;
    const stamp = coalesceReads<string, number>((ids) => {
      queries += 1;
      inFlight += 1;
      mostInFlight = Math.max(mostInFlight, inFlight);
      const read = storage.readTenantStamps(ids) as Promise<readonly number[]>;
      return read.finally(() => {
        inFlight -= 1;
      });
    });
    const calls: Promise<number>[] = [];
    let waited = 0;
    // One call per turn: coalescing within a turn alone would send one query per call. Each query is
    // a round trip to the server; a call arriving meanwhile waits for the next query, which the calls
    // of every turn until then share. How many turns a round trip spans depends on the machine's load,
    // so what is asserted is the rule, not a ratio (0.34 queries per call in one loaded CI run;
    // the ratio moves with the load): one query in flight at most, calls that had to wait, fewer queries than
    // calls. The exact sharing is asserted with a held read in the tests above.
    for (let turn = 0; turn < 2000; turn++) {
      if (inFlight > 0) waited += 1;
      calls.push(stamp(tenantA));
      await nextTurn();
    }
    expect(await Promise.all(calls)).toEqual(calls.map(() => 0));
    expect(mostInFlight).toBe(1);
    expect(queries).toBeGreaterThan(0);
    expect(waited).toBeGreaterThan(0);
    expect(queries).toBeLessThan(calls.length);
  });
});
