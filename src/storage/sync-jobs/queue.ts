import { type ExpressionBuilder, type Selectable, sql } from 'kysely';
import { vppTokenSyncStatus } from '../../domain/enums.js';
import { errors } from '../../domain/errors.js';
import type { SyncFailure } from '../../domain/sync-failure.js';
import { syncLicenseCountsAction, transitionSyncStatus } from '../../domain/sync-lifecycle.js';
import { type SyncJobKind, type SyncTrigger, syncJobKinds, syncTriggers } from '../../domain/sync-trigger.js';
import { answerNotNeeded } from '../answer-not-needed.js';
import type { DatabaseSchema, SyncJobRow } from '../database-schema.js';
import type { StorageEngine } from '../engine.js';
import { appendEvent, appendEvents, type NewEvent } from '../event-store.js';
import { dateFromColumn, dateToColumn } from '../vpp-token-columns.js';
import { closeRun, failureColumns } from './run-history.js';
import { applyActionEvent, failToken } from './run-outcome.js';
import type { ClaimedSync, SyncJob } from './sync-job-types.js';
import type { SyncJobStoreOptions, Trx } from './transaction.js';

export type { ClaimedSync, SyncJob } from './sync-job-types.js';

/** What {@link SyncQueue.requestSync} did. */
export type SyncRequestResult =
  | { readonly effect: 'started'; readonly jobId: string }
  | { readonly effect: 'coalesced' }
  | { readonly effect: 'notFound' };

/** Options of {@link SyncQueue.claimNext}. */
export interface ClaimOptions {
  readonly workerId: string;
  readonly now: Date;
  readonly leaseMs: number;
  /** Syncs allowed to hold a live lease at once, across every process on this database. */
  readonly maxActive: number;
  /** Claims per job: 2 = the first run plus one retry after an interruption. */
  readonly maxAttempts: number;
  readonly newRunId: () => string;
}

/** What a claim found: a job to run, or a job whose retries were used up and was failed as interrupted. */
export type ClaimResult =
  | { readonly kind: 'claimed'; readonly claim: ClaimedSync }
  | { readonly kind: 'interrupted'; readonly job: SyncJob; readonly runId: string | null };

/** The queue of sync jobs and the leases workers hold on them. */
export interface SyncQueue {
  /**
   * Moves a token to `inProgress` and records a job, or coalesces with the sync already in flight.
   * `kind` is `licenses` (a full sync, the default) or `delta`. A full sync requested while a delta is
   * queued or running turns that job into a full one (a running delta then reads everything before it
   * commits, see the worker): a delta never stands in for a full sync someone asked for.
   */
  requestSync(
    tenantId: string,
    tokenId: string,
    trigger: SyncTrigger,
    now: Date,
    kind?: 'licenses' | 'delta',
  ): Promise<SyncRequestResult>;
  /** True while the job is still the kind it was claimed as (a full request may have turned a delta full). */
  stillKind(claim: ClaimedSync, kind: SyncJobKind): Promise<boolean>;
  /**
   * Records a license-count refresh of a token (Graph's syncLicenseCounts) as a job of kind
   * `licenseCounts`, its action result `pending`; coalesces with any job of the token already pending
   * or running (a full sync refreshes the counts too). The token's sync status is not touched.
   */
  requestLicenseCounts(tenantId: string, tokenId: string, now: Date): Promise<SyncRequestResult>;
  /**
   * Ends a claimed `licenseCounts` job: its action result `done` or `failed`, the job row deleted.
   * False when the lease was lost (a sync replaced the job, or the token was deleted).
   */
  finishLicenseCounts(claim: ClaimedSync, succeeded: boolean, now: Date): Promise<boolean>;
  /**
   * Claims the next runnable job, round-robin by tenant: the oldest waiting job of the tenant whose
   * last claim is the oldest (a tenant never served first), so a tenant with many queued syncs does
   * not hold back the others' first ones. Or fails a job whose lease expired too often.
   */
  claimNext(options: ClaimOptions): Promise<ClaimResult | undefined>;
  /**
   * Claims up to `limit` jobs in one transaction (a worker with that many free slots), in the order
   * {@link claimNext} would claim them one by one: round-robin by tenant, oldest first within a tenant,
   * never more live leases than `maxActive`. Or fails one job whose lease expired too often (then that
   * is the only result). Empty when nothing is runnable or every slot is taken.
   */
  claimMany(options: ClaimOptions, limit: number): Promise<ClaimResult[]>;
  /** Extends the lease; false when the worker lost it (taken over, or the token was deleted). */
  heartbeat(claim: ClaimedSync, now: Date, leaseMs: number): Promise<boolean>;
  /** Gives a job back without counting the attempt (graceful shutdown); its run is marked interrupted. */
  release(claim: ClaimedSync, now: Date): Promise<void>;
  /** The job of a token, if one is pending or running. */
  jobOf(tenantId: string, tokenId: string): Promise<SyncJob | undefined>;
}

