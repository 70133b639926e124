import type {
  ColumnDefinitionBuilder,
  CreateTableBuilder,
  Insertable,
  Kysely,
  Selectable,
  SelectQueryBuilder,
  Transaction,
} from 'kysely';
import type { ChangeNotifier } from './change-notifier.js';
import type { DatabaseSchema, EventRow, SyncJobRow } from './database-schema.js';

/** One row of `events` as appended: its `seq` is the database's. */
export type EventInsertRow = Omit<Insertable<EventRow>, 'seq'>;

/** A column type as Kysely's `addColumn` takes it (a name like `'integer'`, or raw SQL). */
export type DataTypeExpression = Parameters<CreateTableBuilder<string, string>['addColumn']>[1];

/**
 * What differs between the database engines vppd runs on, behind one small interface (the idea of
 * Kysely's own `DialectAdapter`). Each engine lives in its own folder with the same files
 * (`storage/sqlite/`, `storage/postgres/`: `engine.ts`, `dialect.ts`, `config.ts`, `change-stamp.ts`,
 * `errors.ts`, `ddl.ts`, `bulk-insert.ts`, `catalog.ts`, `exclusive-read.ts`); nothing else in vppd names an engine, imports its driver or
 * knows its error codes. Stores receive the engine they run on and call it; they never test which one it is.
 */
