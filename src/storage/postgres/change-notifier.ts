import { CompiledQuery } from 'kysely';
import type pg from 'pg';
import { ChangeListeners, type ChangeNotifier } from '../change-notifier.js';
import { type AtCommit, atCommitMarker, literal } from './at-commit.js';

export interface PostgresNotifierOptions {
  /** Opens a connection outside the pool with the pool's settings (postgres/dialect.ts). */
  readonly connect: () => Promise<pg.Client>;
  /** Wait before connecting again after the listening connection broke (ms; default 1 s). */
  readonly reconnectMs?: number;
}

/**
 * PostgreSQL's wake-ups: `pg_notify` inside the writing transaction (the server delivers it when the
 * transaction commits, to every session listening on the channel, in commit order) and one dedicated
 * `LISTEN` connection per process, opened when the first listener arrives. When that connection
 * breaks, it is opened again after `reconnectMs`, and every listener is then told "something may have
 * changed" (the empty payload), since notifications sent meanwhile are lost.
 */
export function createPostgresNotifier(options: PostgresNotifierOptions): ChangeNotifier {
  const listeners = new ChangeListeners();
  const reconnectMs = options.reconnectMs ?? 1000;
  let client: pg.Client | undefined;
  let connecting: Promise<void> | undefined;
  let retry: NodeJS.Timeout | undefined;
  let pendingListen: Promise<void> | undefined;
  const listening = new Set<string>();
  let closed = false;

  const listenOn = async (connection: pg.Client, channel: string) => {
    await connection.query(`listen ${connection.escapeIdentifier(channel)}`);
    listening.add(channel);
  };

  const lost = (connection: pg.Client) => {
    if (client !== connection) return;
    client = undefined;
    listening.clear();
    connection.end().catch(() => undefined);
    scheduleConnect();
  };

  const scheduleConnect = () => {
    if (closed || retry !== undefined || listeners.channels().length === 0) return;
    retry = setTimeout(() => {
      retry = undefined;
      void ensureConnected(true);
    }, reconnectMs);
    retry.unref();
  };

  const ensureConnected = (reconnected: boolean): Promise<void> => {
    if (closed || client !== undefined) return Promise.resolve();
    connecting ??= (async () => {
      let connection: pg.Client | undefined;
      try {
        connection = await options.connect();
        const opened = connection;
        opened.on('notification', (message) => listeners.dispatch(message.channel, message.payload ?? ''));
        opened.on('error', () => lost(opened));
        opened.on('end', () => lost(opened));
        if (closed) {
          await opened.end();
          return;
        }
        client = opened;
        for (const channel of listeners.channels()) await listenOn(opened, channel);
        // What was sent while no connection listened is lost: every listener reads again.
        if (reconnected) listeners.dispatchAll();
      } catch {
        if (connection !== undefined && client === connection) lost(connection);
        else {
          connection?.end().catch(() => undefined);
          scheduleConnect();
        }
      } finally {
        connecting = undefined;
      }
    })();
    return connecting;
  };

  return {
    async notify(trx, channel, payload) {
      // With the commit, where the server delivers it anyway (at-commit.ts): no round trip of its own.
      const statement: AtCommit = {
        text: `select pg_notify(${literal(channel)}, ${literal(payload)})`,
        command: 'SELECT',
        rowCount: 1,
      };
      await trx.executeQuery(CompiledQuery.raw(atCommitMarker, [statement]));
    },
    listen(channel, listener) {
      const remove = listeners.add(channel, listener);
      if (!closed) {
        if (client === undefined) void ensureConnected(false);
        else if (!listening.has(channel)) {
          const connection = client;
          pendingListen = listenOn(connection, channel).catch(() => lost(connection));
        }
      }
      return remove;
    },
    async listening() {
      await connecting;
      await pendingListen;
    },
    async close() {
      closed = true;
      if (retry !== undefined) clearTimeout(retry);
      retry = undefined;
      listeners.clear();
      await connecting;
      const connection = client;
      client = undefined;
      await connection?.end().catch(() => undefined);
    },
  };
}
