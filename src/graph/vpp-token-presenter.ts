import {
  actionState,
  appleDeviceDeliveryProtocol,
  vppTokenAccountType,
  vppTokenActionFailureReason,
  vppTokenState,
  vppTokenSyncStatus,
} from '../domain/enums.js';
import { formatGraphDateTime } from '../domain/graph-date-time.js';
import type { GraphVersion } from '../domain/graph-enum.js';
import type { TokenActionResult } from '../domain/sync-lifecycle.js';
import { betaOnlyTokenProperties, type VppToken, vppTokenTypeName } from '../domain/vpp-token.js';

/** Properties of `vppToken` in the order vppd writes them (Graph's order). */
export const vppTokenWireProperties = [
  'id',
  'organizationName',
  'vppTokenAccountType',
  'appleId',
  'expirationDateTime',
  'lastSyncDateTime',
  'token',
  'lastModifiedDateTime',
  'state',
  'tokenActionResults',
  'lastSyncStatus',
  'automaticallyUpdateApps',
  'countryOrRegion',
  'dataSharingConsentGranted',
  'displayName',
  'locationName',
  'claimTokenManagementFromExternalMdm',
  'roleScopeTagIds',
  'appleDeviceAppDeliveryProtocolType',
] as const;
export type VppTokenWireProperty = (typeof vppTokenWireProperties)[number];

/** The properties a version serves (v1.0 omits beta-only ones). */
export function vppTokenPropertiesFor(version: GraphVersion): readonly VppTokenWireProperty[] {
  return version === 'beta'
    ? vppTokenWireProperties
    : vppTokenWireProperties.filter((p) => !betaOnlyTokenProperties.includes(p));
}

export interface PresentOptions {
  readonly version: GraphVersion;
  /** `$select`: only these properties (id is always kept, as Graph does). */
  readonly select?: readonly string[];
  readonly includeUnknownEnumMembers?: boolean;
}

/** Graph's wire form of a date (see {@link formatGraphDateTime}): `2025-03-02T06:54:05Z`. */
export function wireDate(date: Date): string {
  return formatGraphDateTime(date);
}

/** Converts a token to its Graph JSON (without `@odata.context`); `token` is always null. */
export function presentVppToken(token: VppToken, options: PresentOptions): Record<string, unknown> {
  const enumOptions = {
    version: options.version,
    includeUnknownEnumMembers: options.includeUnknownEnumMembers ?? false,
  };
  const all: Record<VppTokenWireProperty, unknown> = {
    id: token.id,
    organizationName: token.organizationName,
    vppTokenAccountType: vppTokenAccountType.toWire(token.vppTokenAccountType, enumOptions),
    appleId: token.appleId,
    expirationDateTime: wireDate(token.expirationDateTime),
    lastSyncDateTime: wireDate(token.lastSyncDateTime),
    // Write-only: the sToken is a bearer secret and never leaves vppd.
    token: null,
    lastModifiedDateTime: wireDate(token.lastModifiedDateTime),
    state: vppTokenState.toWire(token.state, enumOptions),
    tokenActionResults: token.tokenActionResults.map((r) => presentActionResult(r, enumOptions)),
    lastSyncStatus: vppTokenSyncStatus.toWire(token.lastSyncStatus, enumOptions),
    automaticallyUpdateApps: token.automaticallyUpdateApps,
    countryOrRegion: token.countryOrRegion,
    dataSharingConsentGranted: token.dataSharingConsentGranted,
    displayName: token.displayName,
    locationName: token.locationName,
    claimTokenManagementFromExternalMdm: token.claimTokenManagementFromExternalMdm,
    roleScopeTagIds: [...token.roleScopeTagIds],
    appleDeviceAppDeliveryProtocolType: appleDeviceDeliveryProtocol.toWire(
      token.appleDeviceAppDeliveryProtocolType,
      enumOptions,
    ),
  };
  const out: Record<string, unknown> = { '@odata.type': `#${vppTokenTypeName}` };
  const selected = options.select ? new Set(['id', ...options.select]) : undefined;
  for (const property of vppTokenPropertiesFor(options.version)) {
    if (selected && !selected.has(property)) continue;
    out[property] = all[property];
  }
  return out;
}

/** An action result; the derived revoke type carries `@odata.type` with `#` (Kiota needs it). */
function presentActionResult(
  result: TokenActionResult,
  enumOptions: { version: GraphVersion; includeUnknownEnumMembers: boolean },
): Record<string, unknown> {
  const base = {
    actionName: result.actionName,
    actionState: actionState.toWire(result.actionState, enumOptions),
    startDateTime: wireDate(result.startDateTime),
    lastUpdatedDateTime: wireDate(result.lastUpdatedDateTime),
  };
  if (!result.revoke) return base;
  return {
    '@odata.type': '#microsoft.graph.vppTokenRevokeLicensesActionResult',
    ...base,
    actionFailureReason: vppTokenActionFailureReason.toWire(result.revoke.actionFailureReason, enumOptions),
    totalLicensesCount: result.revoke.totalLicensesCount,
    failedLicensesCount: result.revoke.failedLicensesCount,
  };
}