export interface StorageEngine {
  /** For logs and metrics only: code must not branch on it. */
  readonly kind: StorageEngineKind;
  /** The typed Kysely every store queries through. */
  readonly db: Kysely<DatabaseSchema>;
  /**
   * The Kysely for reads outside any transaction that must not wait behind this process's own writes
   * (the Graph GETs and the tenant change stamp): on a SQLite file a second connection of the thread,
   * query-only, opened on first use (a write transaction of the first connection waiting for another
   * connection's lock held up every read queued behind it); on PostgreSQL and an in-memory SQLite
   * database the same as `db` (a pool lets reads pass anyway; memory has one connection). It sees
   * the latest commit, never a transaction in flight; never run a transaction or a write on it.
   */
  readonly reads: Kysely<DatabaseSchema>;
  /** Column types and layout clauses the migrations build their tables with. */
  readonly ddl: EngineDdl;
  /**
   * A tenant's change stamp: the `seq` of its newest event (0 before any; storage/event-store.ts). Every
   * change a reader of the tenant cares about appends an event in its own transaction, and a tenant's
   * events commit in `seq` order, so the number moves after each such commit and never comes back.
   * For one-off reads; the Graph read cache and the dashboard read {@link readTenantStamps} through
   * `storage/change-stamp.ts`.
   */
  readTenantStamp(tenantId: string): number | Promise<number>;
  /**
   * {@link readTenantStamp} without `syncProgressed` events: the `seq` of the tenant's newest other
   * event, for readers that show nothing of a sync's live progress (Graph's vppTokens), so their kept
   * answers outlive the progress notes of running syncs. The same guarantees otherwise: it moves after
   * every commit of another event of the tenant and never comes back (pruning keeps the tenant's newest
   * such event too).
   */
  readTenantStampWithoutProgress(tenantId: string): number | Promise<number>;
  /**
   * The change stamps of several tenants in one read (one round trip where the engine has them), in
   * the order given. Synchronous where the engine can read synchronously (SQLite outside a transaction).
   * `storage/change-stamp.ts` keeps at most one such read in flight and shares it among callers.
   */
  readTenantStamps(tenantIds: readonly string[]): readonly number[] | Promise<readonly number[]>;
  /** {@link readTenantStamps} without `syncProgressed` events, as {@link readTenantStampWithoutProgress}. */
  readTenantStampsWithoutProgress(
    tenantIds: readonly string[],
  ): readonly number[] | Promise<readonly number[]>;
  /** Wake-ups between writers and readers, by channel (storage/change-notifier.ts). */
  readonly notifier: ChangeNotifier;
  /** True when `error` is a unique-constraint (or primary-key) violation. */
  isUniqueViolation(error: unknown): boolean;
  /** True when `error` is a foreign-key violation. */
  isForeignKeyViolation(error: unknown): boolean;
  /**
   * Makes a select inside a transaction lock the rows it reads until the transaction ends, so a
   * read-then-write transaction cannot interleave with another one on the same rows: `for update` on
   * PostgreSQL; unchanged on SQLite, whose one connection runs this process's transactions one at a time.
   */
  // biome-ignore lint/suspicious/noExplicitAny: any select of any table.
  lockForUpdate<Q extends SelectQueryBuilder<any, any, any>>(query: Q): Q;
  /**
   * Makes a select inside a transaction lock the rows of table `of` it returns and pass over rows another
   * transaction holds (`for update of … skip locked` on PostgreSQL), so several workers picking queue rows
   * at once each get different ones instead of waiting for each other; unchanged on SQLite.
   */
  // biome-ignore lint/suspicious/noExplicitAny: any select of any table.
  lockSkippingLocked<Q extends SelectQueryBuilder<any, any, any>>(query: Q, of: string): Q;
  /**
   * Serializes the sync-job claims of every process on the database until `trx` ends, so a claim's
   * count of running syncs and its taking of a lease act as one step against the global limit: a
   * transaction-scoped advisory lock on PostgreSQL (READ COMMITTED would let two claims each count the
   * other's slot as free); nothing on SQLite, where the claiming UPDATE itself holds the one write lock.
   */
  serializeClaims(trx: Transaction<DatabaseSchema>): Promise<void>;
  /**
   * Claims sync jobs where the engine can do it with the claim lock held for server time only: counts
   * the live leases, picks up to `limit` jobs in the queue's round-robin order under
   * `maxActive` (storage/sync-jobs/queue.ts `takeNext` defines it), takes their leases and moves their
   * tenants' turns, all in one round trip. Undefined when the caller must claim through its portable
   * transaction ({@link serializeClaims} and its statements) instead: always on SQLite, whose claims
   * hold the one write lock anyway and never wait on a network; on PostgreSQL only while a job whose
   * retries are used up waits to be failed as interrupted (rare; nothing is claimed then).
   */
  claimSyncJobs(request: SyncJobClaimRequest): Promise<readonly ClaimedSyncJobRow[] | undefined>;
  /**
   * One attempt at one more of Apple's requests for a location (storage/apple-rate-store.ts): takes a
   * place in the location's row of `apple_rate_windows` (its grant times, database clock) when fewer
   * than `limit` of them fall within the last `windowMs`, never more than `limit` whoever asks at once.
   * Times are the database server's clock (whole milliseconds): one clock for every process, whatever
   * their own. One statement on both engines (a grant is a round trip before each Apple request, on every replica).
   */
  tryRateGrant(key: string, limit: number, windowMs: number): Promise<RateGrantAttempt>;
  /**
   * True when processes on other machines may share the database (a server: PostgreSQL); false when
   * it is a local file only processes of this machine open (SQLite). vppd keeps Apple's request rate in
   * the database when it is true (storage/apple-rate-store.ts), in process memory otherwise.
   */
  readonly sharedAcrossHosts: boolean;
  /** A multi-row insert (or upsert) of `spec`'s table, tuned for the engine; see {@link BulkInsert}. */
  bulkInsert(spec: BulkInsertSpec): BulkInsert;
  /**
   * The last step of storage/event-store.ts `appendEvents`: upserts each tenant's `event_heads` row
   * (`tenantIds` sorted, so two appends lock heads in one order) and then inserts `rows` into `events`,
   * whose `seq` is assigned after the heads are locked. The head's row lock is held until `trx` ends:
   * PostgreSQL does both in one statement, so every other append of the tenant waits one round trip
   * less; SQLite, with its one writer, runs the two statements.
   */
  appendEventRows(
    trx: Transaction<DatabaseSchema>,
    tenantIds: readonly string[],
    createdAt: string,
    rows: readonly EventInsertRow[],
  ): Promise<void>;
  /**
   * Runs `migrate` so that several processes starting at once on one database migrate once: the
   * others wait and then find nothing left to do.
   */
  withMigrationLock<T>(migrate: () => Promise<T>): Promise<T>;
  /** True when the engine keeps a write-ahead log file of its own next to the data (SQLite's WAL). */
  readonly hasLocalWriteAheadLog: boolean;
  /**
   * Checkpoints and truncates that log to zero bytes; true when all of it was checkpointed (a reader in
   * another process may keep part of it). Engines without one answer true and do nothing.
   */
  truncateWriteAheadLog(): Promise<boolean>;
  /** Closes every connection. */
  close(): Promise<void>;
  /**
   * Every table of the database as its catalogue describes it (columns, key, foreign keys), the
   * engine's own tables left out; `vppd db copy` discovers what to copy with it. Reads through `db`
   * (default the engine's), e.g. a connection {@link readExclusively} holds.
   */
  describeTables(db?: Kysely<DatabaseSchema>): Promise<readonly StoredTable[]>;
  /**
   * Runs `read` while no other connection can write, and refuses (a conflict error) when another
   * connection has the database open at all, e.g. a running vppd: `vppd db copy`'s source. SQLite:
   * `locking_mode=EXCLUSIVE` and `BEGIN IMMEDIATE`, which needs every other connection to have closed
   * the file; PostgreSQL: no other session on the database, a repeatable-read transaction and every
   * table locked in share mode.
   */
  readExclusively<T>(read: (db: Kysely<DatabaseSchema>) => Promise<T>): Promise<T>;
  /**
   * After rows were inserted with their serial keys given (`BulkInsertSpec.explicitSerialKeys`): the
   * next key the database hands out is above every stored one. PostgreSQL moves the identity's
   * sequence; SQLite's AUTOINCREMENT already follows the largest key inserted.
   */
  resetSerialKey(trx: Transaction<DatabaseSchema>, table: string, column: string): Promise<void>;
}

