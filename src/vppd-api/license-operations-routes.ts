import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errors } from '../domain/errors.js';
import { formatGraphDateTime } from '../domain/graph-date-time.js';
import { type LicenseOperationKind, parseLicenseOperationRequest } from '../domain/license-operation.js';
import { parseReclaimRequest } from '../domain/license-reclaim.js';
import { vppAppId } from '../graph/vpp-app-presenter.js';
import type { Authenticator } from '../http/auth/authenticator.js';
import { authorize, externalBaseOf, principalOf } from '../http/request.js';
import {
  idempotencyKeyPattern,
  type LicenseOperation,
  type LicenseOperationFailure,
} from '../storage/license-operations/operation-store.js';
import type { LicenseReadStore } from '../storage/license-read-store.js';
import type { VppTokenStore } from '../storage/vpp-token-store.js';
import type { LicenseOperationService } from '../sync/license-operations.js';
import { vppdApiPrefix } from './prefix.js';

/** Where operations are read: `GET /vppd/v1/operations` (the tenant's) and `/vppd/v1/operations/{id}`. */
export const operationsPath = `${vppdApiPrefix}/operations`;

export interface LicenseOperationRoutesContext {
  readonly authenticator: Authenticator;
  readonly licenseOperations: LicenseOperationService;
  readonly licenseReads: LicenseReadStore;
  readonly tokens: Pick<VppTokenStore, 'get'>;
}

/** Failures listed in one operation's answer; the counts always cover all of them. */
const maxListedFailures = 1000;
const defaultTop = 50;
const maxTop = 200;

/** The operation resource of vppd's API. */
export function presentOperation(
  operation: LicenseOperation,
  failures?: readonly LicenseOperationFailure[],
): Record<string, unknown> {
  return {
    id: operation.id,
    tokenId: operation.tokenId,
    kind: operation.kind,
    source: operation.source,
    status: operation.status,
    holderKind: operation.holderKind,
    assets: operation.assets,
    requestedCount: operation.requestedCount,
    completedCount: operation.completedCount,
    failedCount: operation.failedCount,
    createdDateTime: formatGraphDateTime(operation.createdAt),
    lastModifiedDateTime: formatGraphDateTime(operation.updatedAt),
    finishedDateTime: operation.finishedAt === null ? null : formatGraphDateTime(operation.finishedAt),
    snapshotUpdate: operation.snapshotUpdate,
    errorMessage: operation.errorMessage,
    ...(failures === undefined
      ? {}
      : {
          failures: failures.map((f) => ({
            adamId: f.adamId,
            pricingParam: f.pricingParam,
            ...(f.serialNumber !== null ? { serialNumber: f.serialNumber } : {}),
            ...(f.clientUserId !== null ? { clientUserId: f.clientUserId } : {}),
            errorNumber: f.errorNumber,
            errorMessage: f.errorMessage,
          })),
          failuresTruncated: failures.length < operation.failedCount && failures.length >= maxListedFailures,
        }),
  };
}

function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const raw = request.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  const key = Array.isArray(raw) ? raw[0] : raw;
  if (key === undefined || !idempotencyKeyPattern.test(key)) {
    throw errors.badRequest('The Idempotency-Key header must be 1 to 255 visible ASCII characters.');
  }
  return key;
}

/** Cursor of the list: the createdDateTime and id of the last operation of the page, base64url. */
function encodeCursor(operation: LicenseOperation): string {
  return Buffer.from(JSON.stringify([operation.createdAt.toISOString(), operation.id])).toString('base64url');
}

function decodeCursor(text: string): { createdAt: Date; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown[];
    if (typeof at === 'string' && typeof id === 'string' && !Number.isNaN(Date.parse(at))) {
      return { createdAt: new Date(at), id };
    }
  } catch {
    // fall through
  }
  throw errors.badRequest("The 'skiptoken' parameter is not one this API issued.");
}

