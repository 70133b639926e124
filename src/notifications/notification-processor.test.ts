import { describe, expect, it } from 'vitest';
import type { EventBatch } from '../storage/apple-notification-store.js';
import { assetManagementOf, assetManagementVerdict } from './notification-processor.js';

const batch = (holders: number, kind = 'associate'): EventBatch => ({
  operationId: 'op',
  batchIndex: 0,
  kind,
  holderKind: 'serialNumber',
  assets: [{ adamId: '1', pricingParam: 'STDQ' }],
  holders: Array.from({ length: holders }, (_, i) => `S${i}`),
  requestedCount: holders,
});

describe('ASSET_MANAGEMENT verdict', () => {
  it('reads Apple’s body and refuses what it does not document', () => {
    expect(assetManagementOf({ eventId: 'e', type: 'ASSOCIATE', result: 'SUCCESS' })).toMatchObject({
      eventId: 'e',
      assignments: undefined,
    });
    expect(assetManagementOf({ eventId: 'e', type: 'ASSIGN', result: 'SUCCESS' })).toBeUndefined();
    expect(assetManagementOf({ eventId: '', type: 'ASSOCIATE', result: 'SUCCESS' })).toBeUndefined();
    expect(assetManagementOf({ eventId: 'e', type: 'REVOKE', result: 'MAYBE' })).toBeUndefined();
    expect(
      assetManagementOf({ eventId: 'e', type: 'REVOKE', result: 'FAILURE', assignments: [3] }),
    ).toBeUndefined();
  });

  it('ends the batch done on SUCCESS, and failed item by item on FAILURE', () => {
    const success = assetManagementOf({ eventId: 'e', type: 'ASSOCIATE', result: 'SUCCESS' })!;
    expect(assetManagementVerdict(success, batch(3))).toEqual({
      kind: 'outcome',
      outcome: { completed: 3, failures: [] },
    });
    const all = assetManagementOf({
      eventId: 'e',
      type: 'ASSOCIATE',
      result: 'FAILURE',
      error: { errorNumber: 9616, errorMessage: 'Not enough licenses' },
    })!;
    const verdict = assetManagementVerdict(all, batch(2));
    expect(verdict).toMatchObject({ kind: 'outcome', outcome: { completed: 0 } });
    if (verdict.kind !== 'outcome') throw new Error('no outcome');
    expect(verdict.outcome.failures.map((f) => [f.serialNumber, f.errorNumber])).toEqual([
      ['S0', 9616],
      ['S1', 9616],
    ]);
    const some = assetManagementOf({
      eventId: 'e',
      type: 'ASSOCIATE',
      result: 'FAILURE',
      error: { errorNumber: '9616' },
      assignments: [{ adamId: 1, pricingParam: 'STDQ', serialNumber: 'S1', errorNumber: 9641 }],
    })!;
    expect(assetManagementVerdict(some, batch(3))).toMatchObject({
      kind: 'outcome',
      outcome: { completed: 2, failures: [{ adamId: '1', serialNumber: 'S1', errorNumber: 9641 }] },
    });
  });

  it('polls instead when a list may be one part of several, and ignores another kind of event', () => {
    const part = assetManagementOf({
      eventId: 'e',
      type: 'DISASSOCIATE',
      result: 'FAILURE',
      assignments: Array.from({ length: 100 }, (_, i) => ({ serialNumber: `S${i}` })),
    })!;
    expect(assetManagementVerdict(part, batch(300, 'disassociate'))).toMatchObject({ kind: 'pollNow' });
    expect(assetManagementVerdict(part, batch(100, 'disassociate'))).toMatchObject({
      kind: 'outcome',
      outcome: { completed: 0 },
    });
    expect(assetManagementVerdict(part, batch(100, 'associate'))).toMatchObject({ kind: 'ignore' });
  });
});
