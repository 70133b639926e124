import { errors } from '../domain/errors.js';
import {
  type AssetCountChange,
  purchaseLicenses,
  refundLicenses,
  transferLicenses,
} from './sim-asset-counts.js';
import type { SimState } from './sim-state.js';

/**
 * The admin routes of purchases, refunds, transfers and the notification log (docs/apple-sim.md):
 * `POST /_sim/locations/:id/purchases|refunds|transfers`, `GET /_sim/notifications`. Answers undefined
 * for any other route.
 */
export function serveAssetCountAdmin(
  state: SimState,
  route: string,
  locationId: string | undefined,
  input: Record<string, unknown>,
): { status: number; value: unknown } | undefined {
  switch (route) {
    case 'POST locations/:id/purchases':
      return { status: 200, value: purchaseLicenses(state, locationId!, change(input)) };
    case 'POST locations/:id/refunds':
      return { status: 200, value: refundLicenses(state, locationId!, change(input)) };
    case 'POST locations/:id/transfers': {
      if (typeof input.to !== 'string') throw errors.badRequest('to must be a location id');
      return { status: 200, value: transferLicenses(state, locationId!, { ...change(input), to: input.to }) };
    }
    case 'GET notifications':
      return { status: 200, value: state.notifier.list() };
    default:
      return undefined;
  }
}

function change(input: Record<string, unknown>): AssetCountChange {
  return {
    adamId: input.adamId as string,
    pricingParam: (input.pricingParam ?? 'STDQ') as string,
    count: input.count as number,
  };
}
