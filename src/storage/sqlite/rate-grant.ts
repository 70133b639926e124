import { type Kysely, sql } from 'kysely';
import type { DatabaseSchema } from '../database-schema.js';
import type { RateGrantAttempt } from '../engine.js';

/** SQLite's clock in whole milliseconds (julianday keeps them): the machine's, as every process on the file sees it. */
const clock = sql<number>`cast(round((julianday('now') - 2440587.5) * 86400000) as integer)`;

/**
 * One attempt at a grant of Apple's per-location request rate (storage/engine.ts, `tryRateGrant`): one
 * UPDATE counts the row's grants inside the window and, when there is room, rewrites them (the ones
 * still inside, plus now). SQLite runs one writer at a time and keeps `julianday('now')` fixed within a
 * statement, so the count and the grant are one step on one clock. Only a refusal reads the row.
 */
export async function trySqliteRateGrant(
  db: Kysely<DatabaseSchema>,
  key: string,
  limit: number,
  windowMs: number,
): Promise<RateGrantAttempt> {
  const taken = await sql<{ now: number }>`
    update apple_rate_windows
       set grants = (select json_group_array(t) from (
                       select value as t from json_each(apple_rate_windows.grants)
                        where value > ${clock} - ${windowMs}
                       union all select ${clock} order by 1))
     where location_key = ${key}
       and (select count(*) from json_each(apple_rate_windows.grants)
             where value > ${clock} - ${windowMs}) < ${limit}
    returning ${clock} as now`.execute(db);
  const row = taken.rows[0];
  if (row !== undefined) return { nowMs: Number(row.now), granted: true, grants: undefined };
  const found = await sql<{ now: number; grants: string | null }>`
    select ${clock} as now,
           (select grants from apple_rate_windows where location_key = ${key}) as grants`.execute(db);
  const refused = found.rows[0];
  return { nowMs: Number(refused?.now), granted: false, grants: refused?.grants ?? undefined };
}