/**
 * vppd's license operations: `POST /vppd/v1/tokens/{id}/associations` and `…/disassociations` (202 with
 * the operation; an `Idempotency-Key` makes a retry answer the same operation), `GET /vppd/v1/operations`
 * (the tenant's, newest first, `tokenId`, `top`, `skiptoken`) and `GET /vppd/v1/operations/{id}`. Writes
 * need the write permission; everything is tenant-scoped (another tenant's operation is 404).
 */
export function registerLicenseOperationRoutes(
  app: FastifyInstance,
  context: LicenseOperationRoutesContext,
): void {
  const { licenseOperations, authenticator } = context;
  const read = authorize(authenticator, 'read');
  const write = authorize(authenticator, 'write');

  const start =
    (kind: LicenseOperationKind) =>
    async (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
      const { tenantId } = principalOf(request);
      const idempotencyKey = idempotencyKeyOf(request);
      const parsed = parseLicenseOperationRequest(kind, request.body);
      const { operation, created } = await licenseOperations.request(tenantId, request.params.id, parsed, {
        ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      });
      reply.header('location', `${externalBaseOf(request)}${operationsPath}/${operation.id}`);
      if (!created) reply.header('idempotent-replayed', 'true');
      return reply.status(202).type('application/json').send(presentOperation(operation));
    };

  app.post<{ Params: { id: string } }>(
    `${vppdApiPrefix}/tokens/:id/associations`,
    { onRequest: write },
    start('associate'),
  );
  app.post<{ Params: { id: string } }>(
    `${vppdApiPrefix}/tokens/:id/disassociations`,
    { onRequest: write },
    start('disassociate'),
  );

  // The holders of one app in the token's snapshot (Graph's assignedLicenses has no serial numbers).
  app.get<{ Params: { id: string }; Querystring: Record<string, string | undefined> }>(
    `${vppdApiPrefix}/tokens/:id/licenses`,
    { onRequest: read },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const tokenId = request.params.id;
      const query = request.query;
      for (const name of Object.keys(query)) {
        if (!['adamId', 'pricingParam', 'appId', 'top', 'skiptoken'].includes(name)) {
          throw errors.badRequest(
            `Unknown query parameter '${name.slice(0, 100)}'; use adamId, pricingParam, appId, top, skiptoken.`,
          );
        }
      }
      let adamId = query.adamId;
      let pricingParam = query.pricingParam ?? 'STDQ';
      if (query.appId !== undefined) {
        // Graph's id of the app (what a Graph client has): it names the adamId and the pricing param.
        if (query.adamId !== undefined || query.pricingParam !== undefined) {
          throw errors.badRequest("Give either 'appId' or 'adamId' (with 'pricingParam'), not both.");
        }
        const wanted = query.appId.toLowerCase();
        const app = (await context.licenseReads.appKeys(tenantId, tokenId)).find(
          (k) => vppAppId(k) === wanted,
        );
        if (app === undefined) throw errors.notFound('mobileApp', query.appId.slice(0, 100));
        adamId = app.adamId;
        pricingParam = app.pricingParam;
      }
      if (adamId === undefined || !/^\d{1,20}$/.test(adamId)) {
        throw errors.badRequest("'adamId' (Apple's numeric id of the app) or 'appId' is required.");
      }
      if (!['STDQ', 'PLUS'].includes(pricingParam))
        throw errors.badRequest("'pricingParam' must be STDQ or PLUS.");
      const top = query.top === undefined ? 100 : Number(query.top);
      if (!Number.isInteger(top) || top < 1 || top > 1000)
        throw errors.badRequest("'top' must be an integer from 1 to 1000.");
      const fromSeq = query.skiptoken === undefined ? 0 : Number(query.skiptoken);
      if (!Number.isSafeInteger(fromSeq) || fromSeq < 0) {
        throw errors.badRequest("The 'skiptoken' parameter is not one this API issued.");
      }
      if (!(await context.tokens.get(tenantId, tokenId))) throw errors.notFound('vppToken', tokenId);
      const key = { tokenId, adamId, pricingParam };
      const [page, count] = await Promise.all([
        context.licenseReads.listAssignedLicenses(tenantId, key, { fromSeq, limit: top + 1 }),
        context.licenseReads.countAssignedLicenses(tenantId, key),
      ]);
      const value = page.slice(0, top);
      const body: Record<string, unknown> = {
        tokenId,
        adamId,
        pricingParam,
        count,
        value: value.map((l) =>
          l.serialNumber !== null ? { serialNumber: l.serialNumber } : { clientUserId: l.clientUserId },
        ),
      };
      const next = page[top];
      if (next !== undefined) {
        const params = new URLSearchParams({
          adamId,
          pricingParam,
          top: String(top),
          skiptoken: String(next.seq),
        });
        body.nextLink = `${externalBaseOf(request)}${vppdApiPrefix}/tokens/${encodeURIComponent(tokenId)}/licenses?${params.toString()}`;
      }
      return reply.type('application/json').send(body);
    },
  );

  // Reclaim: the plan (what is released, per app) and, unless dryRun, the operations that release it.
  app.post<{ Params: { id: string } }>(
    `${vppdApiPrefix}/tokens/:id/reclaim`,
    { onRequest: write },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const parsed = parseReclaimRequest(request.body);
      const { plan, operations } = await licenseOperations.reclaim(tenantId, request.params.id, parsed);
      return reply
        .status(parsed.dryRun ? 200 : 202)
        .type('application/json')
        .send({
          tokenId: request.params.id,
          dryRun: parsed.dryRun,
          heldCount: plan.held,
          releaseCount: plan.release,
          apps: plan.apps.map((a) => ({
            adamId: a.adamId,
            pricingParam: a.pricingParam,
            heldCount: a.held,
            keptCount: a.kept,
            releaseCount: a.releaseSerialNumbers.length + a.releaseClientUserIds.length,
            releaseSerialNumbers: a.releaseSerialNumbers,
            releaseClientUserIds: a.releaseClientUserIds,
          })),
          operations: operations.map((o) => presentOperation(o)),
        });
    },
  );

  app.get<{ Querystring: Record<string, string | undefined> }>(
    operationsPath,
    { onRequest: read },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const query = request.query;
      for (const name of Object.keys(query)) {
        if (!['tokenId', 'top', 'skiptoken'].includes(name)) {
          throw errors.badRequest(
            `Unknown query parameter '${name.slice(0, 100)}'; use tokenId, top, skiptoken.`,
          );
        }
      }
      const top = query.top === undefined ? defaultTop : Number(query.top);
      if (!Number.isInteger(top) || top < 1 || top > maxTop) {
        throw errors.badRequest(`'top' must be an integer from 1 to ${maxTop}.`);
      }
      const before = query.skiptoken === undefined ? undefined : decodeCursor(query.skiptoken);
      const page = await licenseOperations.store.list(tenantId, {
        limit: top + 1,
        ...(query.tokenId === undefined ? {} : { tokenId: query.tokenId }),
        ...(before === undefined ? {} : { before }),
      });
      const value = page.slice(0, top);
      const body: Record<string, unknown> = { value: value.map((o) => presentOperation(o)) };
      if (page.length > top) {
        const next = new URLSearchParams({
          ...(query.tokenId === undefined ? {} : { tokenId: query.tokenId }),
          top: String(top),
          skiptoken: encodeCursor(value[value.length - 1]!),
        });
        body.nextLink = `${externalBaseOf(request)}${operationsPath}?${next.toString()}`;
      }
      return reply.type('application/json').send(body);
    },
  );

  app.get<{ Params: { id: string } }>(
    `${operationsPath}/:id`,
    { onRequest: read },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const operation = await licenseOperations.store.get(tenantId, request.params.id);
      if (!operation) throw errors.notFound('operation', request.params.id);
      const failures =
        operation.failedCount > 0
          ? await licenseOperations.store.failures(operation.id, maxListedFailures)
          : [];
      return reply.type('application/json').send(presentOperation(operation, failures));
    },
  );
}
