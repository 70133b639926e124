import { errors } from '../domain/errors.js';
import { type CatalogItem, catalogItem } from './sim-catalog.js';
import { hashString, mixHash, unitHash } from './sim-random.js';

// A location's seeded data as Apple held it when the simulator started. Assets are few and held in
// memory; assignments and users are computed from their index on demand: assignment i belongs to the
// asset whose cumulative range contains i, and its serial number or clientUserId is derived from its
// position inside that asset. Everything here is immutable; mutations live in an overlay (SimLocation).

export const pricingParams = ['STDQ', 'PLUS'] as const;
export type PricingParam = (typeof pricingParams)[number];

/** Free apps Apple lets you take without limit report this totalCount (2^31 - 1). */
export const unlimitedTotalCount = 2147483647;

export interface BaseAsset {
  readonly index: number;
  readonly item: CatalogItem;
  readonly adamId: string;
  readonly pricingParam: PricingParam;
  readonly deviceAssignable: boolean;
  readonly revocable: boolean;
  /** True for free assets Apple reports with totalCount 2147483647. */
  readonly unlimited: boolean;
  /** Licenses bought (ignored when unlimited). */
  readonly purchasedCount: number;
  readonly retiredCount: number;
  /** Seeded assignments of this asset, and the first assignment index (cumulative). */
  readonly baseAssigned: number;
  readonly firstAssignment: number;
  /** The first `userAssigned` of its assignments are user licenses, the rest device licenses. */
  readonly userAssigned: number;
  /** Offsets that spread this asset's licenses over the device and user pools. */
  readonly deviceOffset: number;
  readonly userOffset: number;
  /** `{"adamId":"…","pricingParam":"…",` — the fixed head of each assignment's JSON. */
  readonly jsonHead: string;
}

export interface BaseUser {
  readonly clientUserId: string;
  readonly userId: string;
  readonly email: string;
  readonly status: 'Registered' | 'Associated' | 'Retired';
  readonly idHash?: string;
  readonly inviteCode?: string;
}

export interface BaseDataSizes {
  readonly assets: number;
  readonly assignments: number;
  readonly users: number;
}

const serialSpace = 36 ** 8;
const serialMultiplier = 7919;
const serialInverse = Number(modInverse(BigInt(serialMultiplier), BigInt(serialSpace)));
const userSpace = 16 ** 12;
const userMultiplier = 104729;
const userInverse = Number(modInverse(BigInt(userMultiplier), BigInt(userSpace)));
const letters = 'ABCDEFGHJKLMNPQRSTUVWXYZ';

function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [a, m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  return ((oldS % m) + m) % m;
}

function mulMod(a: number, b: number, m: number): number {
  const product = a * b;
  // Plain arithmetic while exact (the hot path); BigInt only for huge indices or inverses.
  if (product <= Number.MAX_SAFE_INTEGER) return product % m;
  return Number((BigInt(a) * BigInt(b)) % BigInt(m));
}

/** The immutable seeded data of one location. */
export class BaseData {
  readonly key: number;
  readonly assets: readonly BaseAsset[];
  readonly assignmentCount: number;
  readonly userCount: number;
  /** Users with status Associated: indices [0, associatedUsers). Only they hold seeded user licenses. */
  readonly associatedUsers: number;
  /** Users with status Registered: indices [associatedUsers, associatedUsers + registeredUsers). */
  readonly registeredUsers: number;
  /** Size of the device pool serial numbers are drawn from. */
  readonly deviceCount: number;
  private readonly starts: Float64Array;
  private readonly serialPrefix: string;
  private readonly userPrefix: string;
  private readonly orgDomain: string;

