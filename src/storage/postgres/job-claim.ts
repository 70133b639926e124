import type { Selectable } from 'kysely';
import type pg from 'pg';
import type { SyncJobRow } from '../database-schema.js';
import type { ClaimedSyncJobRow, SyncJobClaimRequest } from '../engine.js';
import { lastResult, literal } from './at-commit.js';

/**
 * `StorageEngine.claimSyncJobs` on PostgreSQL: the claim in one simple Query of three statements, which
 * the server runs as one implicit transaction (no BEGIN or COMMIT of its own):
 *
 * 1. `set transaction isolation level read committed`: whatever the server's default, each statement
 *    below takes its own snapshot;
 * 2. the cluster-wide claim lock (`pg_advisory_xact_lock`, the key `serializeClaims` takes), held until
 *    the implicit transaction commits right after statement 3;
 * 3. the claim itself, one statement of data-modifying `with` clauses. Its snapshot is taken after the
 *    lock was granted, so it sees every claim that committed before: the count of live leases and the
 *    leases taken with it act as one step, as in the portable transaction.
 *
 * The portable claim (storage/sync-jobs/queue.ts: begin, lock, `takeExhausted`, count, pick, update,
 * turns upsert, commit) held the lock across six client round trips; on a loaded 2-core machine each
 * costs milliseconds (event loops of three workers, the server's backends, Apple's simulator), and three
 * worker replicas spent 8.5-29 ms per sync waiting for the lock. Here the lock is held for server time
 * only: its answer goes back to the process with the commit already done.
 *
 * The claim statement is the portable one's SQL put together: the same `claimable` condition, the same
 * order (each tenant's jobs ranked oldest first, then by rank, the tenant served longest ago, request
 * time, id), `for update of c skip locked`, the limit `least(limit, maxActive - live leases)`, the
 * leases, and each served tenant's next turn in the order served. When a job whose retries are used up
 * is waiting to be failed (a lease expired at `maxAttempts`), it claims nothing and answers so: the
 * caller then claims through the portable transaction, which fails that job first.
 *
 * Values are literals (a simple Query takes no parameters): `literal()` of at-commit.ts.
 */
export async function claimPostgresSyncJobs(
  pool: pg.Pool,
  lockKey: string,
  request: SyncJobClaimRequest,
): Promise<readonly ClaimedSyncJobRow[] | undefined> {
  // One id per job it may claim, in claim order: how many it claims is known only on the server.
  const runIds = Array.from({ length: Math.max(1, request.limit) }, () => request.newRunId());
  const now = literal(request.now);
  const maxAttempts = literal(request.maxAttempts);
  const claimable = (alias: string) =>
    `(${alias}.lease_expires_at is null or ${alias}.lease_expires_at <= ${now}) and (${alias}.lease_owner is null or ${alias}.attempts < ${maxAttempts})`;
  const claim = `with live as (
      select count(*) as n from sync_jobs where lease_expires_at > ${now}
    ), exhausted as (
      select exists (
        select 1 from sync_jobs
        where lease_owner is not null and lease_expires_at <= ${now} and attempts >= ${maxAttempts}
      ) as found
    ), waiting as (
      select j.id, row_number() over (partition by j.tenant_id order by j.requested_at, j.id) as tenant_rank
      from sync_jobs j
      where ${claimable('j')}
    ), pick as (
      select c.*, w.tenant_rank, coalesce(t.last_turn, 0) as turn
      from sync_jobs c
      join waiting w on w.id = c.id
      left join sync_tenant_turns t on t.tenant_id = c.tenant_id
      where ${claimable('c')} and not (select found from exhausted)
      order by w.tenant_rank, coalesce(t.last_turn, 0), c.requested_at, c.id
      limit greatest(0, least(${literal(runIds.length)}, ${literal(request.maxActive)} - (select n from live)))
      for update of c skip locked
    ), numbered as (
      select p.*, row_number() over (order by p.tenant_rank, p.turn, p.requested_at, p.id) as claim_order
      from pick p
    ), taken as (
      update sync_jobs s
      set lease_owner = ${literal(request.workerId)},
        lease_expires_at = ${literal(request.leaseExpiresAt)},
        heartbeat_at = ${now},
        attempts = s.attempts + 1,
        run_id = r.run_id
      from numbered n
      join unnest(${literal(runIds)}) with ordinality as r(run_id, claim_order)
        on r.claim_order = n.claim_order
      where s.id = n.id
      returning n.*, r.run_id as new_run_id
    ), turns as (
      insert into sync_tenant_turns (tenant_id, last_turn)
      select served.tenant_id,
        (select coalesce(max(last_turn), 0) from sync_tenant_turns) + row_number() over (order by served.last_claim)
      from (select tenant_id, max(claim_order) as last_claim from taken group by tenant_id) served
      on conflict (tenant_id) do update set last_turn = excluded.last_turn
    )
    select (select found from exhausted) as exhausted, taken.*
    from (values (0)) as one(x)
    left join taken on true
    order by taken.claim_order`;
  const text = `set transaction isolation level read committed;
    select pg_advisory_xact_lock(${lockKey});
    ${claim}`;
  const rows = lastResult((await pool.query(text)) as unknown as pg.QueryResult[]).rows as ClaimAnswerRow[];
  if (rows[0]?.exhausted === true) return undefined;
  const claimed: ClaimedSyncJobRow[] = [];
  for (const answer of rows) {
    if (answer.id === null) continue;
    const {
      exhausted: _exhausted,
      tenant_rank: _rank,
      turn: _turn,
      claim_order: _order,
      new_run_id,
      ...row
    } = answer;
    claimed.push({ row: row as Selectable<SyncJobRow>, runId: new_run_id as string });
  }
  return claimed;
}

/** A row of the claim's answer: the job as it was before, what ordered it, its new run (nulls: none). */
type ClaimAnswerRow = { [K in keyof Selectable<SyncJobRow>]: Selectable<SyncJobRow>[K] | null } & {
  readonly exhausted: boolean;
  readonly tenant_rank: number | null;
  readonly turn: number | null;
  readonly claim_order: number | null;
  readonly new_run_id: string | null;
};
