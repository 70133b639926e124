import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { errors } from '../domain/errors.js';
import type { SyncRun } from '../storage/sync-job-store.js';
import { createSyncProgressStore } from '../storage/sync-progress-store.js';
import { authorize, principalOf } from './graph-request.js';
import { methodNotAllowed } from './method-not-allowed.js';

/** vppd's own API, outside Graph's namespace: things Graph has no property for. */
export const vppdApiPrefix = '/vppd/v1';

/** Wire shape of a finished (or running) attempt in the sync history. */
interface RunBody {
  readonly outcome: SyncRun['outcome'];
  readonly trigger: string;
  readonly attempt: number;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly pages: number | null;
  readonly records: number | null;
  readonly error: {
    readonly kind: string;
    readonly reason: string;
    readonly message: string;
    readonly appleErrorNumber: number | null;
  } | null;
}

function presentRun(run: SyncRun): RunBody {
  const records =
    run.assetCount === null && run.assignmentCount === null
      ? null
      : (run.assetCount ?? 0) + (run.assignmentCount ?? 0);
  return {
    outcome: run.outcome,
    trigger: run.trigger,
    attempt: run.attempt,
    startedAt: run.startedAt.toISOString(),
    finishedAt: run.finishedAt?.toISOString() ?? null,
    pages: run.pageCount,
    records,
    error:
      run.failure === null
        ? null
        : {
            kind: run.failure.kind,
            reason: run.failure.reason,
            message: run.failure.message,
            appleErrorNumber: run.failure.appleErrorNumber ?? null,
          },
  };
}

/**
 * `GET /vppd/v1/tokens/{id}/sync`: where a token's sync stands right now — Graph's `lastSyncStatus`
 * plus what Graph cannot say: the phase, pages and records of the sync in flight (read from the
 * database, so any process answers for any worker) and the outcome of the last attempt with its
 * reason. Same bearer tokens, permissions and tenant scoping as the Graph routes.
 */
export function registerVppdSyncProgressRoutes(app: FastifyInstance, context: AppContext): void {
  const { tokens, sync, clock, authenticator, db } = context;
  const progress = createSyncProgressStore({ db });
  const read = authorize(authenticator, 'read');
  const path = `${vppdApiPrefix}/tokens/:id/sync`;

  app.get<{ Params: { id: string } }>(path, { onRequest: read }, async (request, reply) => {
    const { tenantId } = principalOf(request);
    const id = request.params.id;
    const token = await tokens.get(tenantId, id);
    if (!token) throw errors.notFound('vppToken', id);
    const [live, runs] = await Promise.all([
      progress.live(tenantId, id, clock()),
      sync.jobs.listRuns(tenantId, id, 1),
    ]);
    const lastRun = runs[0];
    const running = live?.state === 'running';
    return reply.type('application/json').send({
      tokenId: id,
      lastSyncStatus: token.lastSyncStatus,
      state: token.state,
      lastSyncDateTime: token.lastSyncDateTime.toISOString(),
      // queued | running while a sync is in flight; idle otherwise.
      job: live === undefined ? 'idle' : live.state,
      phase: live?.phase ?? (live ? 'queued' : null),
      pages: running ? live.pages : null,
      records: running ? live.records : null,
      requestedAt: live?.requestedAt.toISOString() ?? null,
      startedAt: running && lastRun?.outcome === 'running' ? lastRun.startedAt.toISOString() : null,
      progressAt: live?.progressAt?.toISOString() ?? null,
      // The reason of the last failure while the token is failed (from the sync history).
      error: token.lastSyncStatus === 'failed' && lastRun?.failure ? presentRun(lastRun).error : null,
      lastRun: lastRun === undefined ? null : presentRun(lastRun),
    });
  });
  methodNotAllowed(app, path, ['GET'], clock);
}
