import { sql } from 'kysely';
import { dateToColumn } from '../vpp-token-columns.js';
import type { SyncJobStoreOptions } from './transaction.js';

/** Which runs a prune keeps besides the recent ones. */
export interface PruneRunsOptions {
  /** Runs that started before this may go. */
  readonly before: Date;
  /** Newest runs of the token kept whatever their age (default 50). */
  readonly keepPerToken?: number;
  /** Rows deleted per statement (one short transaction; default 500). */
  readonly limit?: number;
}

/** Bounded sync history (issue 18): `sync_runs` otherwise grows by every attempt of every token. */
export interface SyncHistoryRetention {
  /** Up to `limit` token ids after `after` (id order), to walk every token in pages. */
  tokenIdsAfter(after: string | null, limit: number): Promise<string[]>;
  /**
   * Deletes up to `limit` runs of a token in one statement: runs that started before `before`, are
   * not among its newest `keepPerToken`, are not its last completed run nor its last failed or
   * interrupted one, are finished with their license rows already cleared, and are referenced by
   * neither its current snapshot nor a live job. Returns how many went.
   */
  pruneRunsOf(tokenId: string, options: PruneRunsOptions): Promise<number>;
}

export function createSyncHistoryRetention({ db }: SyncJobStoreOptions): SyncHistoryRetention {
  return {
    async tokenIdsAfter(after, limit) {
      let query = db.selectFrom('vpp_tokens').select('id').orderBy('id').limit(limit);
      if (after !== null) query = query.where('id', '>', after);
      return (await query.execute()).map((r) => r.id);
    },

    async pruneRunsOf(tokenId, options) {
      const keep = Math.max(0, options.keepPerToken ?? 50);
      const limit = Math.max(1, options.limit ?? 500);
      const before = dateToColumn(options.before);
      // One statement: the window ranks only this token's runs (index sync_runs(token_id, started_at)).
      const result = await sql`
        delete from sync_runs where id in (
          select x.id from (
            select r.id, r.started_at, r.outcome, r.staging_cleared,
              row_number() over (order by r.started_at desc, r.attempt desc) as newest,
              row_number() over (
                partition by case r.outcome when 'completed' then 'ok' when 'running' then 'run' else 'bad' end
                order by r.started_at desc, r.attempt desc
              ) as newest_of_outcome
            from sync_runs r
            where r.token_id = ${tokenId}
          ) x
          where x.newest > ${keep}
            and x.newest_of_outcome > 1
            and x.started_at < ${before}
            and x.outcome <> 'running'
            and x.staging_cleared = 1
            and not exists (select 1 from license_snapshots s where s.run_id = x.id)
            and not exists (select 1 from sync_jobs j where j.run_id = x.id)
          limit ${limit}
        )`.execute(db);
      return Number(result.numAffectedRows ?? 0);
    },
  };
}
