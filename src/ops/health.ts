import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { VppdDatabase } from '../storage/open-database.js';

/** Whether the process should take traffic: false until listening, and again while shutting down. */
export interface Readiness {
  ready: boolean;
}

export interface HealthOptions {
  readonly db: VppdDatabase;
  readonly readiness: Readiness;
  /** True while this process's sync thread keeps dying (sync/sync-thread.ts); absent: never. */
  readonly syncThreadFailing?: () => boolean;
}

/**
 * `GET /healthz`: 200 `{"status":"ok"}` when the server is ready and the database answers;
 * 503 otherwise (starting, draining on shutdown, the database is unreachable, or the sync thread keeps
 * dying: replaced again and again without staying up, it syncs nothing, and a restarted process may).
 */
export function registerHealthRoutes(app: FastifyInstance, options: HealthOptions): void {
  app.get('/healthz', async (request, reply) => {
    reply.header('cache-control', 'no-store');
    if (!options.readiness.ready) {
      return reply.status(503).type('application/json').send({ status: 'unavailable', reason: 'not ready' });
    }
    try {
      await sql`select 1`.execute(options.db);
    } catch (error) {
      request.log.error({ err: error }, 'health check: database unreachable');
      return reply.status(503).type('application/json').send({ status: 'unavailable', reason: 'database' });
    }
    if (options.syncThreadFailing?.() === true) {
      return reply
        .status(503)
        .type('application/json')
        .send({ status: 'unavailable', reason: 'sync thread' });
    }
    return reply.type('application/json').send({ status: 'ok' });
  });
}
