import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { errors } from '../domain/errors.js';
import type { GraphVersion } from '../domain/graph-enum.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { authorize, metadataUrlOf, principalOf } from '../http/request.js';
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
  const { clock, authenticator, tokenService } = context;
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
    const { effect, token } = await tokenService.syncLicenses(tenantId, id);
    request.log.info({ tokenId: id, effect }, 'syncLicenses accepted');
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
