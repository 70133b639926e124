import { sql } from 'kysely';

/** The comment {@link answerNotNeeded} ends a statement with (engines recognise it by this text). */
export const answerNotNeededComment = '/* vppd answer not needed */';

/**
 * Marks a write inside a transaction whose answer the transaction never reads (`.modifyEnd(answerNotNeeded)`):
 * no returned rows, no count checked, no error expected and handled at that statement. An engine may
 * then send it later in the same transaction, together with the next statement or the COMMIT, so it
 * costs no round trip of its own (PostgreSQL: postgres/at-commit.ts); the order of statements never
 * changes, and if it fails, the statement it travels with or the COMMIT fails and the transaction rolls
 * back. SQLite runs it at once (the comment is only a comment). Outside a transaction it runs at once.
 */
export const answerNotNeeded = sql.raw(answerNotNeededComment);
