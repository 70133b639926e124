import { createHash } from 'node:crypto';
import { appleDeviceDeliveryProtocol, vppTokenAccountType } from '../domain/enums.js';
import type { GraphVersion } from '../domain/graph-enum.js';
import type { ListField, ListFields } from '../domain/list-query.js';
import type {
  AssignedLicenseRecord,
  VppAppKey,
  VppAppPlatform,
  VppAppRecord,
} from '../storage/license-read-store.js';
import { wireDate } from './vpp-token-presenter.js';

/** Graph's type names of the VPP apps, by platform. */
export const vppAppTypeNames = {
  iOS: 'microsoft.graph.iosVppApp',
  macOS: 'microsoft.graph.macOsVppApp',
} as const satisfies Record<VppAppPlatform, string>;
export type VppAppTypeName = (typeof vppAppTypeNames)[VppAppPlatform];

// ---- stable ids -----------------------------------------------------------------------------------
//
// An app's id is a name-based (UUIDv5-style, SHA-1) GUID of (token, adamId, pricingParam), so it is the
// same across syncs and processes without being stored. Its first 48 bits hash the token id alone:
// looking an id up only needs the apps of the one token whose prefix matches, not every app of the
// tenant.

function sha1(text: string): Buffer {
  return createHash('sha1').update(text, 'utf8').digest();
}

