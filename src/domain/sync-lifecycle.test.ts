import { describe, expect, it } from 'vitest';
import { type VppTokenSyncStatus, vppTokenSyncStatus } from './enums.js';
import { isVppdError } from './errors.js';
import {
  type ActionEvent,
  actionEvents,
  isNeverSynced,
  neverSynced,
  neverSyncedIso,
  nextLastSyncDateTime,
  recordActionEvent,
  type SyncEvent,
  syncEvents,
  syncLicensesAction,
  transitionActionState,
  transitionSyncStatus,
} from './sync-lifecycle.js';

// The lifecycle table of docs/architecture.md, written out as data: every (from, event) pair not
// listed must throw.
const table: Record<string, VppTokenSyncStatus> = {
  'none/syncRequested': 'inProgress',
  'completed/syncRequested': 'inProgress',
  'failed/syncRequested': 'inProgress',
  'inProgress/syncRequested': 'inProgress',
  'inProgress/snapshotCommitted': 'completed',
  'inProgress/syncFailed': 'failed',
};

describe('transitionSyncStatus', () => {
  for (const from of vppTokenSyncStatus.names) {
    for (const event of syncEvents) {
      const expected = table[`${from}/${event}`];
      if (expected) {
        it(`${from} --${event}--> ${expected}`, () => {
          expect(transitionSyncStatus(from, event).to).toBe(expected);
        });
      } else {
        it(`${from} --${event}--> throws (illegal)`, () => {
          try {
            transitionSyncStatus(from, event);
            expect.unreachable();
          } catch (error) {
            expect(isVppdError(error, 'illegalTransition')).toBe(true);
            expect((error as Error).message).toContain(`'${from}'`);
          }
        });
      }
    }
  }

  it('a request while inProgress coalesces instead of starting a second sync', () => {
    expect(transitionSyncStatus('inProgress', 'syncRequested').effect).toBe('coalesced');
    expect(transitionSyncStatus('failed', 'syncRequested').effect).toBe('started');
  });

  it('rejects an unknown status value defensively', () => {
    expect(() => transitionSyncStatus('bogus' as VppTokenSyncStatus, 'syncRequested' as SyncEvent)).toThrow(
      /no transition/,
    );
  });
});

describe('lastSyncDateTime', () => {
  it('is the 0001-01-01 sentinel before any sync', () => {
    expect(neverSynced().toISOString()).toBe(neverSyncedIso);
    expect(isNeverSynced(neverSynced())).toBe(true);
    expect(isNeverSynced(new Date())).toBe(false);
  });

  it('moves only on a committed snapshot', () => {
    const before = neverSynced();
    const at = new Date('2026-11-24T10:00:00Z');
    const started = transitionSyncStatus('none', 'syncRequested');
    expect(nextLastSyncDateTime(before, started, at)).toBe(before);
    const failed = transitionSyncStatus('inProgress', 'syncFailed');
    expect(nextLastSyncDateTime(before, failed, at)).toBe(before);
    const completed = transitionSyncStatus('inProgress', 'snapshotCommitted');
    expect(nextLastSyncDateTime(before, completed, at)).toBe(at);
  });
});

describe('tokenActionResults bookkeeping', () => {
  const t0 = new Date('2026-11-24T10:00:00Z');
  const t1 = new Date('2026-11-24T10:00:05Z');
  const t2 = new Date('2026-11-24T10:01:00Z');
  const t3 = new Date('2026-11-24T11:00:00Z');

  it('pending → active → done with start and update times', () => {
    let results = recordActionEvent([], syncLicensesAction, 'requested', t0);
    expect(results).toEqual([
      { actionName: 'syncLicenses', actionState: 'pending', startDateTime: t0, lastUpdatedDateTime: t0 },
    ]);
    results = recordActionEvent(results, syncLicensesAction, 'started', t1);
    expect(results[0]).toMatchObject({ actionState: 'active', startDateTime: t0, lastUpdatedDateTime: t1 });
    results = recordActionEvent(results, syncLicensesAction, 'succeeded', t2);
    expect(results[0]).toMatchObject({ actionState: 'done', startDateTime: t0, lastUpdatedDateTime: t2 });
  });

  it('a new run after failure restarts the start time; a repeated request coalesces', () => {
    let results = recordActionEvent([], syncLicensesAction, 'requested', t0);
    results = recordActionEvent(results, syncLicensesAction, 'started', t0);
    results = recordActionEvent(results, syncLicensesAction, 'failed', t1);
    expect(results[0]!.actionState).toBe('failed');
    results = recordActionEvent(results, syncLicensesAction, 'requested', t2);
    expect(results[0]).toMatchObject({ actionState: 'pending', startDateTime: t2 });
    const again = recordActionEvent(results, syncLicensesAction, 'requested', t3);
    expect(again).toEqual(results);
  });

  it('keeps other actions untouched and does not mutate its input', () => {
    const revoke = {
      actionName: 'revokeLicenses',
      actionState: 'done' as const,
      startDateTime: t0,
      lastUpdatedDateTime: t0,
      revoke: { actionFailureReason: 'none' as const, totalLicensesCount: 3, failedLicensesCount: 0 },
    };
    const input = [revoke];
    const results = recordActionEvent(input, syncLicensesAction, 'requested', t1);
    expect(results).toHaveLength(2);
    expect(results[0]).toBe(revoke);
    expect(input).toHaveLength(1);
  });

  it('rejects out-of-order events', () => {
    expect(() => recordActionEvent([], syncLicensesAction, 'succeeded', t0)).toThrow(/no transition/);
    const pending = recordActionEvent([], syncLicensesAction, 'requested', t0);
    expect(() => recordActionEvent(pending, syncLicensesAction, 'succeeded', t0)).toThrow(/no transition/);
  });

  it('actionState table: only listed transitions are legal', () => {
    const legal: Record<string, string> = {
      'none/requested': 'pending',
      'done/requested': 'pending',
      'failed/requested': 'pending',
      'canceled/requested': 'pending',
      'notSupported/requested': 'pending',
      'pending/requested': 'pending',
      'pending/started': 'active',
      'pending/failed': 'failed',
      'active/requested': 'active',
      'active/succeeded': 'done',
      'active/failed': 'failed',
    };
    const states = ['none', 'pending', 'canceled', 'active', 'done', 'failed', 'notSupported'] as const;
    for (const from of states) {
      for (const event of actionEvents as readonly ActionEvent[]) {
        const expected = legal[`${from}/${event}`];
        if (expected) expect(transitionActionState(from, event)).toBe(expected);
        else expect(() => transitionActionState(from, event)).toThrow(/no transition/);
      }
    }
  });
});
