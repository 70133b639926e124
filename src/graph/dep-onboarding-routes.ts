import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { errorCodes, errors, VppdError } from '../domain/errors.js';
import type { GraphVersion } from '../domain/graph-enum.js';
import type { FilterExpression } from '../domain/list-query.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { authorize, metadataUrlOf, principalOf } from '../http/request.js';
import { normaliseDateTimeLiteral } from './odata/date-time-literal.js';
import { noQueryOptions, parseFunctionStringParameter } from './vpp-token-collection-actions-routes.js';

/** Where the DEP onboarding settings live under a version prefix. */
export const depOnboardingSettingsPath = '/deviceManagement/depOnboardingSettings';

/**
 * `GET .../depOnboardingSettings/getExpiringVppTokenCount(expiringBeforeDateTime='…')` (beta): the
 * number of the tenant's VPP tokens whose `expirationDateTime` is before that instant, as
 * `{"@odata.context": "…#Edm.Int32", "value": n}`. The parameter is an Edm.String holding an
 * ISO-8601 date-time with `Z` or an offset; anything else is a 400.
 */
export function registerDepOnboardingRoutes(
  app: FastifyInstance,
  context: AppContext,
  version: GraphVersion,
): void {
  if (version !== 'beta') return;
  const { clock, authenticator, tokens } = context;
  const read = authorize(authenticator, 'read');
  const path = `${depOnboardingSettingsPath}/getExpiringVppTokenCount:args`;

  app.get<{ Params: { args: string } }>(path, { onRequest: read }, async (request, reply) => {
    const { tenantId } = principalOf(request);
    const args = request.params.args;
    if (args !== '' && !args.startsWith('(')) {
      throw new VppdError(
        errorCodes.notFound,
        `Resource not found for the segment 'getExpiringVppTokenCount${args.slice(0, 100)}'.`,
      );
    }
    noQueryOptions(request, version);
    const text = parseFunctionStringParameter(args, 'getExpiringVppTokenCount', 'expiringBeforeDateTime');
    const instant = normaliseDateTimeLiteral(text.trim());
    if (!instant) {
      throw errors.badRequest(
        `'${text.slice(0, 100)}' is not a date-time: expiringBeforeDateTime takes ISO-8601 with 'Z' or an offset, e.g. '2026-12-31T00:00:00Z'.`,
      );
    }
    const filter: FilterExpression = {
      kind: 'compare',
      property: 'expirationDateTime',
      operator: 'lt',
      value: { type: 'dateTime', value: instant.value, exact: instant.exact },
    };
    const count = await tokens.count(tenantId, filter);
    return reply.type('application/json').send({
      '@odata.context': `${metadataUrlOf(request, version)}#Edm.Int32`,
      value: count,
    });
  });
  methodNotAllowed(app, path, ['GET'], clock);
}
