import { type Kysely, sql } from 'kysely';
import type { DatabaseSchema } from '../database-schema.js';
import type { RateGrantAttempt } from '../engine.js';

/**
 * One attempt at a grant of Apple's per-location request rate in one statement (storage/engine.ts,
 * `tryRateGrant`). The UPDATE's condition counts the row's grants inside the window and its SET rewrites
 * them (the ones still inside, plus now); both read the row version the UPDATE locks, and under READ
 * COMMITTED a concurrent grant that commits first makes PostgreSQL re-check the condition on the new
 * version, so two processes never both take the last free place. The row as the statement found it
 * comes back too, for the caller's wait when there was no room.
 */
export async function tryPostgresRateGrant(
  db: Kysely<DatabaseSchema>,
  key: string,
  limit: number,
  windowMs: number,
): Promise<RateGrantAttempt> {
  const { rows } = await sql<{ now: string; granted: string; grants: string | null }>`
    with clock as (
      select (floor(extract(epoch from clock_timestamp()) * 1000))::int8 as t
    ), found as (
      select w.grants from apple_rate_windows w where w.location_key = ${key}
    ), taken as (
      update apple_rate_windows w
         set grants = (
           select coalesce(json_agg(g.t order by g.t), '[]'::json)::text
             from (select e::int8 as t from json_array_elements_text(w.grants::json) as e
                    where e::int8 > (select t from clock) - ${windowMs}
                   union all
                   select t from clock) as g)
       where w.location_key = ${key}
         and (select count(*) from json_array_elements_text(w.grants::json) as e
               where e::int8 > (select t from clock) - ${windowMs}) < ${limit}
      returning 1
    )
    select (select t from clock) as now, (select count(*) from taken) as granted,
           (select grants from found) as grants`.execute(db);
  const row = rows[0];
  if (row === undefined) throw new Error('the rate grant statement returned no row');
  return { nowMs: Number(row.now), granted: Number(row.granted) === 1, grants: row.grants ?? undefined };
}
