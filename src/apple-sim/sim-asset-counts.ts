import { errors } from '../domain/errors.js';
import type { BaseAsset } from './sim-base-data.js';
import type { SimLocation } from './sim-location.js';
import type { SimState } from './sim-state.js';

// Purchases, refunds and transfers of licenses: what an administrator does in Apple School or Business
// Manager. They change an asset's totalCount (never its assignments) and Apple announces each change
// with an ASSET_COUNT notification `{adamId, pricingParam, countDelta}` to the subscribed location.

/** Which asset and how many licenses (a positive count). */
export interface AssetCountChange {
  readonly adamId: string;
  readonly pricingParam: string;
  readonly count: number;
}

/** The asset's counts after the change, and the notification sent (undefined when not subscribed). */
export interface AssetCountResult {
  readonly locationId: string;
  readonly adamId: string;
  readonly pricingParam: string;
  readonly totalCount: number;
  readonly assignedCount: number;
  readonly availableCount: number;
  readonly notificationId: string | undefined;
}

/** Buys `count` more licenses of an asset the location already holds. */
export function purchaseLicenses(
  state: SimState,
  locationId: string,
  change: AssetCountChange,
): AssetCountResult {
  const location = state.location(locationId);
  const asset = limitedAsset(location, change);
  return apply(state, location, asset, change.count);
}

/** Refunds `count` unassigned licenses (at most the available ones). */
export function refundLicenses(
  state: SimState,
  locationId: string,
  change: AssetCountChange,
): AssetCountResult {
  const location = state.location(locationId);
  const asset = limitedAsset(location, change);
  requireAvailable(location, asset, change.count);
  return apply(state, location, asset, -change.count);
}

/**
 * Moves `count` unassigned licenses to another location holding the same asset: two ASSET_COUNT
 * notifications, a negative one for the source and a positive one for the target.
 */
export function transferLicenses(
  state: SimState,
  locationId: string,
  change: AssetCountChange & { readonly to: string },
): { readonly from: AssetCountResult; readonly to: AssetCountResult } {
  const source = state.location(locationId);
  const target = state.location(change.to);
  if (source === target) throw errors.badRequest('a transfer needs two different locations');
  const sourceAsset = limitedAsset(source, change);
  const targetAsset = limitedAsset(target, change);
  requireAvailable(source, sourceAsset, change.count);
  return {
    from: apply(state, source, sourceAsset, -change.count),
    to: apply(state, target, targetAsset, change.count),
  };
}

function limitedAsset(location: SimLocation, change: AssetCountChange): BaseAsset {
  if (typeof change.adamId !== 'string' || typeof change.pricingParam !== 'string') {
    throw errors.badRequest('adamId and pricingParam must be strings');
  }
  if (!Number.isInteger(change.count) || change.count < 1 || change.count > 1_000_000) {
    throw errors.badRequest('count must be an integer from 1 to 1000000');
  }
  const asset = location.findAsset(change.adamId, change.pricingParam);
  if (asset === undefined) {
    throw errors.badRequest(
      `location ${location.id} holds no asset ${change.adamId} (${change.pricingParam})`,
    );
  }
  if (asset.unlimited) throw errors.badRequest(`asset ${change.adamId} has unlimited licenses`);
  return asset;
}

function requireAvailable(location: SimLocation, asset: BaseAsset, count: number): void {
  const available = location.availableCount(asset);
  if (count > available) {
    throw errors.badRequest(`only ${available} licenses of ${asset.adamId} are unassigned in ${location.id}`);
  }
}

function apply(state: SimState, location: SimLocation, asset: BaseAsset, delta: number): AssetCountResult {
  location.changePurchased(asset, delta);
  const notificationId = state.notifier.notify(location, 'ASSET_COUNT', {
    adamId: asset.adamId,
    countDelta: delta,
    pricingParam: asset.pricingParam,
  });
  return {
    locationId: location.id,
    adamId: asset.adamId,
    pricingParam: asset.pricingParam,
    totalCount: location.totalCount(asset),
    assignedCount: location.assignedCount(asset),
    availableCount: location.availableCount(asset),
    notificationId,
  };
}
