import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClaimedSync } from '../src/storage/sync-job-store.js';
import { createSyncProgressStore } from '../src/storage/sync-progress-store.js';
import { createTokenExpiryStore } from '../src/storage/token-expiry-store.js';
import { createRevokeActionStore } from '../src/sync/revoke-action-store.js';
import { createTestApp, type TestApp, tenantA, tenantB } from './helpers/graph-test-app.js';
import { mintToken, roles } from './helpers/jwt.js';
import { buildSToken } from './helpers/stoken-builder.js';
import { storageEngines } from './helpers/storage-engines.js';

// Issue 14 part 3: the Graph read cache keys on the tenant's change stamp (its newest event's seq).
// Every write path is driven here, one after the other, with the token's GET and the tenant's list
// answered from kept bytes before each write. Asserted after each write: the tenant's stamp moved,
// the other tenant's did not, and the next GET answers the new state (never the kept bytes). A
// write that appended no event would fail here: its GET would still answer the bytes kept before it.

const base = '/beta/deviceAppManagement/vppTokens';

/** The parts of the answers (a token, a list, a live sync) the assertions read. */
interface WireAnswer {
  readonly value: readonly { readonly id: string }[];
  readonly lastSyncStatus: string;
  readonly state: string;
  readonly locationName: string;
  readonly expirationDateTime: string;
  readonly tokenActionResults: readonly {
    readonly actionName: string;
    readonly actionState: string;
    readonly failedLicensesCount?: number;
  }[];
  readonly pages?: number;
  readonly sync?: { readonly pages: number };
}