/** What {@link StorageEngine.tryRateGrant} did. */
export interface RateGrantAttempt {
  /** The database's clock when it decided (whole milliseconds since the epoch). */
  readonly nowMs: number;
  /** True when the request was granted (its time is `nowMs`). */
  readonly granted: boolean;
  /**
   * The location's grants (a JSON array) as the attempt found them, undefined when it has no row yet;
   * only a refusal is sure to read them (the caller's wait comes from them).
   */
  readonly grants: string | undefined;
}

/** What {@link StorageEngine.claimSyncJobs} is asked: up to `limit` jobs for one worker. */
export interface SyncJobClaimRequest {
  readonly workerId: string;
  /** The claim's time and the new leases' end, as timestamp columns hold them. */
  readonly now: string;
  readonly leaseExpiresAt: string;
  /** Live leases allowed across every process on the database. */
  readonly maxActive: number;
  /** Claims per job: a job leased this often whose lease expired is not claimed again. */
  readonly maxAttempts: number;
  /** Most jobs to claim; at least 1. */
  readonly limit: number;
  /** An id for a new run (the engine may draw one per job it could claim before it knows how many). */
  readonly newRunId: () => string;
}

/** A job {@link StorageEngine.claimSyncJobs} leased: its row as it was before the claim, and its new run. */
export interface ClaimedSyncJobRow {
  readonly row: Selectable<SyncJobRow>;
  readonly runId: string;
}

/** A table as the database's catalogue has it ({@link StorageEngine.describeTables}). */
export interface StoredTable {
  readonly name: string;
  /** In the table's column order. `serial`: a key the database assigns ({@link EngineDdl.serialKey}). */
  readonly columns: readonly {
    readonly name: string;
    readonly type: BulkColumnType;
    readonly notNull: boolean;
    readonly serial: boolean;
  }[];
  /**
   * Columns whose values identify a row: the primary key, else the first unique key (by name) whose
   * columns are all not null; empty when there is none.
   */
  readonly key: readonly string[];
  /** Tables this one's foreign keys reference (itself included if it references itself). */
  readonly references: readonly string[];
}

