import type { Kysely, Migration } from 'kysely';

/**
 * A token's newest event (issue 18): `max(seq) where tenant_id = ? and token_id = ?` is one seek at the
 * end of the token's range. Every change to what a vppToken shows appends an event naming the token in
 * the change's transaction, so that seq is the token's version: Graph's list keeps each token's
 * serialized form under it and re-reads only the tokens whose version moved (graph/token-fragments.ts).
 */
export const tokenEventIndex: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createIndex('events_tenant_token_seq_idx')
      .on('events')
      .columns(['tenant_id', 'token_id', 'seq'])
      .execute();
  },
};
