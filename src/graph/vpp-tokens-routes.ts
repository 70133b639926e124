import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.js';
import { errors } from '../domain/errors.js';
import type { GraphVersion } from '../domain/graph-enum.js';
import type { ListQuery } from '../domain/list-query.js';
import { type VppToken, validateTokenWrite, vppTokenTypeName } from '../domain/vpp-token.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import {
  authorize,
  externalBaseOf,
  externalUrlOf,
  metadataUrlOf,
  preferencesOf,
  principalOf,
  rawQueryOf,
} from '../http/request.js';
import { createTenantChangeStamp } from '../storage/change-stamp.js';
import { buildNextLink } from './odata/next-link.js';
import { type ListQueryOption, parseListQuery } from './odata/parse-list-query.js';
import { createResponseCache } from './response-cache.js';
import { createTokenFragments, jsonBytes } from './token-fragments.js';
import { vppTokenListFields } from './vpp-token-list-fields.js';
import { presentVppToken } from './vpp-token-presenter.js';

/** Where the collection lives under a version prefix. */
export const vppTokensPath = '/deviceAppManagement/vppTokens';

/**
 * Graph's vppTokens collection (docs/graph-api.md, "Routes"): list, `$count`, get, create, PATCH,
 * delete. Handlers are thin: parse and check, call the domain and the store, present.
 */
export function registerVppTokenRoutes(
  app: FastifyInstance,
  context: AppContext,
  version: GraphVersion,
): void {
  const { tokens, tokenService, clock, authenticator } = context;
  const read = authorize(authenticator, 'read');
  const write = authorize(authenticator, 'write');
  const fields = vppTokenListFields(version);

  const parseQuery = (request: FastifyRequest, allowedOptions: readonly ListQueryOption[]): ListQuery =>
    parseListQuery(rawQueryOf(request), {
      fields,
      typeName: vppTokenTypeName,
      version,
      allowedOptions,
      includeUnknownEnumMembers: includeUnknown(request),
    });

  const present = (request: FastifyRequest, token: VppToken, select?: readonly string[]) =>
    presentVppToken(token, {
      version,
      ...(select ? { select } : {}),
      includeUnknownEnumMembers: includeUnknown(request),
    });

  const entityContext = (request: FastifyRequest, select?: readonly string[]) =>
    `${metadataUrlOf(request, version)}#deviceAppManagement/vppTokens${selectSuffix(select)}/$entity`;

  const sendEntity = (request: FastifyRequest, reply: FastifyReply, status: number, token: VppToken) =>
    reply
      .status(status)
      .type('application/json')
      .send({ '@odata.context': entityContext(request), ...present(request, token) });

  // A read's bytes are kept while the tenant's change stamp (the seq of its newest event) stays the
  // same: every write a read of the tenant can see, by this process or another one on the database,
  // appends an event and so retires the tenant's kept responses; other tenants' writes leave them.
  // The key holds all the bytes depend on: tenant, `Prefer`, external base (links; behind a proxy it
  // varies with the forwarded headers) and URL (version, query). A vppToken shows nothing of a running
  // sync's progress (its phase, pages and records live on the job row), so the stamp leaves the
  // `syncProgressed` notes out: kept answers outlive them and retire at the next real change.
  const changeStamp = createTenantChangeStamp(context.storage, { progress: false });
  const responses = createResponseCache<Buffer>();
  // Promise chains, not async functions: a hit (most reads under load) costs the handler one promise
  // and one continuation after the stamp, instead of three of each. The chain settles with nothing,
  // not the reply: a reply is a thenable, and settling with it would wait for the response to finish.
  const sendRead = (
    request: FastifyRequest,
    reply: FastifyReply,
    build: () => Promise<unknown>,
  ): Promise<void> => {
    const { tenantId } = principalOf(request);
    const key = readKey(tenantId, includeUnknown(request), externalBaseOf(request), request.url);
    return changeStamp(tenantId).then((stamp) => {
      const kept = responses.get(key, stamp);
      if (kept !== undefined) {
        sendJsonBytes(reply, kept);
        return undefined;
      }
      // Read after the stamp, so the bytes are never older than the stamp they are kept under.
      return build().then((value) => {
        const body = value instanceof Buffer ? value : jsonBytes(value);
        responses.set(key, stamp, body, body.length);
        sendJsonBytes(reply, body);
      });
    });
  };

  // A list page whose kept answer retired is rebuilt from each token's kept JSON: only the tokens whose
  // own version moved are read and serialized again (token-fragments.ts). A kept form without a version
  // lives a quarter of the event retention at most (and a minute at most).
  const fragments = createTokenFragments({
    tokens,
    now: Date.now,
    maxAgeMs: Math.min(60_000, context.config.sync.eventRetentionMs / 4),
  });

  app.get(vppTokensPath, { onRequest: read }, (request, reply) =>
    sendRead(request, reply, async () => {
      const { tenantId } = principalOf(request);
      const query = parseQuery(request, ['select', 'filter', 'orderby', 'top', 'skip', 'count', 'skiptoken']);
      const odataContext = `${metadataUrlOf(request, version)}#deviceAppManagement/vppTokens${selectSuffix(query.select)}`;
      const page = await tokens.listPageVersions(tenantId, query);
      let nextOffset = page.nextOffset;
      let items = await fragments.serialize(
        tenantId,
        page.rows,
        JSON.stringify([version, includeUnknown(request), query.select ?? null]),
        (token) => present(request, token, query.select),
      );
      if (items === undefined) {
        // A token of the page was deleted between its two reads: the page is read whole.
        const whole = await tokens.listPage(tenantId, query);
        items = whole.rows.map((token) => jsonBytes(present(request, token, query.select)));
        nextOffset = whole.nextOffset;
      }
      // The bytes JSON.stringify makes of the same object: its keys in the same order.
      let text = `{"@odata.context":${JSON.stringify(odataContext)}`;
      if (query.count)
        text += `,"@odata.count":${JSON.stringify(await tokens.count(tenantId, query.filter))}`;
      if (nextOffset !== undefined) {
        text += `,"@odata.nextLink":${JSON.stringify(buildNextLink(externalUrlOf(request), query, nextOffset))}`;
      }
      return jsonPage(`${text},"value":[`, items, ']}');
    }),
  );

  app.get(`${vppTokensPath}/$count`, { onRequest: read }, async (request, reply) => {
    const { tenantId } = principalOf(request);
    const query = parseQuery(request, ['filter']);
    const count = await tokens.count(tenantId, query.filter);
    return reply.type('text/plain').send(String(count));
  });

  app.get<{ Params: { id: string } }>(`${vppTokensPath}/:id`, { onRequest: read }, (request, reply) =>
    sendRead(request, reply, async () => {
      const { tenantId } = principalOf(request);
      const query = parseQuery(request, ['select']);
      const token = await tokens.get(tenantId, request.params.id);
      if (!token) throw errors.notFound('vppToken', request.params.id);
      return {
        '@odata.context': entityContext(request, query.select),
        ...present(request, token, query.select),
      };
    }),
  );

  app.post(vppTokensPath, { onRequest: write }, async (request, reply) => {
    const { tenantId } = principalOf(request);
    parseQuery(request, []);
    const body = validateTokenWrite(request.body, {
      mode: 'create',
      version,
      includeUnknownEnumMembers: includeUnknown(request),
    });
    const stored = await tokenService.create(tenantId, body);
    reply.header('location', `${externalBaseOf(request)}/${version}${vppTokensPath}/${stored.id}`);
    return sendEntity(request, reply, 201, stored);
  });

  app.patch<{ Params: { id: string } }>(
    `${vppTokensPath}/:id`,
    { onRequest: write },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      parseQuery(request, []);
      const body = validateTokenWrite(request.body, {
        mode: 'update',
        version,
        includeUnknownEnumMembers: includeUnknown(request),
      });
      const id = request.params.id;
      const updated = await tokenService.update(tenantId, id, body);
      if (!updated) throw errors.notFound('vppToken', id);
      if (preferencesOf(request).has('return=representation')) {
        reply.header('preference-applied', 'return=representation');
        return sendEntity(request, reply, 200, updated);
      }
      return reply.status(204).send();
    },
  );

  app.delete<{ Params: { id: string } }>(
    `${vppTokensPath}/:id`,
    { onRequest: write },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      parseQuery(request, []);
      const deleted = await tokenService.delete(tenantId, request.params.id);
      if (!deleted) throw errors.notFound('vppToken', request.params.id);
      return reply.status(204).send();
    },
  );

  methodNotAllowed(app, vppTokensPath, ['GET', 'POST'], clock);
  methodNotAllowed(app, `${vppTokensPath}/$count`, ['GET'], clock);
  methodNotAllowed(app, `${vppTokensPath}/:id`, ['GET', 'PATCH', 'DELETE'], clock);
}