describe.each(storageEngines)('the tenant change stamp on %s', (kind) => {
  let t: TestApp;
  let authorization = '';
  beforeAll(async () => {
    t = await createTestApp({ engine: kind });
    authorization = t.auth.a;
  });
  afterAll(async () => {
    await t?.close();
  });

  const get = async (path: string) => {
    const response = await t.app.inject({ method: 'GET', url: path, headers: { authorization } });
    return { status: response.statusCode, body: response.body };
  };
  const send = async (method: 'POST' | 'PATCH' | 'DELETE', path: string, payload?: unknown) => {
    const response = await t.app.inject({
      method,
      url: path,
      headers: {
        authorization,
        ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
    });
    expect(response.statusCode, response.body).toBeLessThan(300);
    return response.body === '' ? undefined : (JSON.parse(response.body) as Record<string, unknown>);
  };
  const stamp = async (tenantId: string) => Number(await t.context.storage.readTenantStamp(tenantId));

  /**
   * Reads `paths` twice (the second answer comes from kept bytes), runs `write`, and checks the stamp
   * moved and each path's next answer is what `expectAfter` says.
   */
  const write = async (
    what: string,
    paths: readonly string[],
    run: () => Promise<unknown>,
    expectAfter: (answers: readonly { status: number; body: string }[], before: readonly string[]) => void,
  ) => {
    const before: string[] = [];
    for (const path of paths) {
      const first = await get(path);
      const kept = await get(path);
      expect(kept.body, `${what}: a repeated read answers the same bytes`).toBe(first.body);
      before.push(first.body);
    }
    const stampA = await stamp(tenantA);
    const stampB = await stamp(tenantB);
    await run();
    expect(await stamp(tenantA), `${what}: the tenant's stamp moves`).toBeGreaterThan(stampA);
    expect(await stamp(tenantB), `${what}: another tenant's stamp stays`).toBe(stampB);
    const answers = [];
    for (const path of paths) answers.push(await get(path));
    expectAfter(answers, before);
  };
  const json = (answer: { body: string } | undefined) => JSON.parse(answer?.body ?? '{}') as WireAnswer;

  it('moves with every write path and the cached GET answers the change', async () => {
    const { context, clock } = t;
    const now = () => clock.now();
    let id = '';
    const one = () => `${base}/${id}`;

    // Another tenant's token, so its stamp is a real one that must stay put.
    await t.app.inject({
      method: 'POST',
      url: base,
      headers: { authorization: t.auth.b, 'content-type': 'application/json' },
      // Expiring after tenant A's, so the expiry tick below changes only tenant A.
      payload: JSON.stringify({ token: buildSToken({ expDate: new Date('2040-01-01T00:00:00.000Z') }) }),
    });

    await write(
      'create',
      [base],
      async () => {
        id = (await send('POST', base, { token: buildSToken(), displayName: 'first' }))?.id as string;
      },
      ([list]) => {
        expect(json(list).value.map((v) => v.id)).toEqual([id]);
      },
    );

    await write(
      'PATCH rename',
      [one(), base],
      () => send('PATCH', one(), { displayName: 'renamed' }),
      (answers) => {
        for (const answer of answers) expect(answer.body).toContain('"displayName":"renamed"');
      },
    );

    const renewedExpiry = new Date('2031-05-01T00:00:00.000Z');
    await write(
      'renew (upload)',
      [one()],
      () => send('PATCH', one(), { token: buildSToken({ expDate: renewedExpiry }) }),
      ([after]) => {
        expect(json(after).expirationDateTime).toBe('2031-05-01T00:00:00Z');
      },
    );

    await write(
      'sync requested',
      [one()],
      () => send('POST', `${one()}/syncLicenses`),
      ([after]) => {
        expect(json(after).lastSyncStatus).toBe('inProgress');
        expect(json(after).tokenActionResults[0]?.actionState).toBe('pending');
      },
    );

    const jobs = context.sync.jobs;
    let claim: ClaimedSync | undefined;
    await write(
      'sync started',
      [one()],
      async () => {
        const result = await jobs.claimNext({
          workerId: 'stamp-worker',
          now: now(),
          leaseMs: 60_000,
          maxActive: 4,
          maxAttempts: 2,
          newRunId: randomUUID,
        });
        if (result?.kind !== 'claimed') throw new Error('nothing claimed');
        claim = result.claim;
      },
      ([after]) => {
        expect(json(after).tokenActionResults[0]?.actionState).toBe('active');
      },
    );
    if (claim === undefined) throw new Error('no claim');
    const claimed = claim;

    const progress = createSyncProgressStore({ storage: context.storage });
    await write(
      'sync progressed',
      [one(), `/vppd/v1/tokens/${id}/sync`],
      () =>
        progress.record(
          claimed.job.id,
          claimed.runId,
          { phase: 'assignments', pages: 3, records: 1500 },
          now(),
        ),
      ([graph, live], [graphBefore]) => {
        // Graph shows nothing of progress: the same answer, read again after the stamp moved.
        expect(graph?.body).toBe(graphBefore);
        expect(json(live).pages ?? json(live).sync?.pages).toBe(3);
      },
    );

    await write(
      'sync completed',
      [one()],
      () =>
        jobs.commit(
          claimed,
          {
            locationUid: 'loc-1',
            locationName: 'Main Campus',
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
          now(),
          new Date(now().getTime() + 86_400_000),
        ),
      ([after]) => {
        expect(json(after).lastSyncStatus).toBe('completed');
        expect(json(after).state).toBe('valid');
        expect(json(after).locationName).toBe('Main Campus');
      },
    );

    await send('POST', `${one()}/syncLicenses`);
    const next = await jobs.claimNext({
      workerId: 'stamp-worker',
      now: now(),
      leaseMs: 60_000,
      maxActive: 4,
      maxAttempts: 2,
      newRunId: randomUUID,
    });
    if (next?.kind !== 'claimed') throw new Error('nothing claimed');
    await write(
      'sync failed',
      [one()],
      () =>
        jobs.fail(
          next.claim,
          { kind: 'revoked', message: 'revoked by Apple', appleErrorNumber: 9625 },
          now(),
          new Date(now().getTime() + 86_400_000),
        ),
      ([after]) => {
        expect(json(after).lastSyncStatus).toBe('failed');
        expect(json(after).state).toBe('invalid');
      },
    );

    const revokes = createRevokeActionStore({ storage: context.storage });
    const counts = { actionFailureReason: 'none' as const, totalLicensesCount: 5, failedLicensesCount: 0 };
    await write(
      'revoke requested',
      [one()],
      () => revokes.transition(tenantA, id, 'requested', now(), counts),
      ([after]) => {
        const revoke = json(after).tokenActionResults.find((r) => r.actionName === 'revokeLicenses');
        expect(revoke?.actionState).toBe('pending');
      },
    );
    await write(
      'revoke started',
      [one()],
      () => revokes.transition(tenantA, id, 'started', now(), counts),
      ([after]) => {
        const revoke = json(after).tokenActionResults.find((r) => r.actionName === 'revokeLicenses');
        expect(revoke?.actionState).toBe('active');
      },
    );
    clock.advance(1000);
    await write(
      'revoke progress',
      [one()],
      () => revokes.progress(tenantA, id, now(), { ...counts, failedLicensesCount: 2 }),
      ([after]) => {
        const revoke = json(after).tokenActionResults.find((r) => r.actionName === 'revokeLicenses');
        expect(revoke?.failedLicensesCount).toBe(2);
      },
    );

    await write(
      'syncLicenseCounts',
      [one()],
      () => send('POST', `${base}/syncLicenseCounts`),
      ([after]) => {
        const countsResult = json(after).tokenActionResults.find((r) => r.actionName === 'syncLicenseCounts');
        expect(countsResult?.actionState).toBe('pending');
      },
    );

    // The expiry passing: only the scheduler's tick writes it (no clock in the read path).
    const token = await context.tokens.get(tenantA, id);
    if (!token) throw new Error('token gone');
    clock.set(new Date(token.expirationDateTime.getTime() + 1000));
    authorization = `Bearer ${await mintToken({ tenantId: tenantA, roles: [roles.readWrite], now: now() })}`;
    await write(
      'expiry tick',
      [one()],
      () => createTokenExpiryStore({ storage: context.storage }).expireDue(now(), 100),
      ([after]) => {
        expect(json(after).state).toBe('expired');
      },
    );

    await write(
      'delete',
      [one(), base],
      () => send('DELETE', one()),
      ([gone, list]) => {
        expect(gone?.status).toBe(404);
        expect(json(list).value).toEqual([]);
      },
    );
  });
});
