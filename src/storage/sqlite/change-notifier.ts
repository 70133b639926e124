import { ChangeListeners, type ChangeNotifier } from '../change-notifier.js';

/**
 * SQLite's wake-ups: in-process only. Another process on the same file is not told; its readers find
 * the change on their next poll. A notification is dispatched on the next turn of the event loop,
 * possibly before the transaction that sent it commits: a listener's reads go through the one
 * connection and so wait for that transaction to end (and a rollback only costs a read).
 */
export function createSqliteNotifier(): ChangeNotifier {
  const listeners = new ChangeListeners();
  let closed = false;
  return {
    async notify(_trx, channel, payload) {
      if (closed) return;
      setImmediate(() => listeners.dispatch(channel, payload));
    },
    listen: (channel, listener) => listeners.add(channel, listener),
    listening: async () => undefined,
    async close() {
      closed = true;
      listeners.clear();
    },
  };
}