/** The engines vppd runs on. */
export type StorageEngineKind = 'sqlite' | 'postgres';

/**
 * The column types of vppd's schema, the same meaning on every engine (database-schema.ts has the
 * conventions): the data and the queries are the same; only the spelling of the types differs.
 */
export interface EngineDdl {
  /**
   * Text compared and sorted byte by byte (code point order), whatever the database's locale: SQLite's
   * default BINARY collation, `text collate "C"` on PostgreSQL. Every text column uses it, so `$orderby`,
   * keyset paging, `lt`/`gt` filters and `tolower` give the same answers on both engines.
   */
  readonly text: DataTypeExpression;
  /**
   * An instant, stored as fixed-width ISO-8601 UTC text (`YYYY-MM-DDTHH:mm:ss.sssZ`) in byte order, so
   * text order is time order and a stored value reads back exactly as written on every engine.
   */
  readonly timestamp: DataTypeExpression;
  /** A boolean as the integer 0 or 1 on every engine (the stores and the OData compiler compare with 0/1). */
  readonly boolean: DataTypeExpression;
  /** Raw bytes (`blob`, `bytea`); no column uses it yet. */
  readonly blob: DataTypeExpression;
  /** A 64-bit integer (Apple's license counts summed per app). */
  readonly bigint: DataTypeExpression;
  /** A surrogate integer key the database assigns and never hands out twice. */
  readonly serialKey: {
    readonly type: DataTypeExpression;
    readonly build: (column: ColumnDefinitionBuilder) => ColumnDefinitionBuilder;
  };
  /**
   * Stores the table in its primary-key B-tree where the engine has a choice (SQLite's `WITHOUT
   * ROWID`); unchanged elsewhere.
   */
  clusteredByPrimaryKey<T extends string, C extends string>(
    table: CreateTableBuilder<T, C>,
  ): CreateTableBuilder<T, C>;
}

/** The type of a bulk-inserted column's values (PostgreSQL needs it to pass a column as one array). */
export type BulkColumnType = 'text' | 'integer' | 'bigint' | 'blob';

/** A multi-row insert: a table, its columns in parameter order, what to do with a duplicate key. */
export interface BulkInsertSpec {
  readonly table: keyof DatabaseSchema & string;
  readonly columns: readonly { readonly name: string; readonly type: BulkColumnType }[];
  /**
   * On a duplicate of `key`, overwrite `update` with the new row's values (an upsert). A key repeated
   * within one call keeps its last row.
   */
  readonly onConflict?: { readonly key: readonly string[]; readonly update: readonly string[] };
  /** Most rows per statement (the engine may use fewer). */
  readonly maxRows: number;
  /**
   * The rows give the values of serial-key columns themselves (a copy of another database): PostgreSQL
   * then needs `overriding system value` for its `generated always` identity. Call
   * {@link StorageEngine.resetSerialKey} after.
   */
  readonly explicitSerialKeys?: boolean;
  /**
   * The rows are staging that only counts once a later transaction commits durably (license chunks
   * before the snapshot swap): the engine may commit the inserting transaction without waiting for the
   * disk. PostgreSQL: `synchronous_commit = off` for that transaction — its WAL is written in order, so
   * the swap's synchronous commit flushes these rows too; a crash before it loses only a run that
   * never completed and is synced again. SQLite: nothing (its commits do not flush with
   * synchronous=NORMAL anyway).
   */
  readonly staging?: boolean;
}

/**
 * Inserts rows given as one flat array, `columns.length` values per row in column order (no object per
 * row: a sync stages ~2,000 chunk rows and ~1,000 assets). Runs as many statements as needed on `db`:
 * inside the transaction when it is one, else as a transaction of its own (all rows or none; on
 * PostgreSQL a COPY is one statement, so it then needs no begin and commit round trips).
 */
export type BulkInsert = (db: Kysely<DatabaseSchema>, values: readonly unknown[]) => Promise<void>;
