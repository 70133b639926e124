import {
  appleDeviceDeliveryProtocol,
  vppTokenAccountType,
  vppTokenState,
  vppTokenSyncStatus,
} from '../domain/enums.js';
import type { GraphEnum } from '../domain/graph-enum.js';
import type { VppTokenRow } from './database-schema.js';

/** How a property is encoded in its column (see database-schema.ts for the conventions). */
export type ColumnEncoding =
  | { readonly kind: 'id' }
  | { readonly kind: 'text' }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'dateTime' }
  | { readonly kind: 'enum'; readonly enum: GraphEnum<string> }
  | { readonly kind: 'stringCollection' };

export interface ColumnMapping {
  readonly column: keyof VppTokenRow & string;
  readonly encoding: ColumnEncoding;
}

/**
 * Graph property name → column and encoding for the `vpp_tokens` table: the one map query compilers
 * (e.g. `$filter`/`$orderby`) use, so nothing else needs to know column names.
 * `token` (write-only) and `tokenActionResults` (a child table) have no column here.
 */
export const vppTokenColumns = {
  id: { column: 'id', encoding: { kind: 'id' } },
  organizationName: { column: 'organization_name', encoding: { kind: 'text' } },
  vppTokenAccountType: {
    column: 'vpp_token_account_type',
    encoding: { kind: 'enum', enum: vppTokenAccountType },
  },
  appleId: { column: 'apple_id', encoding: { kind: 'text' } },
  expirationDateTime: { column: 'expiration_date_time', encoding: { kind: 'dateTime' } },
  lastSyncDateTime: { column: 'last_sync_date_time', encoding: { kind: 'dateTime' } },
  lastModifiedDateTime: { column: 'last_modified_date_time', encoding: { kind: 'dateTime' } },
  state: { column: 'state', encoding: { kind: 'enum', enum: vppTokenState } },
  lastSyncStatus: { column: 'last_sync_status', encoding: { kind: 'enum', enum: vppTokenSyncStatus } },
  automaticallyUpdateApps: { column: 'automatically_update_apps', encoding: { kind: 'boolean' } },
  countryOrRegion: { column: 'country_or_region', encoding: { kind: 'text' } },
  dataSharingConsentGranted: { column: 'data_sharing_consent_granted', encoding: { kind: 'boolean' } },
  displayName: { column: 'display_name', encoding: { kind: 'text' } },
  locationName: { column: 'location_name', encoding: { kind: 'text' } },
  claimTokenManagementFromExternalMdm: {
    column: 'claim_token_management_from_external_mdm',
    encoding: { kind: 'boolean' },
  },
  roleScopeTagIds: { column: 'role_scope_tag_ids', encoding: { kind: 'stringCollection' } },
  appleDeviceAppDeliveryProtocolType: {
    column: 'apple_device_app_delivery_protocol_type',
    encoding: { kind: 'enum', enum: appleDeviceDeliveryProtocol as GraphEnum<string> },
  },
} as const satisfies Record<string, ColumnMapping>;

export type VppTokenColumnProperty = keyof typeof vppTokenColumns;

/** Stored text of a date: fixed-width ISO-8601 UTC with milliseconds, so text order is time order. */
export function dateToColumn(date: Date): string {
  return date.toISOString();
}

/** The Date of a stored date text. */
export function dateFromColumn(text: string): Date {
  return new Date(text);
}

/** Stored integer of a boolean. */
export function booleanToColumn(value: boolean): number {
  return value ? 1 : 0;
}