export function createSyncQueue({ db, storage, newId }: SyncJobStoreOptions): SyncQueue {
  const claimMany: SyncQueue['claimMany'] = async (options, limit) => {
    const nowText = dateToColumn(options.now);
    const wanted = Math.max(1, Math.floor(limit));
    // The engine's claim in one round trip where it has one (PostgreSQL, unless a job whose retries are
    // used up waits to be failed); else the portable transaction below, the same claim step by step.
    const quick = await storage.claimSyncJobs({
      workerId: options.workerId,
      now: nowText,
      leaseExpiresAt: leaseEnd(options),
      maxActive: options.maxActive,
      maxAttempts: options.maxAttempts,
      limit: wanted,
      newRunId: options.newRunId,
    });
    const result =
      quick !== undefined
        ? quick.map(({ row, runId }) => leaseTaken(row, runId, options))
        : await db
            .transaction()
            .execute(async (trx): Promise<LeaseTaken[] | Extract<ClaimResult, { kind: 'interrupted' }>> => {
              // Every claim of every process on the database, one at a time until this transaction ends:
              // the count of live leases below and the leases taken with it then act as one step (on
              // PostgreSQL an advisory lock; SQLite's claiming UPDATE holds its one write lock anyway).
              await storage.serializeClaims(trx);
              const exhausted = await takeExhausted(storage, trx, options, nowText);
              if (exhausted !== undefined) return exhausted;
              return takeNext(storage, trx, options, nowText, wanted);
            });
    if (!Array.isArray(result)) return [result];
    if (result.length === 0) return [];
    // The leases are held: the runs' history rows and the actions' `active` state are written after
    // the claim lock is released, so claims of other workers do not wait for them. A worker dying in
    // between leaves a lease without its history row; the takeover records the retry as usual.
    // Their events are appended once, last: appending takes the tenant's event head (event-store.ts),
    // which every other writer of the tenant's events, on every replica, waits for until this commits.
    await db.transaction().execute(async (trx) => {
      const events: NewEvent[] = [];
      for (const taken of result)
        events.push(...(await recordClaimStart(trx, taken.claim, taken.previousRunId, options, nowText)));
      await appendEvents(trx, storage, options.now, events);
    });
    return result.map((taken) => ({ kind: 'claimed', claim: taken.claim }) as const);
  };

  return {
    async requestSync(tenantId, tokenId, trigger, now, kind = 'licenses') {
      // Compare-and-swap: compute the transition from the status read, apply it only if the status is
      // still that one. Losing the race means someone else started the sync: read again, coalesce.
      for (let round = 0; round < 5; round++) {
        const token = await db
          .selectFrom('vpp_tokens')
          .select(['last_sync_status'])
          .where('tenant_id', '=', tenantId)
          .where('id', '=', tokenId)
          .executeTakeFirst();
        if (!token) return { effect: 'notFound' };
        const from = vppTokenSyncStatus.fromValue(token.last_sync_status);
        const transition = transitionSyncStatus(from, 'syncRequested');
        if (transition.effect === 'coalesced') {
          if (kind === 'licenses') {
            await db
              .updateTable('sync_jobs')
              .set({ kind: 'licenses' })
              .where('tenant_id', '=', tenantId)
              .where('token_id', '=', tokenId)
              .where('kind', '=', 'delta')
              .execute();
          }
          return { effect: 'coalesced' };
        }
        const jobId = newId();
        const won = await db.transaction().execute(async (trx) => {
          const updated = await trx
            .updateTable('vpp_tokens')
            .set({ last_sync_status: vppTokenSyncStatus.toValue(transition.to) })
            .where('tenant_id', '=', tenantId)
            .where('id', '=', tokenId)
            .where('last_sync_status', '=', token.last_sync_status)
            .executeTakeFirst();
          if (Number(updated.numUpdatedRows) !== 1) return false;
          // A job row can only exist while the token is inProgress; one left over is stale.
          await trx.deleteFrom('sync_jobs').where('token_id', '=', tokenId).execute();
          await trx
            .insertInto('sync_jobs')
            .values({
              id: jobId,
              tenant_id: tenantId,
              token_id: tokenId,
              trigger,
              kind,
              requested_at: dateToColumn(now),
              attempts: 0,
              lease_owner: null,
              lease_expires_at: null,
              heartbeat_at: null,
              run_id: null,
            })
            .execute();
          await applyActionEvent(trx, tenantId, tokenId, 'requested', now);
          await appendEvent(trx, storage, now, {
            tenantId,
            tokenId,
            type: 'syncRequested',
            payload: { kind, jobId, trigger },
          });
          return true;
        });
        if (won) return { effect: 'started', jobId };
      }
      throw errors.conflict('The sync status of this token keeps changing; try again.');
    },

    async requestLicenseCounts(tenantId, tokenId, now) {
      const jobId = newId();
      return db.transaction().execute(async (trx) => {
        const token = await trx
          .selectFrom('vpp_tokens')
          .select('id')
          .where('tenant_id', '=', tenantId)
          .where('id', '=', tokenId)
          .executeTakeFirst();
        if (!token) return { effect: 'notFound' } as const;
        await applyActionEvent(trx, tenantId, tokenId, 'requested', now, syncLicenseCountsAction);
        // One job per token (a unique constraint): any job of the token already covers the counts.
        const inserted = await trx
          .insertInto('sync_jobs')
          .values({
            id: jobId,
            tenant_id: tenantId,
            token_id: tokenId,
            trigger: 'api',
            kind: 'licenseCounts',
            requested_at: dateToColumn(now),
            attempts: 0,
            lease_owner: null,
            lease_expires_at: null,
            heartbeat_at: null,
            run_id: null,
          })
          .onConflict((oc) => oc.column('token_id').doNothing())
          .executeTakeFirst();
        const started = Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1;
        // Coalesced too: the action result went (back) to pending.
        await appendEvent(trx, storage, now, {
          tenantId,
          tokenId,
          type: 'syncRequested',
          payload: { kind: 'licenseCounts', jobId: started ? jobId : null, trigger: 'api' },
        });
        return started ? ({ effect: 'started', jobId } as const) : ({ effect: 'coalesced' } as const);
      });
    },

    async finishLicenseCounts(claim, succeeded, now) {
      const { tenantId, tokenId } = claim.job;
      return db.transaction().execute(async (trx) => {
        const deleted = await trx
          .deleteFrom('sync_jobs')
          .where('id', '=', claim.job.id)
          .where('lease_owner', '=', claim.workerId)
          .where('run_id', '=', claim.runId)
          .executeTakeFirst();
        if (Number(deleted.numDeletedRows) !== 1) return false;
        await applyActionEvent(
          trx,
          tenantId,
          tokenId,
          succeeded ? 'succeeded' : 'failed',
          now,
          syncLicenseCountsAction,
        );
        await appendEvent(trx, storage, now, {
          tenantId,
          tokenId,
          type: succeeded ? 'syncCompleted' : 'syncFailed',
          payload: { kind: 'licenseCounts', jobId: claim.job.id },
        });
        return true;
      });
    },

    async claimNext(options) {
      return (await claimMany(options, 1))[0];
    },

    claimMany,

    async heartbeat(claim, now, leaseMs) {
      const result = await db
        .updateTable('sync_jobs')
        .set({
          heartbeat_at: dateToColumn(now),
          lease_expires_at: dateToColumn(new Date(now.getTime() + leaseMs)),
        })
        .where('id', '=', claim.job.id)
        .where('lease_owner', '=', claim.workerId)
        .where('run_id', '=', claim.runId)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async release(claim, now) {
      await db.transaction().execute(async (trx) => {
        const released = await trx
          .updateTable('sync_jobs')
          .set((eb) => ({
            lease_owner: null,
            lease_expires_at: null,
            run_id: null,
            attempts: eb('attempts', '-', 1),
          }))
          .where('id', '=', claim.job.id)
          .where('lease_owner', '=', claim.workerId)
          .where('run_id', '=', claim.runId)
          .executeTakeFirst();
        if (Number(released.numUpdatedRows) !== 1) return;
        await closeRun(trx, claim.runId, {
          outcome: 'interrupted',
          finished_at: dateToColumn(now),
          ...failureColumns({
            kind: 'interrupted',
            message: 'vppd was stopped during this sync; it runs again when a worker starts.',
          }),
        });
        await appendEvent(trx, storage, now, {
          tenantId: claim.job.tenantId,
          tokenId: claim.job.tokenId,
          type: 'syncInterrupted',
          payload: { runId: claim.runId },
        });
      });
    },

    async stillKind(claim, kind) {
      const row = await db
        .selectFrom('sync_jobs')
        .select('kind')
        .where('id', '=', claim.job.id)
        .where('run_id', '=', claim.runId)
        .executeTakeFirst();
      return row?.kind === kind;
    },

    async jobOf(tenantId, tokenId) {
      const row = await db
        .selectFrom('sync_jobs')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('token_id', '=', tokenId)
        .executeTakeFirst();
      return row ? jobFromRow(row) : undefined;
    },
  };
}

/** The failure of a sync whose worker died on every attempt. */
export function interruptedFailure(attempts: number): SyncFailure {
  return {
    kind: 'interrupted',
    message: `The sync was interrupted: the worker running it stopped before it finished (${attempts} attempt${attempts === 1 ? '' : 's'}, the last one a retry). Request a new sync; if it keeps happening, check that vppd is not being killed during syncs.`,
  };
}

function jobFromRow(row: Selectable<SyncJobRow>): SyncJob {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    tokenId: row.token_id,
    trigger: (syncTriggers as readonly string[]).includes(row.trigger) ? (row.trigger as SyncTrigger) : 'api',
    kind: (syncJobKinds as readonly string[]).includes(row.kind) ? (row.kind as SyncJobKind) : 'licenses',
    requestedAt: dateFromColumn(row.requested_at),
    attempts: row.attempts,
    leaseOwner: row.lease_owner,
    leaseExpiresAt: row.lease_expires_at === null ? null : dateFromColumn(row.lease_expires_at),
    runId: row.run_id,
  };
}