  constructor(seedKey: number, locationId: string, sizes: BaseDataSizes) {
    for (const [name, value] of Object.entries(sizes)) {
      if (!Number.isSafeInteger(value) || value < 0) {
        throw errors.config(`apple-sim location ${locationId}`, `${name} must be a non-negative integer`);
      }
    }
    this.key = mixHash(seedKey, hashString(locationId));
    const key = this.key;
    this.userCount = sizes.users;
    this.associatedUsers = Math.round(sizes.users * 0.8);
    this.registeredUsers = Math.round(sizes.users * 0.12);
    this.serialPrefix = `${letters[key % letters.length]}${letters[(key >>> 8) % letters.length]}${(key >>> 16) % 10}${letters[(key >>> 20) % letters.length]}`;
    this.userPrefix = `${key.toString(16).padStart(8, '0')}-${(mixHash(key, 1) & 0xffff).toString(16).padStart(4, '0')}-4${(mixHash(key, 2) & 0xfff).toString(16).padStart(3, '0')}-a${(mixHash(key, 3) & 0xfff).toString(16).padStart(3, '0')}-`;
    this.orgDomain = `${locationId.toLowerCase().replace(/[^a-z0-9]+/g, '-')}.example.org`;

    const drafts = draftAssets(seedKey, key, sizes.assets);
    const counts = distribute(
      sizes.assignments,
      drafts.map((d) => d.weight),
      drafts.map((d) => (d.deviceAssignable ? Number.POSITIVE_INFINITY : this.associatedUsers)),
      locationId,
    );
    this.assignmentCount = sizes.assignments;
    this.starts = new Float64Array(drafts.length + 1);
    let deviceMax = 0;
    const userShares = drafts.map((d, k) => {
      const count = counts[k]!;
      if (!d.deviceAssignable) return count;
      return Math.min(Math.floor(count * 0.3 * unitHash(key, k, 40)), this.associatedUsers);
    });
    for (let k = 0; k < drafts.length; k++) {
      this.starts[k + 1] = this.starts[k]! + counts[k]!;
      deviceMax = Math.max(deviceMax, counts[k]! - userShares[k]!);
    }
    // A few more devices than the busiest asset needs, so devices hold different sets of apps.
    this.deviceCount = Math.max(1, Math.ceil(deviceMax * 1.25));
    this.assets = drafts.map((d, k) => {
      const baseAssigned = counts[k]!;
      const spare = Math.floor(unitHash(key, k, 41) * 40) + (unitHash(key, k, 42) < 0.1 ? 0 : 5);
      // About one asset in ten is fully used (availableCount 0) to exercise "not enough licenses".
      const purchasedCount = unitHash(key, k, 43) < 0.1 ? baseAssigned : baseAssigned + spare;
      return {
        index: k,
        item: d.item,
        adamId: d.item.adamId,
        pricingParam: d.pricingParam,
        deviceAssignable: d.deviceAssignable,
        revocable: d.item.productType === 'App',
        unlimited: d.unlimited,
        purchasedCount,
        retiredCount: unitHash(key, k, 44) < 0.2 ? mixHash(key, k, 45) % 5 : 0,
        baseAssigned,
        firstAssignment: this.starts[k]!,
        userAssigned: userShares[k]!,
        deviceOffset: mixHash(key, k, 46) % this.deviceCount,
        userOffset: this.associatedUsers === 0 ? 0 : mixHash(key, k, 47) % this.associatedUsers,
        jsonHead: `{"adamId":"${d.item.adamId}","pricingParam":"${d.pricingParam}",`,
      };
    });
  }

