import { errors } from './errors.js';

// License operations (issue 15): giving licenses to devices or users (associate) and taking them back
// (disassociate) through Apple's asynchronous calls. Pure rules: request validation, splitting into
// Apple-sized batches, and the status an operation ends in.

export const licenseOperationKinds = ['associate', 'disassociate'] as const;
export type LicenseOperationKind = (typeof licenseOperationKinds)[number];

/** `pending` until a worker first submits it, `running` while Apple's events are open, then one of the ends. */
export const licenseOperationStatuses = [
  'pending',
  'running',
  'completed',
  'failed',
  'partiallyFailed',
] as const;
export type LicenseOperationStatus = (typeof licenseOperationStatuses)[number];

export const holderKinds = ['serialNumber', 'clientUserId'] as const;
/** Devices (`serialNumber`) or users (`clientUserId`): one operation names one kind. */
export type HolderKind = (typeof holderKinds)[number];

export const pricingParams = ['STDQ', 'PLUS'] as const;

/** An asset as Apple identifies it. */
export interface AssetRef {
  readonly adamId: string;
  readonly pricingParam: string;
}

/** A validated associate/disassociate request. */
export interface LicenseOperationRequest {
  readonly kind: LicenseOperationKind;
  readonly assets: readonly AssetRef[];
  readonly holderKind: HolderKind;
  /** Distinct, in the caller's order. */
  readonly holders: readonly string[];
}

/** Apple's per-call limits (`service/config`). */
export interface AssociationLimits {
  readonly maxAssets: number;
  readonly maxSerialNumbers: number;
  readonly maxClientUserIds: number;
}

/** One Apple call of an operation. */
export interface PlannedBatch {
  readonly index: number;
  readonly assets: readonly AssetRef[];
  readonly holders: readonly string[];
  /** Items of the call: assets × holders. */
  readonly requestedCount: number;
}

/** Largest request accepted at once (assets × holders); larger ones are split by the caller. */
export const maxOperationItems = 500_000;
export const maxOperationAssets = 1000;
export const maxOperationHolders = 200_000;
const maxIdLength = 256;
// Printable characters only: ids end up in logs, CSV exports and Apple's JSON.

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks the body of `POST …/associations` / `…/disassociations`; throws badRequest naming the problem. */
export function parseLicenseOperationRequest(
  kind: LicenseOperationKind,
  body: unknown,
): LicenseOperationRequest {
  if (!isRecord(body)) {
    throw errors.badRequest(
      "The body must be a JSON object with 'assets' and either 'serialNumbers' or 'clientUserIds'.",
    );
  }
  for (const name of Object.keys(body)) {
    if (!['assets', 'serialNumbers', 'clientUserIds'].includes(name)) {
      throw errors.badRequest(
        `Unknown property '${name.slice(0, 100)}'; the properties are assets, serialNumbers, clientUserIds.`,
      );
    }
  }
  return {
    kind,
    assets: parseAssets(body.assets),
    ...parseHolders(body.serialNumbers, body.clientUserIds),
  };
}

/** `assets`: 1..1000 distinct `{adamId, pricingParam}` (pricingParam STDQ when absent). */
export function parseAssets(value: unknown): AssetRef[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw errors.badRequest("'assets' must be a non-empty list of { adamId, pricingParam }.");
  }
  if (value.length > maxOperationAssets) {
    throw errors.badRequest(
      `'assets' lists ${value.length} assets; at most ${maxOperationAssets} per operation.`,
    );
  }
  const seen = new Set<string>();
  const assets: AssetRef[] = [];
  value.forEach((entry, i) => {
    if (!isRecord(entry)) throw errors.badRequest(`assets[${i}] must be an object { adamId, pricingParam }.`);
    const { adamId, pricingParam = 'STDQ' } = entry;
    if (typeof adamId !== 'string' || !/^\d{1,20}$/.test(adamId)) {
      throw errors.badRequest(
        `assets[${i}].adamId must be Apple's numeric id as a string, e.g. "361309726".`,
      );
    }
    if (typeof pricingParam !== 'string' || !(pricingParams as readonly string[]).includes(pricingParam)) {
      throw errors.badRequest(`assets[${i}].pricingParam must be ${pricingParams.join(' or ')}.`);
    }
    const key = `${adamId}/${pricingParam}`;
    if (seen.has(key)) return;
    seen.add(key);
    assets.push({ adamId, pricingParam });
  });
  return assets;
}

