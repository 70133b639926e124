import {
  type AppleDeviceDeliveryProtocol,
  appleDeviceDeliveryProtocol,
  type VppTokenAccountType,
  type VppTokenState,
  type VppTokenSyncStatus,
  vppTokenAccountType,
} from './enums.js';
import { errors, VppdError } from './errors.js';
import type { GraphVersion } from './graph-enum.js';
import type { DecodedSToken } from './stoken.js';
import { neverSynced, type TokenActionResult } from './sync-lifecycle.js';
import { transitionTokenState } from './token-state.js';

/** The Graph type name of the entity. */
export const vppTokenTypeName = 'microsoft.graph.vppToken';

/**
 * A VPP token as vppd knows it: Graph's `vppToken` properties (docs/graph-api.md, "Tokens")
 * plus the tenant it belongs to. The sToken itself is not here: it is a secret kept apart, encrypted.
 */
export interface VppToken {
  readonly id: string;
  readonly tenantId: string;
  readonly organizationName: string | null;
  readonly vppTokenAccountType: VppTokenAccountType;
  readonly appleId: string | null;
  readonly expirationDateTime: Date;
  readonly lastSyncDateTime: Date;
  readonly lastModifiedDateTime: Date;
  readonly state: VppTokenState;
  readonly tokenActionResults: readonly TokenActionResult[];
  readonly lastSyncStatus: VppTokenSyncStatus;
  readonly automaticallyUpdateApps: boolean;
  readonly countryOrRegion: string | null;
  readonly dataSharingConsentGranted: boolean;
  readonly displayName: string | null;
  readonly locationName: string | null;
  readonly claimTokenManagementFromExternalMdm: boolean;
  readonly roleScopeTagIds: readonly string[];
  readonly appleDeviceAppDeliveryProtocolType: AppleDeviceDeliveryProtocol;
}

/** Properties a client may write, on create and on PATCH. `token` is the `.vpptoken` content. */
export const writableTokenProperties = [
  'token',
  'displayName',
  'appleId',
  'vppTokenAccountType',
  'automaticallyUpdateApps',
  'countryOrRegion',
  'dataSharingConsentGranted',
  'claimTokenManagementFromExternalMdm',
  'roleScopeTagIds',
  'appleDeviceAppDeliveryProtocolType',
] as const;
export type WritableTokenProperty = (typeof writableTokenProperties)[number];

/** Properties only the server sets (from the sToken, from Apple, or from syncs). */
export const serverOwnedTokenProperties = [
  'id',
  'organizationName',
  'expirationDateTime',
  'lastSyncDateTime',
  'lastModifiedDateTime',
  'state',
  'tokenActionResults',
  'lastSyncStatus',
  'locationName',
] as const;

/** Properties served only on beta (v1.0 omits them). */
export const betaOnlyTokenProperties: readonly string[] = ['appleDeviceAppDeliveryProtocolType'];

/** A validated write: only the properties the client sent, already decoded. */
export interface TokenWrite {
  readonly token?: string;
  readonly displayName?: string | null;
  readonly appleId?: string | null;
  readonly vppTokenAccountType?: VppTokenAccountType;
  readonly automaticallyUpdateApps?: boolean;
  readonly countryOrRegion?: string | null;
  readonly dataSharingConsentGranted?: boolean;
  readonly claimTokenManagementFromExternalMdm?: boolean;
  readonly roleScopeTagIds?: readonly string[];
  readonly appleDeviceAppDeliveryProtocolType?: AppleDeviceDeliveryProtocol;
}

export interface ValidateTokenWriteOptions {
  /** `create` requires `token`; `update` (PATCH) accepts any subset. */
  readonly mode: 'create' | 'update';
  readonly version?: GraphVersion;
  /** Graph's `Prefer: include-unknown-enum-members` opt-in for evolvable enums. */
  readonly includeUnknownEnumMembers?: boolean;
}

const maxStringLength = 1024;

/**
 * Checks a create/PATCH body against the rule of who owns which property and decodes it.
 *
 * Bodies are often copied from a GET response or from Graph's docs with one field changed, so, as
 * on Graph, what a client cannot mean to write is ignored rather than refused:
 * - annotations: `@odata.context`, `@odata.etag`, `displayName@odata.type`, … (any name holding `@`),
 *   except `@odata.type`, which must still name `microsoft.graph.vppToken` when present;
 * - server-owned (read-only) properties ({@link serverOwnedTokenProperties}: `id`, `state`,
 *   `lastSyncStatus`, `tokenActionResults`, `lastSyncDateTime`, `organizationName`, …), whatever value;
 * - `token: null`, which is what a GET shows for the write-only sToken (so create still needs one).
 * Writable properties are applied. Unknown properties (and beta-only ones on v1.0), wrong types and
 * misspelled enum members are rejected with a typed error naming the property; the `token` value
 * is never echoed.
 */
