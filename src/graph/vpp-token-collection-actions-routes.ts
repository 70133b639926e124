import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.js';
import { errorCodes, errors, VppdError } from '../domain/errors.js';
import type { GraphVersion } from '../domain/graph-enum.js';
import type { ListField, ListFields } from '../domain/list-query.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import { authorize, externalUrlOf, metadataUrlOf, principalOf, rawQueryOf } from '../http/request.js';
import type { TokenLicenseSummaryRecord } from '../storage/license-read-store.js';
import { evaluateFilter, type FilterValue } from './odata/evaluate-filter.js';
import { buildNextLink } from './odata/next-link.js';
import { parseListQuery } from './odata/parse-list-query.js';
import { vppTokensPath } from './vpp-tokens-routes.js';

/** Largest Edm.Int32: license sums over "unlimited" assets (2147483647 each) are capped to it. */
const maxInt32 = 2147483647;

/**
 * Parses the parameter list of an OData function segment with one string parameter, e.g.
 * `(bundleId='com.example.app')` (`''` inside the quotes is one `'`). Throws 400 with what is wrong:
 * a missing or other parameter name, an unquoted value, text after the literal, or a parameter alias.
 */
export function parseFunctionStringParameter(args: string, functionName: string, parameter: string): string {
  const usage = `${functionName}(${parameter}='…')`;
  const fail = (problem: string): never => {
    throw errors.badRequest(`${problem} Call it as ${usage}.`);
  };
  if (!args.startsWith('(') || !args.endsWith(')'))
    fail(`The function ${functionName} needs its parameter list.`);
  const inner = args.slice(1, -1).trim();
  const eq = inner.indexOf('=');
  if (eq < 0) fail(`The function ${functionName} needs the parameter '${parameter}'.`);
  const name = inner.slice(0, eq).trim();
  if (name !== parameter) {
    fail(
      `'${name.slice(0, 100)}' is not a parameter of ${functionName}; its only parameter is '${parameter}'.`,
    );
  }
  const literal = inner.slice(eq + 1).trim();
  if (literal.startsWith('@')) {
    throw errors.notSupported(
      `Parameter aliases ('${literal.slice(0, 100)}') are not supported; pass the value inline: ${usage}.`,
    );
  }
  if (!literal.startsWith("'"))
    fail(`The parameter '${parameter}' must be a string literal in single quotes.`);
  let value = '';
  let i = 1;
  for (;;) {
    const quote = literal.indexOf("'", i);
    if (quote < 0) return fail(`The string literal of '${parameter}' is not closed.`);
    value += literal.slice(i, quote);
    if (literal[quote + 1] === "'") {
      value += "'";
      i = quote + 2;
      continue;
    }
    if (quote !== literal.length - 1) fail(`Unexpected text after the value of '${parameter}'.`);
    return value;
  }
}

/**
 * Actions and functions bound to the vppTokens collection (docs/graph-api.md, "Actions and functions"):
 * `POST .../vppTokens/syncLicenseCounts` (beta; 204 at once: a `licenseCounts` job per token with
 * a snapshot, run by the sync worker, its progress in tokenActionResults) and `GET .../vppTokens/getLicensesForApp(bundleId='…')`.
 */