/** Exactly one of `serialNumbers` and `clientUserIds`, each a non-empty list of ids (duplicates dropped). */
export function parseHolders(
  serialNumbers: unknown,
  clientUserIds: unknown,
): { holderKind: HolderKind; holders: string[] } {
  const hasSerials = serialNumbers !== undefined && serialNumbers !== null;
  const hasUsers = clientUserIds !== undefined && clientUserIds !== null;
  if (hasSerials === hasUsers) {
    throw errors.badRequest("Give exactly one of 'serialNumbers' and 'clientUserIds'.");
  }
  const holderKind: HolderKind = hasSerials ? 'serialNumber' : 'clientUserId';
  const name = hasSerials ? 'serialNumbers' : 'clientUserIds';
  const value = hasSerials ? serialNumbers : clientUserIds;
  if (!Array.isArray(value) || value.length === 0)
    throw errors.badRequest(`'${name}' must be a non-empty list.`);
  if (value.length > maxOperationHolders) {
    throw errors.badRequest(
      `'${name}' lists ${value.length} entries; at most ${maxOperationHolders} per operation.`,
    );
  }
  const holders = new Set<string>();
  value.forEach((id, i) => {
    if (
      typeof id !== 'string' ||
      id.trim() === '' ||
      id.length > maxIdLength ||
      !/^[\x20-\x7e\u00a0-\uffff]+$/.test(id)
    ) {
      throw errors.badRequest(
        `${name}[${i}] must be a non-empty string of at most ${maxIdLength} characters.`,
      );
    }
    holders.add(id.trim());
  });
  return { holderKind, holders: [...holders] };
}

/** Checks the size of a whole request (assets × holders). */
export function checkOperationSize(request: Pick<LicenseOperationRequest, 'assets' | 'holders'>): void {
  const items = request.assets.length * request.holders.length;
  if (items > maxOperationItems) {
    throw errors.badRequest(
      `The operation has ${items} items (assets × holders); at most ${maxOperationItems}. Split it into several operations.`,
    );
  }
}

/**
 * Splits an operation into Apple-sized calls: assets in groups of `maxAssets`, holders in groups of
 * `maxSerialNumbers` (devices) or `maxClientUserIds` (users); each call is one asset group × one holder group.
 */
export function planBatches(
  request: Pick<LicenseOperationRequest, 'assets' | 'holders' | 'holderKind'>,
  limits: AssociationLimits,
): PlannedBatch[] {
  const assetSize = Math.max(1, limits.maxAssets);
  const holderSize = Math.max(
    1,
    request.holderKind === 'serialNumber' ? limits.maxSerialNumbers : limits.maxClientUserIds,
  );
  const batches: PlannedBatch[] = [];
  for (let a = 0; a < request.assets.length; a += assetSize) {
    const assets = request.assets.slice(a, a + assetSize);
    for (let h = 0; h < request.holders.length; h += holderSize) {
      const holders = request.holders.slice(h, h + holderSize);
      batches.push({
        index: batches.length,
        assets,
        holders,
        requestedCount: assets.length * holders.length,
      });
    }
  }
  return batches;
}

/** The status an operation ends in once every batch has Apple's answer. */
export function finalStatus(
  completed: number,
  failed: number,
): Extract<LicenseOperationStatus, 'completed' | 'failed' | 'partiallyFailed'> {
  if (failed === 0) return 'completed';
  if (completed === 0) return 'failed';
  return 'partiallyFailed';
}

/** True for the statuses an operation never leaves. */
export function isFinished(status: LicenseOperationStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'partiallyFailed';
}
