import { Kysely, sql } from 'kysely';
import type { DatabaseSchema } from '../database-schema.js';
import type { StorageEngine } from '../engine.js';
import { postgresBulkInsert } from './bulk-insert.js';
import { describePostgresTables, resetPostgresSerialKey } from './catalog.js';
import { createPostgresNotifier } from './change-notifier.js';
import { createPostgresTenantStampReaders } from './change-stamp.js';
import type { PostgresDatabaseConfig } from './config.js';
import { postgresDdl } from './ddl.js';
import { createPostgresDialect } from './dialect.js';
import { isPostgresForeignKeyViolation, isPostgresUniqueViolation } from './errors.js';
import { appendPostgresEventRows } from './event-append.js';
import { readPostgresExclusively } from './exclusive-read.js';
import { claimPostgresSyncJobs } from './job-claim.js';
import { tryPostgresRateGrant } from './rate-grant.js';

/**
 * The key of the session-level advisory lock vppd's migrations run under (any fixed 64-bit number
 * unique to vppd: the first 8 bytes of sha256("vppd migrations"), as a signed int8).
 */
export const migrationLockKey = '-1636603964838872890';

/**
 * The key of the transaction-scoped advisory lock sync-job claims take (`serializeClaims`): the first
 * 8 bytes of sha256("vppd sync claims"), as a signed int8.
 */
export const claimLockKey = '2881462824469879980';

/** vppd's storage on PostgreSQL: a `pg` pool (`VPPD_DATABASE_POOL` connections) under Kysely. */
export function createPostgresEngine(config: PostgresDatabaseConfig): StorageEngine {
  const { dialect, pool, connect } = createPostgresDialect(config);
  const db = new Kysely<DatabaseSchema>({ dialect });
  const notifier = createPostgresNotifier({ connect });
  const tenantStamps = createPostgresTenantStampReaders(pool);
  const graphStamps = createPostgresTenantStampReaders(pool, { withoutProgress: true });
  return {
    kind: 'postgres',
    db,
    // The pool: a read takes a free connection instead of queueing behind a waiting write.
    reads: db,
    ddl: postgresDdl,
    readTenantStamp: tenantStamps.one,
    readTenantStamps: tenantStamps.many,
    readTenantStampWithoutProgress: graphStamps.one,
    readTenantStampsWithoutProgress: graphStamps.many,
    notifier,
    isUniqueViolation: isPostgresUniqueViolation,
    isForeignKeyViolation: isPostgresForeignKeyViolation,
    lockForUpdate: (query) => query.forUpdate() as typeof query,
    lockSkippingLocked: (query, of) => query.forUpdate(of).skipLocked() as typeof query,
    async serializeClaims(trx) {
      await sql`select pg_advisory_xact_lock(${sql.raw(claimLockKey)})`.execute(trx);
    },
    claimSyncJobs: (request) => claimPostgresSyncJobs(pool, claimLockKey, request),
    tryRateGrant: (key, limit, windowMs) => tryPostgresRateGrant(db, key, limit, windowMs),
    sharedAcrossHosts: true,
    bulkInsert: (spec) => postgresBulkInsert(spec),
    appendEventRows: appendPostgresEventRows,
    async withMigrationLock(migrate) {
      // A session lock held on a connection of its own (outside the pool, which may have one
      // connection) for the whole run. Kysely's migrator takes one too, but only after creating its
      // bookkeeping tables, which two processes could race on. Every process starting at once waits
      // here; the first migrates, the others then find nothing left to do. The lock goes with the
      // connection if this process dies.
      const client = await connect();
      try {
        await client.query(`select pg_advisory_lock(${migrationLockKey})`);
        return await migrate();
      } finally {
        await client.end();
      }
    },
    // The server's WAL is its own business (checkpoints, archiving): nothing for vppd to truncate.
    hasLocalWriteAheadLog: false,
    truncateWriteAheadLog: async () => true,
    async close() {
      await notifier.close();
      await db.destroy();
    },
    describeTables: (on = db) => describePostgresTables(on as unknown as Kysely<unknown>),
    readExclusively: (read) => readPostgresExclusively(db, read),
    resetSerialKey: resetPostgresSerialKey,
  };
}
