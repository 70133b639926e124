import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { errors } from '../domain/errors.js';
import type { GraphVersion } from '../domain/graph-enum.js';
import type { SyncTrigger } from '../domain/sync-trigger.js';
import type { VppToken } from '../domain/vpp-token.js';
import { authorize, metadataUrlOf, principalOf } from './graph-request.js';
import { methodNotAllowed } from './method-not-allowed.js';
import { noQueryOptions } from './vpp-token-collection-actions-routes.js';
import { presentVppToken } from './vpp-token-presenter.js';
import { vppTokensPath } from './vpp-tokens-routes.js';

/**
 * `POST .../vppTokens/{id}/syncLicenses` (beta and v1.0, no parameters): moves the token to
 * `inProgress` and records a durable sync job — or coalesces with the sync already in flight, so two
 * calls at once make one sync — and answers 200 with the token. The sync itself runs in a worker.
 */
export function registerVppTokenActionRoutes(
  app: FastifyInstance,
  context: AppContext,
  version: GraphVersion,
): void {
  const { clock, authenticator, sync, tokens } = context;
  const write = authorize(authenticator, 'write');
  const path = `${vppTokensPath}/:id/syncLicenses`;

  app.post<{ Params: { id: string } }>(path, { onRequest: write }, async (request, reply) => {
    const { tenantId } = principalOf(request);
    noQueryOptions(request, version);
    const body = request.body;
    if (body !== undefined && body !== null && (typeof body !== 'object' || Object.keys(body).length > 0)) {
      throw errors.badRequest('syncLicenses takes no parameters: send no body or {}.');
    }
    const id = request.params.id;
    const result = await sync.requestSync(tenantId, id, 'api');
    if (result.effect === 'notFound') throw errors.notFound('vppToken', id);
    const token = await tokens.get(tenantId, id);
    if (!token) throw errors.notFound('vppToken', id);
    request.log.info({ tokenId: id, effect: result.effect }, 'syncLicenses accepted');
    return reply
      .status(200)
      .type('application/json')
      .send({
        '@odata.context': `${metadataUrlOf(request, version)}#microsoft.graph.vppToken`,
        ...presentVppToken(token, { version }),
      });
  });
  methodNotAllowed(app, path, ['POST'], clock);
}

/**
 * After a token was created or its sToken renewed: requests its sync (when the context is set to, as
 * in `vppd serve`) and returns the token as it is now (`inProgress`), else the token unchanged.
 */
export async function syncAfterTokenWrite(
  context: AppContext,
  token: VppToken,
  trigger: Extract<SyncTrigger, 'created' | 'renewed'>,
): Promise<VppToken> {
  if (!context.sync.syncOnTokenWrite) return token;
  await context.sync.requestSync(token.tenantId, token.id, trigger);
  return (await context.tokens.get(token.tenantId, token.id)) ?? token;
}