/**
 * Fails, as interrupted, one job whose lease expired after its last allowed attempt (its worker died on
 * the first run and on the retry), instead of running it a third time. The job is taken by a
 * conditional UPDATE first, so two claimers never both fail it.
 */
async function takeExhausted(
  storage: StorageEngine,
  trx: Trx,
  options: ClaimOptions,
  nowText: string,
): Promise<Extract<ClaimResult, { kind: 'interrupted' }> | undefined> {
  const pick = trx
    .selectFrom('sync_jobs as x')
    .select('x.id')
    .where('x.lease_owner', 'is not', null)
    .where('x.lease_expires_at', '<=', nowText)
    .where('x.attempts', '>=', options.maxAttempts)
    .orderBy('x.requested_at')
    .orderBy('x.id')
    .limit(1);
  const taken = await trx
    .updateTable('sync_jobs')
    .set({ lease_owner: options.workerId, lease_expires_at: nowText })
    .where('id', '=', (eb) => eb.selectFrom(storage.lockSkippingLocked(pick, 'x').as('p')).select('p.id'))
    .returningAll()
    .executeTakeFirst();
  if (taken === undefined) return undefined;
  const job = jobFromRow(taken);
  const failure = interruptedFailure(taken.attempts);
  let stateEvents: NewEvent[] = [];
  if (job.kind === 'licenseCounts') {
    await applyActionEvent(
      trx,
      taken.tenant_id,
      taken.token_id,
      'failed',
      options.now,
      syncLicenseCountsAction,
    );
  } else {
    if (taken.run_id !== null) {
      await closeRun(trx, taken.run_id, {
        outcome: 'interrupted',
        finished_at: nowText,
        ...failureColumns(failure),
      });
    }
    stateEvents = await failToken(trx, taken.tenant_id, taken.token_id, failure, options.now);
  }
  await trx.deleteFrom('sync_jobs').where('id', '=', taken.id).execute();
  await appendEvents(trx, storage, options.now, [
    {
      tenantId: taken.tenant_id,
      tokenId: taken.token_id,
      type: 'syncFailed',
      payload: { kind: job.kind, jobId: taken.id, runId: taken.run_id, interrupted: true },
    },
    ...stateEvents,
  ]);
  return { kind: 'interrupted', job, runId: job.kind === 'licenseCounts' ? null : taken.run_id };
}

