import type { Kysely, Migration } from 'kysely';

/**
 * Licenses per asset of a snapshot from the index alone (issue 16): a delta sync sums `holder_count`
 * per asset of its run to find the assets whose chunks do not hold their row's `assigned_count`
 * (snapshot-reads.ts). Without this index the sum reads every chunk row of the run, ~2 KB each (2,100
 * rows for 200,000 licenses); with it, the index's small entries.
 */
export const chunkHeldIndex: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createIndex('license_assignment_chunks_held_idx')
      .on('license_assignment_chunks')
      .columns(['run_key', 'adam_id', 'pricing_param', 'holder_count'])
      .execute();
  },
};