function formatGuid(bytes: Buffer): string {
  const hex = bytes.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function nameBasedGuid(prefix: Buffer, name: string): string {
  const bytes = Buffer.alloc(16);
  prefix.copy(bytes, 0, 0, 6);
  sha1(name).copy(bytes, 6, 0, 10);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50; // version 5 (name-based, SHA-1)
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80; // RFC 4122 variant
  return formatGuid(bytes);
}

const tokenPrefixBytes = (tokenId: string) => sha1(`vppd:vppApp:token:${tokenId.toLowerCase()}`);

/** The first 12 hex digits every app id of a token starts with. */
export function vppAppTokenPrefix(tokenId: string): string {
  return tokenPrefixBytes(tokenId).subarray(0, 6).toString('hex');
}

/** The 12-hex-digit token prefix of an app id, or undefined when the text is not a GUID. */
export function tokenPrefixOfAppId(id: string): string | undefined {
  const m = /^([0-9a-f]{8})-([0-9a-f]{4})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.exec(id.toLowerCase());
  return m ? `${m[1]}${m[2]}` : undefined;
}

/** The stable GUID of a VPP app (token × adamId × pricing param). */
export function vppAppId(key: VppAppKey): string {
  return nameBasedGuid(
    tokenPrefixBytes(key.tokenId),
    `vppd:vppApp:${key.tokenId.toLowerCase()}\n${key.adamId}\n${key.pricingParam}`,
  );
}

/** The stable GUID of one license of an app (its holder is a device serial or a client user id). */
export function assignedLicenseId(key: VppAppKey, license: AssignedLicenseRecord): string {
  const holder =
    license.serialNumber !== null ? `device\n${license.serialNumber}` : `user\n${license.clientUserId ?? ''}`;
  return nameBasedGuid(
    tokenPrefixBytes(key.tokenId),
    `vppd:vppLicense:${key.tokenId.toLowerCase()}\n${key.adamId}\n${key.pricingParam}\n${holder}`,
  );
}

// ---- apps -----------------------------------------------------------------------------------------

/** The properties vppd writes for a VPP app, in order (Graph's `mobileApp` ones first). */
export const vppAppWireProperties = [
  'id',
  'displayName',
  'description',
  'publisher',
  'largeIcon',
  'createdDateTime',
  'lastModifiedDateTime',
  'isFeatured',
  'privacyInformationUrl',
  'informationUrl',
  'owner',
  'developer',
  'notes',
  'publishingState',
  'roleScopeTagIds',
  'usedLicenseCount',
  'totalLicenseCount',
  'releaseDateTime',
  'appStoreUrl',
  'licensingType',
  'applicableDeviceType',
  'vppTokenOrganizationName',
  'vppTokenAccountType',
  'vppTokenAppleId',
  'bundleId',
  'vppTokenId',
  'vppTokenDisplayName',
  'revokeLicenseActionResults',
  'appleDeviceAppDeliveryProtocolType',
] as const;
export type VppAppWireProperty = (typeof vppAppWireProperties)[number];

// `applicableDeviceType` exists on iosVppApp only.
const iosOnlyProperties: readonly VppAppWireProperty[] = ['applicableDeviceType'];

/** Properties Graph's v1.0 `mobileApp`/`iosVppApp` do not have (beta added them). */
export const betaOnlyVppAppProperties: readonly VppAppWireProperty[] = [
  'roleScopeTagIds',
  'vppTokenId',
  'vppTokenDisplayName',
  'revokeLicenseActionResults',
  'appleDeviceAppDeliveryProtocolType',
];

/** The VPP app platforms each version has a type for: v1.0 has `iosVppApp` only (no `macOsVppApp`). */
export const vppAppPlatformsOf = (version: GraphVersion): readonly VppAppPlatform[] =>
  version === 'beta' ? ['iOS', 'macOS'] : ['iOS'];

/** The properties a version writes for an app of a platform, in order. */
export function vppAppPropertiesOf(version: GraphVersion, platform: VppAppPlatform): VppAppWireProperty[] {
  return vppAppWireProperties.filter(
    (p) =>
      (platform === 'iOS' || !iosOnlyProperties.includes(p)) &&
      (version === 'beta' || !betaOnlyVppAppProperties.includes(p)),
  );
}

/**
 * Graph's other `mobileApp` types (Win32, LOB, store apps, ...): vppd serves none of them, so
 * `isof('<one of these>')` is false for every item rather than an unknown type.
 */
const otherMobileAppTypes: Readonly<Record<GraphVersion, readonly string[]>> = {
  'v1.0': [
    'androidLobApp',
    'androidStoreApp',
    'iosLobApp',
    'iosStoreApp',
    'macOSLobApp',
    'macOSMicrosoftEdgeApp',
    'macOSOfficeSuiteApp',
    'managedAndroidLobApp',
    'managedAndroidStoreApp',
    'managedApp',
    'managedIOSLobApp',
    'managedIOSStoreApp',
    'managedMobileLobApp',
    'microsoftStoreForBusinessApp',
    'mobileLobApp',
    'webApp',
    'win32LobApp',
    'windowsMicrosoftEdgeApp',
    'windowsMobileMSI',
    'windowsUniversalAppX',
  ],
  beta: [
    'androidAospReferencedApp',
    'androidForWorkApp',
    'androidLobApp',
    'androidManagedStoreApp',
    'androidManagedStoreWebApp',
    'androidStoreApp',
    'iosiPadOSWebClip',
    'iosLobApp',
    'iosStoreApp',
    'macOSDmgApp',
    'macOSLobApp',
    'macOSMicrosoftDefenderApp',
    'macOSMicrosoftEdgeApp',
    'macOSOfficeSuiteApp',
    'macOSPkgApp',
    'macOSWebClip',
    'managedAndroidLobApp',
    'managedAndroidStoreApp',
    'managedApp',
    'managedIOSLobApp',
    'managedIOSStoreApp',
    'managedMobileLobApp',
    'microsoftStoreForBusinessApp',
    'mobileLobApp',
    'officeSuiteApp',
    'webApp',
    'win32CatalogApp',
    'win32LobApp',
    'windowsAppX',
    'windowsAutoUpdateCatalogApp',
    'windowsMicrosoftEdgeApp',
    'windowsMobileMSI',
    'windowsPhone81AppX',
    'windowsPhone81AppXBundle',
    'windowsPhone81StoreApp',
    'windowsPhoneXAP',
    'windowsStoreApp',
    'windowsUniversalAppX',
    'windowsWebApp',
    'winGetApp',
  ],
};

/**
 * `isof('<type>')` on mobileApps: the base type holds every VPP app the version serves, each VPP app
 * type its own platform, Graph's other app types (`managedApp`, `win32LobApp`, ...) none.
 */
export function vppAppIsOfTypes(version: GraphVersion): Record<string, readonly string[]> {
  const platforms = vppAppPlatformsOf(version);
  const table: Record<string, readonly string[]> = {
    'microsoft.graph.mobileApp': platforms.map((p) => vppAppTypeNames[p]),
  };
  for (const platform of platforms) table[vppAppTypeNames[platform]] = [vppAppTypeNames[platform]];
  for (const name of otherMobileAppTypes[version]) table[`microsoft.graph.${name}`] = [];
  return table;
}

const queryable = new Set(['displayName', 'bundleId', 'vppTokenId', 'totalLicenseCount', 'usedLicenseCount']);
const int32Properties = new Set(['totalLicenseCount', 'usedLicenseCount']);

/**
 * What `$select`, `$filter` and `$orderby` may name on VPP apps of a version: every property it
 * writes may be selected; `displayName`, `bundleId`, `vppTokenId` (beta) and the two license counts
 * may be filtered and ordered.
 */
export function vppAppListFieldsOf(version: GraphVersion): ListFields {
  return Object.fromEntries(
    vppAppWireProperties
      .filter((name) => version === 'beta' || !betaOnlyVppAppProperties.includes(name))
      .map((name): [string, ListField] => [
        name,
        {
          name,
          type: int32Properties.has(name) ? 'int32' : queryable.has(name) ? 'string' : 'collection',
          filterable: queryable.has(name),
          sortable: queryable.has(name),
        },
      ]),
  );
}

export interface PresentVppAppOptions {
  readonly version: GraphVersion;
  readonly select?: readonly string[];
  readonly includeUnknownEnumMembers?: boolean;
  /** `$expand=assignments`: vppd assigns no app to groups, so the expanded collection is empty. */
  readonly expand?: readonly string[];
}

/**
 * Converts a VPP app to Graph JSON (`#microsoft.graph.iosVppApp` or `#microsoft.graph.macOsVppApp`).
 * What vppd does not know (description, publisher, icons, release date, ...) is null, never guessed.
 */
export function presentVppApp(app: VppAppRecord, options: PresentVppAppOptions): Record<string, unknown> {
  const enumOptions = {
    version: options.version,
    includeUnknownEnumMembers: options.includeUnknownEnumMembers ?? false,
  };
  const all: Record<VppAppWireProperty, unknown> = {
    id: vppAppId(app),
    displayName: app.name,
    description: null,
    publisher: null,
    largeIcon: null,
    // The data is as of the snapshot that holds it; vppd keeps no earlier history of an app.
    createdDateTime: wireDate(app.snapshotCommittedAt),
    lastModifiedDateTime: wireDate(app.snapshotCommittedAt),
    isFeatured: false,
    privacyInformationUrl: null,
    informationUrl: null,
    owner: null,
    developer: null,
    notes: null,
    // Licensed store apps are published as soon as Apple lists them.
    publishingState: 'published',
    roleScopeTagIds: [],
    usedLicenseCount: app.assignedCount,
    totalLicenseCount: app.totalCount,
    releaseDateTime: null,
    appStoreUrl: appStoreUrlOf(app),
    licensingType: licensingTypeOf(app, options.version),
    applicableDeviceType: applicableDeviceTypeOf(app),
    vppTokenOrganizationName: app.token.organizationName,
    vppTokenAccountType: vppTokenAccountType.toWire(app.token.accountType, enumOptions),
    vppTokenAppleId: app.token.appleId,
    bundleId: app.bundleId,
    vppTokenId: app.tokenId,
    vppTokenDisplayName: app.token.displayName,
    revokeLicenseActionResults: [],
    appleDeviceAppDeliveryProtocolType: appleDeviceDeliveryProtocol.toWire(
      app.token.deliveryProtocol,
      enumOptions,
    ),
  };
  const out: Record<string, unknown> = { '@odata.type': `#${vppAppTypeNames[app.platform]}` };
  const selected = options.select ? new Set(['id', ...options.select]) : undefined;
  for (const property of vppAppPropertiesOf(options.version, app.platform)) {
    if (selected && !selected.has(property)) continue;
    out[property] = all[property];
  }
  if (options.expand?.includes('assignments')) out.assignments = [];
  return out;
}

/** Apple's public store page of an adamId (`apps.apple.com/<country>/app/id<adamId>`). */
function appStoreUrlOf(app: VppAppRecord): string | null {
  if (!/^\d+$/.test(app.adamId)) return null;
  const country = app.token.countryOrRegion?.toLowerCase();
  const path = country && /^[a-z]{2}$/.test(country) ? `${country}/` : '';
  return `https://apps.apple.com/${path}app/id${app.adamId}`;
}

/**
 * Apple assigns any app license to a user; to a device only when the asset is `deviceAssignable`.
 * When Apple did not say, the licensing type is unknown: null.
 */
function licensingTypeOf(app: VppAppRecord, version: GraphVersion): Record<string, unknown> | null {
  if (app.deviceAssignable === null) return null;
  // v1.0's vppLicensingType has only the `supports…` pair; beta keeps the older `support…` one too.
  return {
    ...(version === 'beta'
      ? { supportUserLicensing: true, supportDeviceLicensing: app.deviceAssignable }
      : {}),
    supportsUserLicensing: true,
    supportsDeviceLicensing: app.deviceAssignable,
  };
}

/** iPad / iPhone from the lookup's device families; null until the lookup knew the app. */
function applicableDeviceTypeOf(app: VppAppRecord): Record<string, unknown> | null {
  if (app.deviceFamilies === null) return null;
  const families = app.deviceFamilies.map((f) => f.toLowerCase());
  return {
    iPad: families.includes('ipad'),
    iPhoneAndIPod: families.includes('iphone') || families.includes('ipod'),
  };
}

// ---- assigned licenses ----------------------------------------------------------------------------

/** Properties of an assigned license (device licenses add the last two). */
export const assignedLicenseWireProperties = [
  'id',
  'userEmailAddress',
  'userId',
  'userName',
  'userPrincipalName',
  'deviceName',
  'managedDeviceId',
] as const;

/** `$select` allowlist of assigned licenses (no filtering or ordering: they come in Apple's order). */
export const assignedLicenseListFields: ListFields = Object.fromEntries(
  assignedLicenseWireProperties.map((name): [string, ListField] => [
    name,
    { name, type: 'string', filterable: false, sortable: false },
  ]),
);

/**
 * Converts a license to Graph JSON. On iOS a device license is `#microsoft.graph.iosVppAppAssignedDeviceLicense`
 * and a user license `#microsoft.graph.iosVppAppAssignedUserLicense` (`userId` = Apple's clientUserId);
 * macOS has one type. vppd is not an MDM: it knows no device names, managed device ids or user
 * e-mail addresses, so those are null.
 */
export function presentAssignedLicense(
  key: VppAppKey,
  platform: VppAppPlatform,
  license: AssignedLicenseRecord,
  select?: readonly string[],
): Record<string, unknown> {
  const isDevice = license.serialNumber !== null;
  const typeName =
    platform === 'macOS'
      ? 'microsoft.graph.macOsVppAppAssignedLicense'
      : isDevice
        ? 'microsoft.graph.iosVppAppAssignedDeviceLicense'
        : 'microsoft.graph.iosVppAppAssignedUserLicense';
  const all: Record<string, unknown> = {
    id: assignedLicenseId(key, license),
    userEmailAddress: null,
    userId: isDevice ? null : license.clientUserId,
    userName: null,
    userPrincipalName: null,
    ...(platform === 'iOS' && isDevice ? { deviceName: null, managedDeviceId: null } : {}),
  };
  const out: Record<string, unknown> = { '@odata.type': `#${typeName}` };
  const selected = select ? new Set(['id', ...select]) : undefined;
  for (const [property, value] of Object.entries(all)) {
    if (selected && !selected.has(property)) continue;
    out[property] = value;
  }
  return out;
}