/**
 * Claims up to `limit` jobs round-robin by tenant: rank each tenant's waiting jobs oldest first, then
 * take them by rank, and within a rank the tenant served longest ago (never served: first) first —
 * the order claims of one job each would take them in. The pick locks its rows and passes over rows
 * other transactions hold (`for update skip locked`). Leases are taken only for the slots left under
 * `maxActive`: the live leases are counted first, and the claiming UPDATE checks the count again. Under
 * {@link StorageEngine.serializeClaims} no other claim runs between the count and the leases, on any
 * process: on PostgreSQL each statement of this READ COMMITTED transaction, run after the lock was
 * granted, sees every lease a claim before it committed.
 */
async function takeNext(
  storage: StorageEngine,
  trx: Trx,
  options: ClaimOptions,
  nowText: string,
  limit: number,
): Promise<LeaseTaken[]> {
  const liveLeases = (eb: ExpressionBuilder<DatabaseSchema, 'sync_jobs'>) =>
    eb
      .selectFrom('sync_jobs as a')
      .select((e) => e.fn.countAll<number>().as('n'))
      .where('a.lease_expires_at', '>', nowText);
  const live = await trx.selectNoFrom((eb) => liveLeases(eb).as('n')).executeTakeFirstOrThrow();
  const room = Math.min(limit, options.maxActive - Number(live.n));
  // Every slot is taken: nothing to claim until a running sync ends.
  if (room <= 0) return [];
  const claimable = (alias: 'j' | 'c') =>
    sql<boolean>`(${sql.ref(`${alias}.lease_expires_at`)} is null or ${sql.ref(`${alias}.lease_expires_at`)} <= ${nowText}) and (${sql.ref(`${alias}.lease_owner`)} is null or ${sql.ref(`${alias}.attempts`)} < ${options.maxAttempts})`;
  const pick = trx
    .with('waiting', (qb) =>
      qb
        .selectFrom('sync_jobs as j')
        .select(['j.id'])
        .select(
          sql<number>`row_number() over (partition by j.tenant_id order by j.requested_at, j.id)`.as(
            'tenant_rank',
          ),
        )
        .where(claimable('j')),
    )
    .selectFrom('sync_jobs as c')
    .innerJoin('waiting as w', 'w.id', 'c.id')
    .leftJoin('sync_tenant_turns as t', 't.tenant_id', 'c.tenant_id')
    .selectAll('c')
    // Checked again on the row as locked: a claim that committed meanwhile has changed it.
    .where(claimable('c'))
    .orderBy('w.tenant_rank')
    .orderBy(sql`coalesce(t.last_turn, 0)`)
    .orderBy('c.requested_at')
    .orderBy('c.id')
    .limit(room);
  const candidates = await storage.lockSkippingLocked(pick, 'c').execute();
  if (candidates.length === 0) return [];
  const runIds = candidates.map(() => options.newRunId());
  const taken = await trx
    .updateTable('sync_jobs')
    .set((eb) => ({
      lease_owner: options.workerId,
      lease_expires_at: leaseEnd(options),
      heartbeat_at: nowText,
      attempts: eb('attempts', '+', 1),
      run_id: sql<string>`case ${sql.ref('id')} ${sql.join(
        candidates.map((c, i) => sql`when ${c.id} then ${runIds[i]}`),
        sql` `,
      )} end`,
    }))
    .where(
      'id',
      'in',
      candidates.map((c) => c.id),
    )
    .where((eb) => eb(liveLeases(eb), '<=', options.maxActive - candidates.length))
    .executeTakeFirst();
  // The slots filled meanwhile (a claimer that does not serialize, e.g. SQLite's other connection
  // between this transaction's read and its write): nothing is claimed.
  if (Number(taken.numUpdatedRows) !== candidates.length) {
    if (Number(taken.numUpdatedRows) === 0) return [];
    throw new Error('sync claim: the locked jobs changed under the claim');
  }
  // The tenants served, in the order served (a tenant claimed twice counts at its later claim): each
  // gets the next turn, so the tenant served last waits longest for its next one.
  const lastIndex = new Map<string, number>();
  candidates.forEach((c, i) => {
    lastIndex.set(c.tenant_id, i);
  });
  const served = [...lastIndex.entries()].sort((a, b) => a[1] - b[1]).map(([tenantId]) => tenantId);
  await trx
    .insertInto('sync_tenant_turns')
    .values(
      served.map((tenantId, i) => ({
        tenant_id: tenantId,
        last_turn: sql<number>`(select coalesce(max(last_turn), 0) + ${i + 1} from sync_tenant_turns)`,
      })),
    )
    .onConflict((oc) =>
      oc.column('tenant_id').doUpdateSet((eb) => ({ last_turn: eb.ref('excluded.last_turn') })),
    )
    .execute();
  return candidates.map((candidate, i) => leaseTaken(candidate, runIds[i] as string, options));
}

