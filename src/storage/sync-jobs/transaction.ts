import type { Transaction } from 'kysely';
import { vppTokenSyncStatus } from '../../domain/enums.js';
import type { DatabaseSchema } from '../database-schema.js';
import type { StorageEngine } from '../engine.js';
import type { VppdDatabase } from '../open-database.js';

/** A transaction on vppd's database, as the sync-job operations pass it to each other. */
export type Trx = Transaction<DatabaseSchema>;

/** What every family of sync-job operations is built from. */
export interface SyncJobStoreOptions {
  readonly db: VppdDatabase;
  /** The engine `db` runs on (its error classification). */
  readonly storage: StorageEngine;
  readonly newId: () => string;
}

/** The stored value of the `inProgress` sync status. */
export const inProgress = vppTokenSyncStatus.toValue('inProgress');
