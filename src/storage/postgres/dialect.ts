import { PostgresDialect } from 'kysely';
import pg from 'pg';
import { enableAtCommit } from './at-commit.js';
import { type PostgresDatabaseConfig, postgresTlsOptions } from './config.js';
import { enableCopyFrom } from './copy-from.js';

/** OIDs of the types whose driver default (text) vppd reads as numbers instead. */
const int8Oid = 20;
const numericOid = 1700;

/**
 * int8 (`bigint` columns, `count(*)`, identity keys) and numeric (`sum()` of bigints) as JavaScript
 * numbers, as SQLite answers them: the stores then build the same domain objects on both engines.
 * vppd's values stay far below 2^53 (license counts summed per token, row counts).
 */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === int8Oid || oid === numericOid) return (value: string) => Number(value);
    return format === 'binary' ? pg.types.getTypeParser(oid, 'binary') : pg.types.getTypeParser(oid, 'text');
  }) as typeof pg.types.getTypeParser,
};

/** Kysely's PostgreSQL dialect and the `pg` pool under it. */
export interface PostgresConnection {
  readonly dialect: PostgresDialect;
  readonly pool: pg.Pool;
  /** A connection of its own, outside the pool, with the same settings (end it when done). */
  connect(): Promise<pg.Client>;
}

/** A `pg` pool of `poolSize` connections with the URL's TLS settings, wrapped in Kysely's dialect. */
export function createPostgresDialect(config: PostgresDatabaseConfig): PostgresConnection {
  const { connection } = config;
  const settings: pg.ClientConfig = {
    host: connection.host,
    port: connection.port,
    ...(connection.user === undefined ? {} : { user: connection.user }),
    ...(connection.password === undefined ? {} : { password: connection.password }),
    ...(connection.database === undefined ? {} : { database: connection.database }),
    ssl: postgresTlsOptions(config),
    application_name: connection.applicationName,
    types,
  };
  const pool = new pg.Pool({ ...settings, max: config.poolSize });
  // An idle connection that breaks (server restart, network) is dropped from the pool; the next
  // query opens a new one. Without a listener the error would end the process.
  pool.on('error', () => {});
  // License staging's COPY runs on the client of its query or transaction (copy-from.ts).
  pool.on('connect', enableCopyFrom);
  // Event appends and their notifications travel with the COMMIT (at-commit.ts); wraps the above.
  pool.on('connect', enableAtCommit);
  return {
    dialect: new PostgresDialect({ pool }),
    pool,
    async connect() {
      const client = new pg.Client(settings);
      client.on('error', () => {});
      await client.connect();
      return client;
    },
  };
}
