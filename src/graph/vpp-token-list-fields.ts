import {
  appleDeviceDeliveryProtocol,
  vppTokenAccountType,
  vppTokenState,
  vppTokenSyncStatus,
} from '../domain/enums.js';
import type { GraphEnum, GraphVersion } from '../domain/graph-enum.js';
import type { ListField, ListFields } from '../domain/list-query.js';
import { betaOnlyTokenProperties } from '../domain/vpp-token.js';

const field = (
  name: string,
  type: ListField['type'],
  query: boolean,
  graphEnum?: GraphEnum<string>,
): ListField => ({
  name,
  type,
  filterable: query,
  sortable: query,
  ...(graphEnum ? { enum: graphEnum } : {}),
});

/**
 * What `$select`, `$filter` and `$orderby` may name on `vppToken`. `token` may be selected (it reads
 * as null) but never filtered; collections are selectable only.
 */
const allFields: ListFields = {
  id: field('id', 'string', true),
  organizationName: field('organizationName', 'string', true),
  vppTokenAccountType: field('vppTokenAccountType', 'enum', true, vppTokenAccountType),
  appleId: field('appleId', 'string', true),
  expirationDateTime: field('expirationDateTime', 'dateTimeOffset', true),
  lastSyncDateTime: field('lastSyncDateTime', 'dateTimeOffset', true),
  token: field('token', 'string', false),
  lastModifiedDateTime: field('lastModifiedDateTime', 'dateTimeOffset', true),
  state: field('state', 'enum', true, vppTokenState),
  tokenActionResults: field('tokenActionResults', 'collection', false),
  lastSyncStatus: field('lastSyncStatus', 'enum', true, vppTokenSyncStatus),
  automaticallyUpdateApps: field('automaticallyUpdateApps', 'boolean', true),
  countryOrRegion: field('countryOrRegion', 'string', true),
  dataSharingConsentGranted: field('dataSharingConsentGranted', 'boolean', true),
  displayName: field('displayName', 'string', true),
  locationName: field('locationName', 'string', true),
  claimTokenManagementFromExternalMdm: field('claimTokenManagementFromExternalMdm', 'boolean', true),
  roleScopeTagIds: field('roleScopeTagIds', 'collection', false),
  appleDeviceAppDeliveryProtocolType: field(
    'appleDeviceAppDeliveryProtocolType',
    'enum',
    true,
    appleDeviceDeliveryProtocol as GraphEnum<string>,
  ),
};

const v1Fields: ListFields = Object.fromEntries(
  Object.entries(allFields).filter(([name]) => !betaOnlyTokenProperties.includes(name)),
);

/** The query allowlist of `vppToken` for a Graph version (v1.0 lacks beta-only properties). */
export function vppTokenListFields(version: GraphVersion): ListFields {
  return version === 'beta' ? allFields : v1Fields;
}
