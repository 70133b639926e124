import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import type { GraphVersion } from '../domain/graph-enum.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { authorize, principalOf } from '../http/request.js';
import { parseRevokeLicensesRequest } from '../sync/revoke-licenses.js';
import { noQueryOptions } from './vpp-token-collection-actions-routes.js';
import { vppTokensPath } from './vpp-tokens-routes.js';

/**
 * `POST .../vppTokens/{id}/revokeLicenses` (beta): validates the body strictly, records a pending
 * `revokeLicenses` action result and answers 204; the revoke itself runs in the background and its
 * progress is the token's `tokenActionResults` entry (`#microsoft.graph.vppTokenRevokeLicensesActionResult`).
 * A token that is not `valid` gets 409. A revoke already pending or active absorbs the request (204).
 */
export function registerVppTokenRevokeRoutes(
  app: FastifyInstance,
  context: AppContext,
  version: GraphVersion,
): void {
  if (version !== 'beta') return;
  const { clock, authenticator, revokes } = context;
  const write = authorize(authenticator, 'write');
  const path = `${vppTokensPath}/:id/revokeLicenses`;

  app.post<{ Params: { id: string } }>(path, { onRequest: write }, async (request, reply) => {
    const { tenantId } = principalOf(request);
    noQueryOptions(request, version);
    const body = parseRevokeLicensesRequest(request.body);
    const outcome = await revokes.request(tenantId, request.params.id, body);
    request.log.info({ tokenId: request.params.id, outcome }, 'revokeLicenses accepted');
    return reply.status(204).send();
  });
  methodNotAllowed(app, path, ['POST'], clock);
}