/** When a lease taken now ends. */
function leaseEnd(options: ClaimOptions): string {
  return dateToColumn(new Date(options.now.getTime() + options.leaseMs));
}

/** The claim of a job leased to run `runId`, from its row as it was before the claim. */
function leaseTaken(candidate: Selectable<SyncJobRow>, runId: string, options: ClaimOptions): LeaseTaken {
  const job = jobFromRow(candidate);
  return {
    kind: 'leased',
    previousRunId: candidate.run_id,
    claim: {
      job: { ...job, attempts: candidate.attempts + 1, leaseOwner: options.workerId, runId },
      runId,
      attempt: candidate.attempts + 1,
      workerId: options.workerId,
    },
  };
}

/** A lease just taken by {@link takeNext}, with the run of the attempt before (if one was interrupted). */
interface LeaseTaken {
  readonly kind: 'leased';
  readonly claim: ClaimedSync;
  readonly previousRunId: string | null;
}

/**
 * What a claim records besides the lease: the interrupted previous run closed, the new run in the
 * history, the action `active`. A count refresh has no history row and leaves the sync status alone.
 */
async function recordClaimStart(
  trx: Trx,
  claim: ClaimedSync,
  previousRunId: string | null,
  options: ClaimOptions,
  nowText: string,
): Promise<NewEvent[]> {
  const { job, runId } = claim;
  const candidate = {
    tenant_id: job.tenantId,
    token_id: job.tokenId,
    id: job.id,
    trigger: job.trigger,
    attempts: claim.attempt - 1,
    run_id: previousRunId,
  };
  if (job.kind === 'licenseCounts') {
    // A count refresh has no history row and leaves the token's sync status alone.
    await applyActionEvent(
      trx,
      candidate.tenant_id,
      candidate.token_id,
      'started',
      options.now,
      syncLicenseCountsAction,
    );
    return [
      {
        tenantId: candidate.tenant_id,
        tokenId: candidate.token_id,
        type: 'syncStarted',
        payload: { kind: 'licenseCounts', jobId: candidate.id },
      },
    ];
  }
  if (candidate.run_id !== null) {
    await closeRun(trx, candidate.run_id, {
      outcome: 'interrupted',
      finished_at: nowText,
      ...failureColumns({
        kind: 'interrupted',
        message: 'The worker running this sync stopped before it finished; the sync was retried.',
      }),
    });
  }
  await trx
    .insertInto('sync_runs')
    .values({
      id: runId,
      tenant_id: candidate.tenant_id,
      token_id: candidate.token_id,
      job_id: candidate.id,
      trigger: candidate.trigger,
      kind: job.kind === 'delta' ? 'delta' : 'licenses',
      attempt: candidate.attempts + 1,
      worker_id: options.workerId,
      started_at: nowText,
      finished_at: null,
      outcome: 'running',
      failure_kind: null,
      failure_reason: null,
      error_message: null,
      apple_error_number: null,
      http_status: null,
      location_uid: null,
      version_id: null,
      asset_count: null,
      assignment_count: null,
      page_count: null,
      staging_cleared: 0,
    })
    .modifyEnd(answerNotNeeded)
    .execute();
  await applyActionEvent(trx, candidate.tenant_id, candidate.token_id, 'started', options.now);
  const started: NewEvent = {
    tenantId: candidate.tenant_id,
    tokenId: candidate.token_id,
    type: 'syncStarted',
    payload: { kind: job.kind, jobId: candidate.id, runId, attempt: candidate.attempts + 1 },
  };
  return candidate.run_id === null
    ? [started]
    : [{ ...started, type: 'syncInterrupted', payload: { runId: candidate.run_id } }, started];
}