  /** The asset holding seeded assignment `i` (binary search over the cumulative counts). */
  assetOfAssignment(i: number): BaseAsset {
    let lo = 0;
    let hi = this.assets.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.starts[mid]! <= i) lo = mid;
      else hi = mid - 1;
    }
    return this.assets[lo]!;
  }

  /** The holder of seeded assignment `i` of `asset`: a serial number or a clientUserId. */
  holderOf(asset: BaseAsset, i: number): { serialNumber?: string; clientUserId?: string } {
    const j = i - asset.firstAssignment;
    if (j < asset.userAssigned) {
      return { clientUserId: this.clientUserId((asset.userOffset + j) % this.associatedUsers) };
    }
    return {
      serialNumber: this.serialNumber((asset.deviceOffset + j - asset.userAssigned) % this.deviceCount),
    };
  }

  /** The JSON text of seeded assignment `i` (hot path of paging: no object allocation per field). */
  assignmentJson(i: number): string {
    const asset = this.assetOfAssignment(i);
    const j = i - asset.firstAssignment;
    if (j < asset.userAssigned) {
      return `${asset.jsonHead}"clientUserId":"${this.clientUserId((asset.userOffset + j) % this.associatedUsers)}"}`;
    }
    return `${asset.jsonHead}"serialNumber":"${this.serialNumber((asset.deviceOffset + j - asset.userAssigned) % this.deviceCount)}"}`;
  }

  /** Serial number of device `d` of this location's pool (12 characters, like Apple's). */
  serialNumber(d: number): string {
    const code = (mulMod(d, serialMultiplier, serialSpace) + (this.key % serialSpace)) % serialSpace;
    return `${this.serialPrefix}${code.toString(36).toUpperCase().padStart(8, '0')}`;
  }

  /** Device index of a serial number of this location's pool, or undefined. */
  deviceOf(serialNumber: string): number | undefined {
    if (serialNumber.length !== 12 || !serialNumber.startsWith(this.serialPrefix)) return undefined;
    const tail = serialNumber.slice(4);
    if (!/^[0-9A-Z]{8}$/.test(tail)) return undefined;
    const code = Number.parseInt(tail, 36);
    const d = mulMod(
      (code - (this.key % serialSpace) + serialSpace) % serialSpace,
      serialInverse,
      serialSpace,
    );
    return d < this.deviceCount ? d : undefined;
  }

  /** clientUserId of user `u` (UUID-shaped, as MDMs usually choose). */
  clientUserId(u: number): string {
    const code = mulMod(u, userMultiplier, userSpace);
    return `${this.userPrefix}${code.toString(16).padStart(12, '0')}`;
  }

  /** User index of a clientUserId of this location, or undefined. Retired duplicates map to the live user. */
  userOf(clientUserId: string): number | undefined {
    if (!clientUserId.startsWith(this.userPrefix)) return undefined;
    const tail = clientUserId.slice(this.userPrefix.length);
    if (!/^[0-9a-f]{12}$/.test(tail)) return undefined;
    const u = mulMod(Number.parseInt(tail, 16), userInverse, userSpace);
    return u < this.associatedUsers + this.registeredUsers ? u : undefined;
  }

  /**
   * Seeded assignment index of (asset, device) or undefined: the inverse of {@link holderOf}, so a
   * serial-number filter costs one step per asset instead of a scan.
   */
  assignmentOfDevice(asset: BaseAsset, d: number): number | undefined {
    const devices = asset.baseAssigned - asset.userAssigned;
    const j = (d - asset.deviceOffset + this.deviceCount) % this.deviceCount;
    return j < devices ? asset.firstAssignment + asset.userAssigned + j : undefined;
  }

  /** Seeded assignment index of (asset, user) or undefined. */
  assignmentOfUser(asset: BaseAsset, u: number): number | undefined {
    if (u >= this.associatedUsers) return undefined;
    const j = (u - asset.userOffset + this.associatedUsers) % this.associatedUsers;
    return j < asset.userAssigned ? asset.firstAssignment + j : undefined;
  }

  /** User record `t` of the `users` endpoint. Retired records reuse a live user's clientUserId. */
  user(t: number): BaseUser {
    const live = this.associatedUsers + this.registeredUsers;
    const userId = String(10_000_000_000 + (mixHash(this.key, t, 60) % 9_000_000_000));
    if (t < this.associatedUsers) {
      return {
        clientUserId: this.clientUserId(t),
        userId,
        email: `user${t}@${this.orgDomain}`,
        status: 'Associated',
        idHash: `${mixHash(this.key, t, 61).toString(16).padStart(8, '0')}${mixHash(this.key, t, 62).toString(16).padStart(8, '0')}`,
      };
    }
    if (t < live) {
      return {
        clientUserId: this.clientUserId(t),
        userId,
        email: `user${t}@${this.orgDomain}`,
        status: 'Registered',
        inviteCode: mixHash(this.key, t, 63).toString(36).toUpperCase(),
      };
    }
    // An earlier registration of a user who was retired and registered again.
    const u = this.associatedUsers > 0 ? (t - live) % this.associatedUsers : t;
    return {
      clientUserId: this.clientUserId(u),
      userId,
      email: `user${u}@${this.orgDomain}`,
      status: 'Retired',
    };
  }
}

