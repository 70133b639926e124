import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.js';
import { errors } from '../domain/errors.js';
import type { GraphVersion } from '../domain/graph-enum.js';
import type { ListFields, ListQuery } from '../domain/list-query.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';
import {
  authorize,
  externalUrlOf,
  metadataUrlOf,
  preferencesOf,
  principalOf,
  rawQueryOf,
} from '../http/request.js';
import type { LicenseReadStore, VppAppKey, VppAppPlatform } from '../storage/license-read-store.js';
import { buildNextLink } from './odata/next-link.js';
import { type ListQueryOption, parseListQuery } from './odata/parse-list-query.js';
import {
  assignedLicenseListFields,
  presentAssignedLicense,
  presentVppApp,
  tokenPrefixOfAppId,
  vppAppId,
  vppAppIsOfTypes,
  vppAppListFieldsOf,
  vppAppPlatformsOf,
  vppAppTokenPrefix,
  vppAppTypeNames,
} from './vpp-app-presenter.js';

/** Where the apps live under a version prefix. */
export const mobileAppsPath = '/deviceAppManagement/mobileApps';

const listOptions: readonly ListQueryOption[] = [
  'select',
  'filter',
  'orderby',
  'top',
  'skip',
  'count',
  'skiptoken',
];

/**
 * The read side of VPP apps (docs/graph-api.md, "VPP apps"): `mobileApps` list, `$count` and get,
 * the type-cast segments `microsoft.graph.iosVppApp` / `microsoft.graph.macOsVppApp` on the
 * collection and on an item, `$filter=isof('<type>')`, an app's `assignedLicenses` (keyset-paged in
 * Apple's order) and its `assignments` (always empty: vppd assigns no app to groups; also as
 * `$expand=assignments`). Apps come from the tenant's current license snapshots.
 *
 * v1.0 serves what Graph v1.0 has: `iosVppApp` (without beta's properties) and `assignments`; it has
 * no `macOsVppApp` type and no `assignedLicenses`, so macOS apps are not listed there.
 */