const comma = Buffer.from(',');

/**
 * A list page's bytes: `head`, the items separated by commas, `tail`, copied once into one buffer (the
 * items are kept bytes, token-fragments.ts). The same bytes `JSON.stringify` makes of the page.
 */
function jsonPage(head: string, items: readonly Buffer[], tail: string): Buffer {
  const parts: Buffer[] = [Buffer.from(head)];
  for (let i = 0; i < items.length; i++) {
    if (i > 0) parts.push(comma);
    parts.push(items[i] as Buffer);
  }
  parts.push(Buffer.from(tail));
  return Buffer.concat(parts);
}

/**
 * The read cache's key: the tenant, `Prefer: include-unknown-enum-members`, the external base and the
 * URL. The tenant and the base are length-prefixed, so no two different tuples give the same text.
 */
function readKey(tenantId: string, includeUnknown: boolean, externalBase: string, url: string): string {
  return `${tenantId.length}:${tenantId}${includeUnknown ? 'u' : 'k'}${externalBase.length}:${externalBase}${url}`;
}

/** Sends serialized JSON as it is, with the content type fastify gives the JSON it serializes. */
function sendJsonBytes(reply: FastifyReply, body: Buffer): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(body);
}

function includeUnknown(request: FastifyRequest): boolean {
  // Most requests send no Prefer header: no set of preferences to build for them.
  return request.headers.prefer !== undefined && preferencesOf(request).has('include-unknown-enum-members');
}

/** `(a,b)` after the entity set in `@odata.context` when `$select` narrowed the properties. */
function selectSuffix(select: readonly string[] | undefined): string {
  return select ? `(${select.join(',')})` : '';
}