interface AssetDraft {
  readonly item: CatalogItem;
  readonly pricingParam: PricingParam;
  readonly deviceAssignable: boolean;
  readonly unlimited: boolean;
  readonly weight: number;
}

function draftAssets(seedKey: number, key: number, count: number): AssetDraft[] {
  const drafts: AssetDraft[] = [];
  // Locations of one seed draw overlapping windows of the shared catalog, as real schools buy the same apps.
  let next = key % 5000;
  for (let k = 0; k < count; k++) {
    const previous = drafts[k - 1];
    let item: CatalogItem;
    let pricingParam: PricingParam;
    // Now and then the same app is licensed under both pricing params: identity is (adamId, pricingParam).
    const twin =
      previous !== undefined &&
      previous.item.productType === 'App' &&
      drafts[k - 2]?.item !== previous.item &&
      unitHash(key, k, 20) < 0.06;
    if (twin) {
      item = previous.item;
      pricingParam = previous.pricingParam === 'STDQ' ? 'PLUS' : 'STDQ';
    } else {
      item = catalogItem(seedKey, next++);
      pricingParam = unitHash(key, k, 21) < 0.1 ? 'PLUS' : 'STDQ';
    }
    const deviceAssignable = item.productType === 'App' && unitHash(key, k, 22) >= 0.07;
    drafts.push({
      item,
      pricingParam,
      deviceAssignable,
      unlimited: item.productType === 'App' && item.price === 0 && unitHash(key, k, 23) < 0.5,
      // Heavy-tailed popularity: a few apps hold most licenses, as in a real school or company.
      weight: (unitHash(key, k, 24) + 0.02) ** 3,
    });
  }
  return drafts;
}

/**
 * Splits `total` into integer counts proportional to `weights`, none above its cap (largest remainder,
 * water-filling the capped ones). Throws a config error when the caps cannot hold the total.
 */
export function distribute(
  total: number,
  weights: readonly number[],
  caps: readonly number[],
  locationId: string,
): number[] {
  const counts = weights.map(() => 0);
  let remaining = total;
  let active = weights.map((_, k) => k).filter((k) => caps[k]! > 0);
  while (remaining > 0 && active.length > 0) {
    const weightSum = active.reduce((sum, k) => sum + weights[k]!, 0);
    const saturated = active.filter((k) => (remaining * weights[k]!) / weightSum >= caps[k]! - counts[k]!);
    if (saturated.length > 0) {
      for (const k of saturated) {
        remaining -= caps[k]! - counts[k]!;
        counts[k] = caps[k]!;
      }
      const done = new Set(saturated);
      active = active.filter((k) => !done.has(k));
      if (remaining < 0) throw errors.internal('apple-sim: distribution overshot');
      continue;
    }
    const shares = active.map((k) => ({ k, share: (remaining * weights[k]!) / weightSum }));
    let assigned = 0;
    for (const { k, share } of shares) {
      const whole = Math.floor(share);
      counts[k]! += whole;
      assigned += whole;
    }
    const leftover = remaining - assigned;
    shares.sort((a, b) => b.share - Math.floor(b.share) - (a.share - Math.floor(a.share)) || a.k - b.k);
    for (let n = 0; n < leftover; n++) counts[shares[n % shares.length]!.k]! += 1;
    remaining = 0;
  }
  if (remaining > 0) {
    throw errors.config(
      `apple-sim location ${locationId}`,
      `${total} assignments do not fit: add assets, device-assignable apps or users`,
    );
  }
  return counts;
}
