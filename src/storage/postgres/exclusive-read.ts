import { type Kysely, sql } from 'kysely';
import { errors } from '../../domain/errors.js';
import type { DatabaseSchema } from '../database-schema.js';

/**
 * Runs `read` in a repeatable-read transaction (one snapshot for every table) after refusing when
 * another session is connected to the database (a running vppd) and taking every table in share mode,
 * which lets readers in and keeps writers out until the transaction ends.
 */
export async function readPostgresExclusively<T>(
  db: Kysely<DatabaseSchema>,
  read: (db: Kysely<DatabaseSchema>) => Promise<T>,
): Promise<T> {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      const { rows } = await sql<{ sessions: number }>`
        select count(*)::int as sessions from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'`.execute(
        trx,
      );
      if ((rows[0]?.sessions ?? 0) > 0) {
        throw errors.conflict(
          'the source database has other sessions connected (a running vppd?): stop them first',
        );
      }
      const { rows: tables } = await sql<{ name: string }>`
        select quote_ident(c.relname) as name from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relkind in ('r', 'p')`.execute(trx);
      if (tables.length > 0) {
        await sql`lock table ${sql.raw(tables.map((t) => t.name).join(', '))} in share mode nowait`.execute(
          trx,
        );
      }
      return read(trx);
    });
}
