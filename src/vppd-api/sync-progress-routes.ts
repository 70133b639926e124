import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { errors } from '../domain/errors.js';
import { formatGraphDateTime } from '../domain/graph-date-time.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { authorize, principalOf } from '../http/request.js';
import type { SyncRun } from '../storage/sync-job-store.js';
import { createSyncProgressStore } from '../storage/sync-progress-store.js';
import { vppdApiPrefix } from './prefix.js';
import { presentRunFailure, type RunFailureBody } from './run-failure.js';

/** Wire shape of a finished (or running) attempt in the sync history. */
interface RunBody {
  readonly outcome: SyncRun['outcome'];
  readonly trigger: string;
  /** `full`, or `delta` for a delta sync that committed a delta (one that read everything is `full`). */
  readonly kind: 'full' | 'delta';
  readonly attempt: number;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly pages: number | null;
  readonly records: number | null;
  readonly assets: number | null;
  readonly assignments: number | null;
  readonly error: RunFailureBody | null;
}

function presentRun(run: SyncRun): RunBody {
  const records =
    run.assetCount === null && run.assignmentCount === null
      ? null
      : (run.assetCount ?? 0) + (run.assignmentCount ?? 0);
  return {
    outcome: run.outcome,
    trigger: run.trigger,
    kind: run.kind === 'delta' ? 'delta' : 'full',
    attempt: run.attempt,
    startedAt: formatGraphDateTime(run.startedAt),
    finishedAt: run.finishedAt ? formatGraphDateTime(run.finishedAt) : null,
    pages: run.pageCount,
    records,
    assets: run.assetCount,
    assignments: run.assignmentCount,
    error: presentRunFailure(run.failure),
  };
}

/**
 * `GET /vppd/v1/tokens/{id}/sync`: where a token's sync stands right now — Graph's `lastSyncStatus`
 * plus what Graph cannot say: the phase, pages and records of the sync in flight (read from the
 * database, so any process answers for any worker) and the outcome of the last attempt with its
 * reason. Same bearer tokens, permissions and tenant scoping as the Graph routes.
 */
export function registerVppdSyncProgressRoutes(app: FastifyInstance, context: AppContext): void {
  const { tokens, sync, clock, authenticator } = context;
  const progress = createSyncProgressStore({ storage: context.storage });
  const read = authorize(authenticator, 'read');
  const write = authorize(authenticator, 'write');
  const path = `${vppdApiPrefix}/tokens/:id/sync`;

  const statusOf = async (tenantId: string, id: string) => {
    const token = await tokens.get(tenantId, id);
    if (!token) throw errors.notFound('vppToken', id);
    const [live, runs] = await Promise.all([
      progress.live(tenantId, id, clock()),
      sync.jobs.listRuns(tenantId, id, 1),
    ]);
    const lastRun = runs[0];
    const running = live?.state === 'running';
    return {
      tokenId: id,
      lastSyncStatus: token.lastSyncStatus,
      state: token.state,
      lastSyncDateTime: formatGraphDateTime(token.lastSyncDateTime),
      // queued | running while a sync is in flight; idle otherwise.
      job: live === undefined ? 'idle' : live.state,
      phase: live?.phase ?? (live ? 'queued' : null),
      pages: running ? live.pages : null,
      records: running ? live.records : null,
      requestedAt: live ? formatGraphDateTime(live.requestedAt) : null,
      startedAt: running && lastRun?.outcome === 'running' ? formatGraphDateTime(lastRun.startedAt) : null,
      progressAt: live?.progressAt ? formatGraphDateTime(live.progressAt) : null,
      // The reason of the last failure while the token is failed (from the sync history).
      error:
        token.lastSyncStatus === 'failed' && lastRun !== undefined
          ? presentRunFailure(lastRun.failure)
          : null,
      lastRun: lastRun === undefined ? null : presentRun(lastRun),
    };
  };

  app.get<{ Params: { id: string } }>(path, { onRequest: read }, async (request, reply) => {
    const { tenantId } = principalOf(request);
    return reply.type('application/json').send(await statusOf(tenantId, request.params.id));
  });

  // Requests a sync: `{"kind":"delta"}` a delta sync, `{"kind":"full"}` (or no body) a full one, as Graph's
  // syncLicenses. 202 with the status above and `effect`: `started`, or `coalesced` with the sync in flight.
  app.post<{ Params: { id: string } }>(path, { onRequest: write }, async (request, reply) => {
    const { tenantId } = principalOf(request);
    const id = request.params.id;
    const kind = syncKindOf(request.body);
    const result = await sync.requestSync(tenantId, id, 'api', kind === 'delta' ? 'delta' : 'licenses');
    if (result.effect === 'notFound') throw errors.notFound('vppToken', id);
    return reply
      .code(202)
      .type('application/json')
      .send({ effect: result.effect, ...(await statusOf(tenantId, id)) });
  });
  methodNotAllowed(app, path, ['GET', 'POST'], clock);

  // The sync history, newest first: `?top=N` (1-100, default 20).
  const historyPath = `${vppdApiPrefix}/tokens/:id/syncs`;
  app.get<{ Params: { id: string }; Querystring: Record<string, string | string[] | undefined> }>(
    historyPath,
    { onRequest: read },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const id = request.params.id;
      const top = historyTopOf(request.query.top);
      const token = await tokens.get(tenantId, id);
      if (!token) throw errors.notFound('vppToken', id);
      const runs = await sync.jobs.listRuns(tenantId, id, top);
      return reply.type('application/json').send({ tokenId: id, value: runs.map(presentRun) });
    },
  );
  methodNotAllowed(app, historyPath, ['GET'], clock);
}

/** Default and largest page of the sync history. */
const historyTop = { default: 20, max: 100 } as const;

function historyTopOf(raw: string | string[] | undefined): number {
  if (raw === undefined) return historyTop.default;
  const text = Array.isArray(raw) ? raw[0] : raw;
  const top = /^\d{1,3}$/.test(text ?? '') ? Number(text) : Number.NaN;
  if (!(top >= 1 && top <= historyTop.max)) {
    throw errors.badRequest(`top must be an integer from 1 to ${historyTop.max}.`);
  }
  return top;
}

/** The `kind` of a sync request's body: `full` (also an empty body) or `delta`. */
function syncKindOf(body: unknown): 'full' | 'delta' {
  if (body === undefined || body === null || body === '') return 'full';
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw errors.badRequest("The body must be a JSON object, optionally with 'kind': 'full' or 'delta'.");
  }
  const { kind, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw errors.badRequest(`Unknown property '${unknown[0]}'.`);
  if (kind === undefined || kind === 'full') return 'full';
  if (kind === 'delta') return 'delta';
  throw errors.badRequest("'kind' must be 'full' or 'delta'.");
}