export function registerVppTokenCollectionActionRoutes(
  app: FastifyInstance,
  context: AppContext,
  version: GraphVersion,
): void {
  const { clock, authenticator, licenseReads } = context;
  const read = authorize(authenticator, 'read');
  const write = authorize(authenticator, 'write');
  const functionPath = `${vppTokensPath}/getLicensesForApp:args`;

  // Its result is a collection like any other: $filter, $top, $skip and $count apply to it (as on
  // Graph), evaluated on the summaries, one per token holding the app.
  app.get<{ Params: { args: string } }>(functionPath, { onRequest: read }, async (request, reply) => {
    const { tenantId } = principalOf(request);
    const args = request.params.args;
    // `getLicensesForAppX` is not this function: it reads like any unknown token id.
    if (args !== '' && !args.startsWith('(')) throw errors.notFound('vppToken', `getLicensesForApp${args}`);
    const query = parseListQuery(rawQueryOf(request), {
      fields: licenseSummaryFields,
      typeName: 'microsoft.graph.vppTokenLicenseSummary',
      version,
      allowedOptions: ['filter', 'top', 'skip', 'count', 'skiptoken'],
    });
    const bundleId = parseFunctionStringParameter(args, 'getLicensesForApp', 'bundleId');
    if (bundleId.trim() === '') throw errors.badRequest("The parameter 'bundleId' must not be empty.");
    const summaries = (await licenseReads.licenseSummariesForBundle(tenantId, bundleId)).map(
      presentLicenseSummary,
    );
    const filter = query.filter;
    const matching =
      filter === undefined
        ? summaries
        : summaries.filter((summary) => evaluateFilter(filter, (p) => summary[p] as FilterValue));
    const body: Record<string, unknown> = {
      '@odata.context': `${metadataUrlOf(request, version)}#Collection(microsoft.graph.vppTokenLicenseSummary)`,
    };
    if (query.count) body['@odata.count'] = matching.length;
    // A function's result is computed in memory (one row per bundle id), so it is paged here.
    const end = query.offset + query.pageSize;
    const nextOffset = query.pageSize > 0 && matching.length > end ? end : undefined;
    if (nextOffset !== undefined) {
      body['@odata.nextLink'] = buildNextLink(externalUrlOf(request), query, nextOffset);
    }
    body.value = matching.slice(query.offset, query.offset + query.pageSize);
    return reply.type('application/json').send(body);
  });
  methodNotAllowed(app, functionPath, ['GET'], clock);

  if (version !== 'beta') return;
  const syncPath = `${vppTokensPath}/syncLicenseCounts`;
  app.post(syncPath, { onRequest: write }, async (request, reply) => {
    const { tenantId } = principalOf(request);
    noQueryOptions(request, version);
    noParameters(request.body, 'microsoft.graph.syncLicenseCounts');
    // Accepted at once: one job per token with a snapshot, coalesced with any job the token already
    // has; progress shows in each token's tokenActionResults (syncLicenseCounts).
    const pointers = await licenseReads.snapshotPointers(tenantId);
    for (const pointer of pointers) await context.sync.requestLicenseCounts(tenantId, pointer.tokenId);
    return reply.status(204).send();
  });
  methodNotAllowed(app, syncPath, ['POST'], clock);
}

const summaryField = (name: string, type: ListField['type']): ListField => ({
  name,
  type,
  filterable: true,
  sortable: false,
});

/** What `$filter` may name on `vppTokenLicenseSummary`. */
const licenseSummaryFields: ListFields = {
  vppTokenId: summaryField('vppTokenId', 'string'),
  appleId: summaryField('appleId', 'string'),
  organizationName: summaryField('organizationName', 'string'),
  availableLicenseCount: summaryField('availableLicenseCount', 'int32'),
  usedLicenseCount: summaryField('usedLicenseCount', 'int32'),
};

/** Graph's `vppTokenLicenseSummary`. */
export function presentLicenseSummary(summary: TokenLicenseSummaryRecord): Record<string, unknown> {
  return {
    vppTokenId: summary.tokenId,
    appleId: summary.appleId,
    organizationName: summary.organizationName,
    availableLicenseCount: Math.min(maxInt32, summary.availableLicenseCount),
    usedLicenseCount: Math.min(maxInt32, summary.usedLicenseCount),
  };
}

/** Functions and actions here take no query options: any is a 400, never ignored. */
export function noQueryOptions(request: FastifyRequest, version: GraphVersion): void {
  parseListQuery(rawQueryOf(request), {
    fields: {},
    typeName: 'microsoft.graph.vppToken',
    version,
    allowedOptions: [],
  });
}

/** An action without parameters accepts no body, `null` or `{}`; anything else is a 400. */
function noParameters(body: unknown, action: string): void {
  if (body === undefined || body === null) return;
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw errors.badRequest(`The action ${action} takes no parameters; send no body or {}.`);
  }
  const [first] = Object.keys(body);
  if (first !== undefined) {
    throw new VppdError(
      errorCodes.unknownProperty,
      `The parameter '${first.slice(0, 100)}' does not exist on action '${action}': it takes no parameters.`,
      { details: { property: first.slice(0, 100) } },
    );
  }
}
