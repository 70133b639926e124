import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AssignmentChunk,
  AssignmentChunker,
  CorruptChunkError,
  type DecodedAssignment,
  decodeChunk,
} from './assignment-chunks.js';
import type { LicenseAssignmentInput } from './license-store.js';

// A listing as Apple may send it: assets in any order, runs of one asset or interleaved, devices and
// users (any string, non-ASCII and empty included), positions with gaps (a restart numbers from a
// later seq; a test may stage pages out of order... never: seqs only grow).
const listing = fc
  .array(
    fc.record({
      asset: fc.integer({ min: 0, max: 6 }),
      run: fc.integer({ min: 1, max: 40 }),
      device: fc.boolean(),
      holder: fc.string({ unit: 'binary', maxLength: 12 }),
      gap: fc.integer({ min: 1, max: 3 }),
    }),
    { maxLength: 60 },
  )
  .map((runs) => {
    const out: { seq: number; assignment: LicenseAssignmentInput }[] = [];
    let seq = 0;
    for (const r of runs) {
      for (let i = 0; i < r.run; i++) {
        const base = { adamId: `${400 + (r.asset >> 1)}`, pricingParam: r.asset % 2 === 0 ? 'STDQ' : 'PLUS' };
        const holder = `${r.holder}${i}`;
        out.push({
          seq,
          assignment: r.device ? { ...base, serialNumber: holder } : { ...base, clientUserId: holder },
        });
        seq += i === r.run - 1 ? r.gap : 1;
      }
    }
    return out;
  });

function chunk(
  input: readonly { seq: number; assignment: LicenseAssignmentInput }[],
  options: { chunkSize: number; maxOpen: number; batch: number; escapeFree?: boolean },
): AssignmentChunk[] {
  const chunker = new AssignmentChunker(options);
  const out: AssignmentChunk[] = [];
  for (const { seq, assignment } of input) {
    // Told escape-free only where it is true (as a page without a backslash tells it).
    const holder = assignment.serialNumber ?? assignment.clientUserId ?? '';
    chunker.add(assignment, seq, options.escapeFree === true && JSON.stringify(holder) === `"${holder}"`);
    // Taken in batches, as the writer does: idle chunks closed first.
    if (chunker.readyCount >= options.batch) {
      chunker.closeIdle();
      out.push(...chunker.takeReady());
    }
  }
  chunker.closeAll();
  out.push(...chunker.takeReady());
  return out;
}

const asDecoded = (seq: number, a: LicenseAssignmentInput): DecodedAssignment => ({
  seq,
  serialNumber: a.serialNumber ?? null,
  clientUserId: a.clientUserId ?? null,
});

