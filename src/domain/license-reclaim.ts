import { errors } from './errors.js';
import { type AssetRef, parseAssets } from './license-operation.js';

// Reclaiming licenses: every license of the token's snapshot whose holder is not on the keep-list is
// released (optionally only for some apps). Pure: the plan is computed from the snapshot's holders.

/** A validated reclaim request. */
export interface ReclaimRequest {
  /** Devices that keep their licenses. */
  readonly keepSerialNumbers: ReadonlySet<string>;
  /** Users that keep their licenses. */
  readonly keepClientUserIds: ReadonlySet<string>;
  /** Only these apps (all when absent). */
  readonly apps: readonly AssetRef[] | undefined;
  readonly dryRun: boolean;
}

/** What a reclaim releases of one asset. */
export interface ReclaimAppPlan {
  readonly adamId: string;
  readonly pricingParam: string;
  /** Licenses of the asset in the snapshot. */
  readonly held: number;
  readonly kept: number;
  readonly releaseSerialNumbers: readonly string[];
  readonly releaseClientUserIds: readonly string[];
}

export interface ReclaimPlan {
  readonly apps: readonly ReclaimAppPlan[];
  readonly held: number;
  readonly release: number;
}

/** The holders of one asset, as the planner reads them. */
export interface AssetHolders {
  readonly adamId: string;
  readonly pricingParam: string;
  readonly serialNumbers: readonly string[];
  readonly clientUserIds: readonly string[];
}

export const maxKeepListEntries = 1_000_000;

function idList(value: unknown, name: string): Set<string> {
  if (value === undefined || value === null) return new Set();
  if (!Array.isArray(value)) throw errors.badRequest(`'${name}' must be a list of strings.`);
  if (value.length > maxKeepListEntries) {
    throw errors.badRequest(`'${name}' lists ${value.length} entries; at most ${maxKeepListEntries}.`);
  }
  const out = new Set<string>();
  for (const [i, id] of value.entries()) {
    if (typeof id !== 'string' || id.trim() === '' || id.length > 256) {
      throw errors.badRequest(`${name}[${i}] must be a non-empty string of at most 256 characters.`);
    }
    out.add(id.trim());
  }
  return out;
}

/** Checks the body of `POST /vppd/v1/tokens/{id}/reclaim`. */
export function parseReclaimRequest(body: unknown): ReclaimRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw errors.badRequest(
      "The body must be a JSON object with 'keepSerialNumbers' and/or 'keepClientUserIds', optionally 'apps' and 'dryRun'.",
    );
  }
  const record = body as Record<string, unknown>;
  const allowed = ['keepSerialNumbers', 'keepClientUserIds', 'apps', 'dryRun'];
  for (const name of Object.keys(record)) {
    if (!allowed.includes(name)) {
      throw errors.badRequest(
        `Unknown property '${name.slice(0, 100)}'; the properties are ${allowed.join(', ')}.`,
      );
    }
  }
  if (record.keepSerialNumbers === undefined && record.keepClientUserIds === undefined) {
    // Without a keep-list everything would be released: make the caller say so with an empty list.
    throw errors.badRequest(
      "Give 'keepSerialNumbers' and/or 'keepClientUserIds' (an empty list releases every license in scope).",
    );
  }
  if (record.dryRun !== undefined && typeof record.dryRun !== 'boolean') {
    throw errors.badRequest("'dryRun' must be true or false.");
  }
  return {
    keepSerialNumbers: idList(record.keepSerialNumbers, 'keepSerialNumbers'),
    keepClientUserIds: idList(record.keepClientUserIds, 'keepClientUserIds'),
    apps: record.apps === undefined || record.apps === null ? undefined : parseAssets(record.apps),
    dryRun: record.dryRun === true,
  };
}

/** The plan: per asset in scope with licenses, who keeps and who is released. */
export function planReclaim(holders: Iterable<AssetHolders>, request: ReclaimRequest): ReclaimPlan {
  const scope =
    request.apps === undefined
      ? undefined
      : new Set(request.apps.map((a) => `${a.adamId}\u0000${a.pricingParam}`));
  const apps: ReclaimAppPlan[] = [];
  let held = 0;
  let release = 0;
  for (const asset of holders) {
    if (scope !== undefined && !scope.has(`${asset.adamId}\u0000${asset.pricingParam}`)) continue;
    const releaseSerialNumbers = asset.serialNumbers.filter((s) => !request.keepSerialNumbers.has(s));
    const releaseClientUserIds = asset.clientUserIds.filter((u) => !request.keepClientUserIds.has(u));
    const count = asset.serialNumbers.length + asset.clientUserIds.length;
    const released = releaseSerialNumbers.length + releaseClientUserIds.length;
    held += count;
    release += released;
    apps.push({
      adamId: asset.adamId,
      pricingParam: asset.pricingParam,
      held: count,
      kept: count - released,
      releaseSerialNumbers,
      releaseClientUserIds,
    });
  }
  return { apps, held, release };
}