export function validateTokenWrite(body: unknown, options: ValidateTokenWriteOptions): TokenWrite {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw errors.badRequest('The request body must be a JSON object.');
  }
  const version = options.version ?? 'beta';
  const enumOptions = {
    version,
    includeUnknownEnumMembers: options.includeUnknownEnumMembers ?? false,
  };
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (key === '@odata.type') {
      if (value !== `#${vppTokenTypeName}` && value !== vppTokenTypeName) {
        throw errors.badRequest(`The @odata.type '${String(value)}' is not '#${vppTokenTypeName}'.`);
      }
      continue;
    }
    if (key.includes('@')) continue;
    if ((serverOwnedTokenProperties as readonly string[]).includes(key)) continue;
    if (key === 'token' && value === null) continue;
    if (
      !(writableTokenProperties as readonly string[]).includes(key) ||
      (version === 'v1.0' && betaOnlyTokenProperties.includes(key))
    ) {
      throw errors.unknownProperty(vppTokenTypeName, key);
    }
    out[key] = decodeWritable(key as WritableTokenProperty, value, enumOptions);
  }
  if (options.mode === 'create' && out.token === undefined) {
    throw errors.badRequest("The property 'token' is required: send the content of the .vpptoken file.");
  }
  return out as TokenWrite;
}

function decodeWritable(
  key: WritableTokenProperty,
  value: unknown,
  enumOptions: { version: GraphVersion; includeUnknownEnumMembers: boolean },
): unknown {
  const wrongType = (expected: string) =>
    errors.badRequest(`The property '${key}' must be ${expected}.`, { property: key });
  const withProperty = (error: unknown) => {
    if (error instanceof VppdError) {
      return new VppdError(error.code, `Property '${key}': ${error.message}`, {
        details: { ...error.details, property: key },
      });
    }
    return error;
  };
  switch (key) {
    case 'token':
      // Decoded (and its errors reported) by decodeSToken; here only the type is checked.
      if (typeof value !== 'string') throw wrongType('a string (the .vpptoken file content)');
      return value;
    case 'displayName':
    case 'appleId':
    case 'countryOrRegion':
      if (value === null) return null;
      if (typeof value !== 'string') throw wrongType('a string or null');
      if (value.length > maxStringLength) throw wrongType(`at most ${maxStringLength} characters`);
      return value;
    case 'automaticallyUpdateApps':
    case 'dataSharingConsentGranted':
    case 'claimTokenManagementFromExternalMdm':
      if (typeof value !== 'boolean') throw wrongType('a boolean');
      return value;
    case 'roleScopeTagIds':
      if (
        !Array.isArray(value) ||
        !value.every((v) => typeof v === 'string' && v.length <= maxStringLength)
      ) {
        throw wrongType('an array of strings');
      }
      return [...value];
    case 'vppTokenAccountType':
      try {
        return vppTokenAccountType.fromWire(value, enumOptions);
      } catch (error) {
        throw withProperty(error);
      }
    case 'appleDeviceAppDeliveryProtocolType':
      try {
        return appleDeviceDeliveryProtocol.fromWire(value, enumOptions);
      } catch (error) {
        throw withProperty(error);
      }
    default: {
      const unreachable: never = key;
      throw errors.unknownProperty(vppTokenTypeName, String(unreachable));
    }
  }
}

export interface NewTokenOptions {
  readonly id: string;
  readonly tenantId: string;
  readonly decoded: DecodedSToken;
  readonly write: TokenWrite;
  readonly now: Date;
}

/**
 * A new token from an uploaded sToken, with Graph's defaults: state `unknown`, status `none`,
 * `lastSyncDateTime` at the sentinel, booleans false, no action results yet.
 */
export function createVppToken(options: NewTokenOptions): VppToken {
  const { write, decoded } = options;
  return {
    id: options.id,
    tenantId: options.tenantId,
    organizationName: decoded.orgName,
    vppTokenAccountType: write.vppTokenAccountType ?? 'business',
    appleId: write.appleId ?? null,
    expirationDateTime: decoded.expDate,
    lastSyncDateTime: neverSynced(),
    lastModifiedDateTime: options.now,
    state: 'unknown',
    tokenActionResults: [],
    lastSyncStatus: 'none',
    automaticallyUpdateApps: write.automaticallyUpdateApps ?? false,
    countryOrRegion: write.countryOrRegion ?? null,
    dataSharingConsentGranted: write.dataSharingConsentGranted ?? false,
    displayName: write.displayName ?? null,
    locationName: null,
    claimTokenManagementFromExternalMdm: write.claimTokenManagementFromExternalMdm ?? false,
    roleScopeTagIds: write.roleScopeTagIds ?? [],
    appleDeviceAppDeliveryProtocolType: write.appleDeviceAppDeliveryProtocolType ?? 'default',
  };
}

/**
 * Applies a validated PATCH to a token. A renewed sToken (`decoded`) replaces organization and expiry
 * and resets `state` to `unknown` until Apple has been asked; sync status and history stay.
 */
export function applyTokenWrite(
  token: VppToken,
  write: TokenWrite,
  now: Date,
  decoded?: DecodedSToken,
): VppToken {
  const { token: _secret, ...fields } = write;
  const renewed = decoded
    ? {
        organizationName: decoded.orgName,
        expirationDateTime: decoded.expDate,
        state: transitionTokenState(token.state, { type: 'renewed' }),
      }
    : {};
  return { ...token, ...fields, ...renewed, lastModifiedDateTime: now };
}
