import type { Transaction } from 'kysely';
import type { DatabaseSchema } from './database-schema.js';

/**
 * Receives what was sent on a channel. An empty payload means "something may have changed": sent when
 * notifications may have been missed (the listening connection was lost and is back).
 */
export type ChangeListener = (payload: string) => void;

/**
 * Wake-ups between the writers and the readers of the database (listen/notify by channel). Only ever
 * a shortcut: a reader also polls, and what it reads (a cursor, a stamp) is the truth, so a lost or
 * duplicated notification delays or repeats a read, never loses or changes one. Each engine has its
 * own (`storage/<engine>/change-notifier.ts`): PostgreSQL's `LISTEN/NOTIFY` reaches every process on
 * the database; SQLite's reaches this process only.
 */
export interface ChangeNotifier {
  /**
   * Sends `payload` on `channel` as part of `trx`: PostgreSQL delivers it to every listener on the
   * database when the transaction commits (never when it rolls back); SQLite to this process's
   * listeners at once (their reads wait for the transaction to end, as every read of its one connection does).
   */
  notify(trx: Transaction<DatabaseSchema>, channel: string, payload: string): Promise<void>;
  /** Calls `listener` for each notification on `channel` until the returned function is called. */
  listen(channel: string, listener: ChangeListener): () => void;
  /**
   * Resolves once what is sent from now on reaches this process's listeners (PostgreSQL: the LISTEN
   * connection is up, or its attempt to connect has ended). Nothing needs to wait for it but a test.
   */
  listening(): Promise<void>;
  /** Stops listening and closes what listening opened. */
  close(): Promise<void>;
}

/** Listeners by channel, for the engines' notifiers. */
export class ChangeListeners {
  readonly #byChannel = new Map<string, Set<ChangeListener>>();

  /** Adds a listener; answers the function removing it. */
  add(channel: string, listener: ChangeListener): () => void {
    let set = this.#byChannel.get(channel);
    if (set === undefined) {
      set = new Set();
      this.#byChannel.set(channel, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#byChannel.get(channel) === set) this.#byChannel.delete(channel);
    };
  }

  /** Channels with at least one listener. */
  channels(): string[] {
    return [...this.#byChannel.keys()];
  }

  /** Calls every listener of `channel`; one that throws does not stop the others. */
  dispatch(channel: string, payload: string): void {
    const set = this.#byChannel.get(channel);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        listener(payload);
      } catch {
        // A listener's failure is its own business: the others still hear the news.
      }
    }
  }

  /** Calls every listener of every channel with the empty payload ("something may have changed"). */
  dispatchAll(): void {
    for (const channel of this.channels()) this.dispatch(channel, '');
  }

  clear(): void {
    this.#byChannel.clear();
  }
}