export function registerMobileAppRoutes(
  app: FastifyInstance,
  context: AppContext,
  version: GraphVersion,
): void {
  const { clock, authenticator } = context;
  const platforms = vppAppPlatformsOf(version);
  const listFields = vppAppListFieldsOf(version);
  const isOfTypes = vppAppIsOfTypes(version);
  const expandable = ['assignments'];
  // Without a cast, a version lists only the platforms it has a type for.
  const onlyPlatform = platforms.length === 1 ? platforms[0] : undefined;
  const licenses: LicenseReadStore = context.licenseReads;
  const read = authorize(authenticator, 'read');

  const includeUnknown = (request: FastifyRequest) =>
    preferencesOf(request).has('include-unknown-enum-members');

  const parseAppQuery = (
    request: FastifyRequest,
    allowed: readonly ListQueryOption[],
    typeName: string,
    expand = false,
  ) =>
    parseListQuery(rawQueryOf(request), {
      fields: listFields,
      typeName,
      version,
      allowedOptions: allowed,
      includeUnknownEnumMembers: includeUnknown(request),
      ...(allowed.includes('filter') ? { isOfTypes } : {}),
      ...(expand ? { expandable } : {}),
    });

  /** The key of an app id in the tenant's snapshots (only the token whose prefix matches is read). */
  const resolveApp = async (tenantId: string, id: string): Promise<VppAppKey | undefined> => {
    const prefix = tokenPrefixOfAppId(id);
    if (prefix === undefined) return undefined;
    const wanted = id.toLowerCase();
    for (const pointer of await licenses.snapshotPointers(tenantId)) {
      if (vppAppTokenPrefix(pointer.tokenId) !== prefix) continue;
      const key = (await licenses.appKeys(tenantId, pointer.tokenId)).find((k) => vppAppId(k) === wanted);
      if (key) return key;
    }
    return undefined;
  };

  const loadApp = async (request: FastifyRequest, id: string, platform?: VppAppPlatform) => {
    const { tenantId } = principalOf(request);
    const key = await resolveApp(tenantId, id);
    const record = key ? await licenses.getApp(tenantId, key) : undefined;
    // A cast to a type the app is not names nothing, as on Graph; nor does a type the version lacks.
    if (
      !record ||
      (platform !== undefined && record.platform !== platform) ||
      !platforms.includes(record.platform)
    )
      throw errors.notFound('mobileApp', id);
    return record;
  };

  const sendList = async (request: FastifyRequest, reply: FastifyReply, platform?: VppAppPlatform) => {
    const { tenantId } = principalOf(request);
    const typeName = platform ? vppAppTypeNames[platform] : 'microsoft.graph.mobileApp';
    const query = parseAppQuery(request, listOptions, typeName, true);
    const only = platform ?? onlyPlatform;
    const platformOption = only ? { platform: only } : {};
    const page = await licenses.listApps(tenantId, query, platformOption);
    const body: Record<string, unknown> = {
      '@odata.context': `${metadataUrlOf(request, version)}#deviceAppManagement/mobileApps${
        platform ? `/${vppAppTypeNames[platform]}` : ''
      }${selectSuffix(query)}`,
    };
    if (query.count) body['@odata.count'] = await licenses.countApps(tenantId, query, platformOption);
    if (page.nextOffset !== undefined) {
      body['@odata.nextLink'] = buildNextLink(externalUrlOf(request), query, page.nextOffset);
    }
    body.value = page.rows.map((record) =>
      presentVppApp(record, {
        version,
        ...(query.select ? { select: query.select } : {}),
        ...(query.expand ? { expand: query.expand } : {}),
        includeUnknownEnumMembers: includeUnknown(request),
      }),
    );
    return reply.type('application/json').send(body);
  };

  const sendCount = async (request: FastifyRequest, reply: FastifyReply, platform?: VppAppPlatform) => {
    const { tenantId } = principalOf(request);
    const typeName = platform ? vppAppTypeNames[platform] : 'microsoft.graph.mobileApp';
    const query = parseAppQuery(request, ['filter'], typeName);
    const only = platform ?? onlyPlatform;
    const count = await licenses.countApps(tenantId, query, only ? { platform: only } : {});
    return reply.type('text/plain').send(String(count));
  };

  const sendApp = async (
    request: FastifyRequest<{ Params: { id: string } }>,
    reply: FastifyReply,
    platform?: VppAppPlatform,
  ) => {
    const query = parseAppQuery(
      request,
      ['select'],
      platform ? vppAppTypeNames[platform] : 'microsoft.graph.mobileApp',
      true,
    );
    const record = await loadApp(request, request.params.id, platform);
    const cast = platform ? `/${vppAppTypeNames[platform]}` : '';
    return reply.type('application/json').send({
      '@odata.context': `${metadataUrlOf(request, version)}#deviceAppManagement/mobileApps${cast}${selectSuffix(query)}/$entity`,
      ...presentVppApp(record, {
        version,
        ...(query.select ? { select: query.select } : {}),
        ...(query.expand ? { expand: query.expand } : {}),
        includeUnknownEnumMembers: includeUnknown(request),
      }),
    });
  };

  // vppd assigns no app to groups: every app's assignments are an empty collection.
  const assignmentsPath = `${mobileAppsPath}/:id/assignments`;
  app.get<{ Params: { id: string } }>(assignmentsPath, { onRequest: read }, async (request, reply) => {
    const query = parseListQuery(rawQueryOf(request), {
      fields: assignmentListFields,
      typeName: 'microsoft.graph.mobileAppAssignment',
      version,
      allowedOptions: ['select', 'top', 'skip', 'count', 'skiptoken'],
    });
    const record = await loadApp(request, request.params.id);
    const body: Record<string, unknown> = {
      '@odata.context': `${metadataUrlOf(request, version)}#deviceAppManagement/mobileApps('${vppAppId(record)}')/assignments${selectSuffix(query)}`,
    };
    if (query.count) body['@odata.count'] = 0;
    body.value = [];
    return reply.type('application/json').send(body);
  });
  methodNotAllowed(app, assignmentsPath, ['GET'], clock);

  app.get(mobileAppsPath, { onRequest: read }, (request, reply) => sendList(request, reply));
  app.get(`${mobileAppsPath}/$count`, { onRequest: read }, (request, reply) => sendCount(request, reply));
  app.get<{ Params: { id: string } }>(`${mobileAppsPath}/:id`, { onRequest: read }, (request, reply) =>
    sendApp(request, reply),
  );
  methodNotAllowed(app, mobileAppsPath, ['GET'], clock);
  methodNotAllowed(app, `${mobileAppsPath}/$count`, ['GET'], clock);
  methodNotAllowed(app, `${mobileAppsPath}/:id`, ['GET'], clock);

  // Casts spelled with the namespace (`microsoft.graph.iosVppApp`) or its alias (`graph.iosVppApp`,
  // what the SDK generators put in their URL templates) are the same segment.
  const casts = platforms.flatMap((platform) => [
    { platform, segment: vppAppTypeNames[platform] },
    { platform, segment: vppAppTypeNames[platform].replace(/^microsoft\./, '') },
  ]);
  for (const { platform, segment: castSegment } of casts) {
    const cast = vppAppTypeNames[platform];
    const licensesPath = `${mobileAppsPath}/:id/${castSegment}/assignedLicenses`;
    const servesLicenses = version === 'beta';
    app.get(`${mobileAppsPath}/${castSegment}`, { onRequest: read }, (request, reply) =>
      sendList(request, reply, platform),
    );
    app.get(`${mobileAppsPath}/${castSegment}/$count`, { onRequest: read }, (request, reply) =>
      sendCount(request, reply, platform),
    );
    app.get<{ Params: { id: string } }>(
      `${mobileAppsPath}/:id/${castSegment}`,
      { onRequest: read },
      (request, reply) => sendApp(request, reply, platform),
    );

    methodNotAllowed(app, `${mobileAppsPath}/${castSegment}`, ['GET'], clock);
    methodNotAllowed(app, `${mobileAppsPath}/${castSegment}/$count`, ['GET'], clock);
    methodNotAllowed(app, `${mobileAppsPath}/:id/${castSegment}`, ['GET'], clock);
    // Graph v1.0's iosVppApp has no assignedLicenses.
    if (!servesLicenses) continue;
    app.get<{ Params: { id: string } }>(licensesPath, { onRequest: read }, async (request, reply) => {
      const { tenantId } = principalOf(request);
      const query = parseListQuery(rawQueryOf(request), {
        fields: assignedLicenseListFields,
        typeName: `${cast}AssignedLicense`,
        version,
        // Licenses come in Apple's order; paging is by position ($skiptoken), so $skip has no place.
        allowedOptions: ['select', 'top', 'count', 'skiptoken'],
      });
      const record = await loadApp(request, request.params.id, platform);
      const page = await licenses.listAssignedLicenses(tenantId, record, {
        // The skip token carries the `seq` where the next page starts (keyset paging: no OFFSET scans).
        fromSeq: query.offset,
        limit: query.pageSize + 1,
      });
      const body: Record<string, unknown> = {
        '@odata.context': `${metadataUrlOf(request, version)}#deviceAppManagement/mobileApps('${vppAppId(record)}')/${cast}/assignedLicenses${selectSuffix(query)}`,
      };
      if (query.count) body['@odata.count'] = await licenses.countAssignedLicenses(tenantId, record);
      const next = page.length > query.pageSize && query.pageSize > 0 ? page[query.pageSize] : undefined;
      if (next !== undefined) {
        body['@odata.nextLink'] = buildNextLink(externalUrlOf(request), query, next.seq);
      }
      body.value = page
        .slice(0, query.pageSize)
        .map((license) => presentAssignedLicense(record, platform, license, query.select));
      return reply.type('application/json').send(body);
    });

    methodNotAllowed(app, licensesPath, ['GET'], clock);
  }
}

/** `$select` allowlist of `mobileAppAssignment`: vppd declares its key only (it serves none). */
const assignmentListFields: ListFields = {
  id: { name: 'id', type: 'string', filterable: false, sortable: false },
};

/** `(a,b)` in `@odata.context` when `$select` narrowed the properties. */
function selectSuffix(query: Pick<ListQuery, 'select'>): string {
  return query.select ? `(${query.select.join(',')})` : '';
}