describe('assignment chunks', () => {
  it('give back every license once, per asset in seq order, in chunks that never overlap', () => {
    fc.assert(
      fc.property(
        listing,
        fc.integer({ min: 1, max: 130 }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 80 }),
        (input, chunkSize, maxOpen, batch) => {
          const chunks = chunk(input, { chunkSize, maxOpen, batch });
          // Holders known to be escape-free are joined, not stringified: the same text.
          expect(chunk(input, { chunkSize, maxOpen, batch, escapeFree: true })).toEqual(chunks);
          const byAsset = new Map<string, AssignmentChunk[]>();
          for (const c of chunks) {
            expect(c.holderCount).toBeGreaterThan(0);
            expect(c.holderCount).toBeLessThanOrEqual(chunkSize);
            const decoded = decodeChunk(c);
            expect(decoded.length).toBe(c.holderCount);
            expect(decoded[0]?.seq).toBe(c.firstSeq);
            expect(decoded[decoded.length - 1]?.seq).toBe(c.lastSeq);
            const key = `${c.adamId}|${c.pricingParam}`;
            byAsset.set(key, [...(byAsset.get(key) ?? []), c]);
          }
          // An asset's chunks by first_seq are its licenses in Apple's order (what paging relies on).
          for (const [key, list] of byAsset) {
            const ordered = [...list].sort((a, b) => a.firstSeq - b.firstSeq);
            for (let i = 1; i < ordered.length; i++) {
              expect(ordered[i]?.firstSeq).toBeGreaterThan(ordered[i - 1]?.lastSeq as number);
            }
            const expected = input
              .filter(({ assignment: a }) => `${a.adamId}|${a.pricingParam}` === key)
              .map(({ seq, assignment }) => asDecoded(seq, assignment));
            expect(ordered.flatMap((c) => decodeChunk(c))).toEqual(expected);
          }
          expect(chunks.reduce((n, c) => n + c.holderCount, 0)).toBe(input.length);
        },
      ),
    );
  });

  it('full chunks are written as they fill; open ones only past the limit or at the end', () => {
    const chunker = new AssignmentChunker({ chunkSize: 4, maxOpen: 10 });
    const a = { adamId: '1', pricingParam: 'STDQ' };
    const b = { adamId: '2', pricingParam: 'STDQ' };
    for (let seq = 0; seq < 4; seq++) chunker.add({ ...a, serialNumber: `A${seq}` }, seq);
    expect(chunker.readyCount).toBe(4);
    expect(chunker.takeReady()).toEqual([
      {
        adamId: '1',
        pricingParam: 'STDQ',
        firstSeq: 0,
        lastSeq: 3,
        holderCount: 4,
        seqs: '[0,4,0]',
        holders: '["A0","A1","A2","A3"]',
      },
    ]);
    // Interleaved, chunks of 8: nothing fills, so nothing is ready until more than 10 are open.
    const interleaved = new AssignmentChunker({ chunkSize: 8, maxOpen: 10 });
    for (let seq = 0; seq < 10; seq++) {
      interleaved.add(
        seq % 2 === 0 ? { ...a, clientUserId: `u${seq}` } : { ...b, serialNumber: `B${seq}` },
        seq,
      );
    }
    expect(interleaved.readyCount).toBe(0);
    interleaved.add({ ...a, clientUserId: 'u10' }, 10);
    expect(interleaved.takeReady().map((c) => [c.adamId, c.holderCount, c.seqs])).toEqual([
      ['1', 6, '[0,1,1,2,1,1,4,1,1,6,1,1,8,1,1,10,1,1]'],
      ['2', 5, '[1,1,0,3,1,0,5,1,0,7,1,0,9,1,0]'],
    ]);
    interleaved.add({ ...b, serialNumber: 'B11' }, 11);
    expect(interleaved.readyCount).toBe(0);
    interleaved.closeAll();
    expect(interleaved.takeReady().map((c) => [c.adamId, c.firstSeq, c.lastSeq, c.holders])).toEqual([
      ['2', 11, 11, '["B11"]'],
    ]);
  });

  it('closes a partial chunk at the next round once its asset was left for a whole round', () => {
    const chunker = new AssignmentChunker({ chunkSize: 8, maxOpen: 100 });
    const asset = (id: string) => ({ adamId: id, pricingParam: 'STDQ' });
    const add = (id: string, seq: number) => chunker.add({ ...asset(id), serialNumber: `${id}-${seq}` }, seq);
    add('1', 0);
    add('1', 1);
    add('2', 2);
    // Both were added to in this round: nothing closes.
    chunker.closeIdle();
    expect(chunker.readyCount).toBe(0);
    add('2', 3);
    // '1' had nothing in the round just ended; '2' (the asset being listed) stays open.
    chunker.closeIdle();
    expect(chunker.takeReady().map((c) => [c.adamId, c.firstSeq, c.lastSeq])).toEqual([['1', 0, 1]]);
    // An asset that comes back starts a chunk after its closed one.
    add('1', 4);
    add('2', 5);
    chunker.closeIdle();
    expect(chunker.readyCount).toBe(0);
    add('2', 6);
    chunker.closeIdle();
    expect(chunker.takeReady().map((c) => [c.adamId, c.firstSeq, c.lastSeq])).toEqual([['1', 4, 4]]);
    chunker.closeAll();
    expect(chunker.takeReady().map((c) => [c.adamId, c.firstSeq, c.lastSeq, c.holderCount])).toEqual([
      ['2', 2, 6, 4],
    ]);
  });

  it('refuses text it did not write', () => {
    const bad = [
      { seqs: 'not json', holders: '[]' },
      { seqs: '[1,1]', holders: '["a"]' },
      { seqs: '{}', holders: '["a"]' },
      { seqs: '[0,2,0]', holders: '["a"]' },
      { seqs: '[0,1,0]', holders: '["a","b"]' },
      { seqs: '[0,1,2]', holders: '["a"]' },
      { seqs: '[0,1,0]', holders: '[5]' },
      { seqs: '[0,0,0]', holders: '[]' },
      { seqs: '[0.5,1,0]', holders: '["a"]' },
    ];
    for (const chunk of bad) expect(() => decodeChunk(chunk), chunk.seqs).toThrow(CorruptChunkError);
    expect(decodeChunk({ seqs: '[7,1,0,8,1,1]', holders: '["a",""]' })).toEqual([
      { seq: 7, serialNumber: 'a', clientUserId: null },
      { seq: 8, serialNumber: null, clientUserId: '' },
    ]);
  });
});
