import {
  type BaseAsset,
  BaseData,
  type BaseUser,
  type PricingParam,
  unlimitedTotalCount,
} from './sim-base-data.js';
import { SimApiError, simErrors } from './sim-errors.js';
import type { LocationSeed, MdmInfo } from './sim-location-seed.js';
import { mixHash } from './sim-random.js';
import { formatAppleDate, innerTokenFor } from './sim-token.js';
import { resolveExpiry, simTokenFiles } from './sim-token-files.js';

export type { LocationSeed, MdmInfo, SimLocationState } from './sim-location-seed.js';
export { simLocationStates } from './sim-location-seed.js';

/** What Apple answers for a location's tokens: `invalid` makes every token unknown (9622). */
export const simTokenStates = ['active', 'expired', 'revoked', 'invalid'] as const;
export type SimTokenState = (typeof simTokenStates)[number];

/** One license: an asset and exactly one holder. */
export interface SimAssignment {
  readonly adamId: string;
  readonly pricingParam: PricingParam;
  readonly serialNumber?: string;
  readonly clientUserId?: string;
}

/** A contiguous list of records rendered as JSON on demand (paging never materialises the whole list). */
export interface JsonList {
  readonly length: number;
  /** JSON texts of records [from, to). */
  slice(from: number, to: number): string[];
}

export const simEventTypes = ['ASSOCIATE', 'DISASSOCIATE', 'REVOKE'] as const;
export type SimEventType = (typeof simEventTypes)[number];

export interface SimEventFailure {
  readonly adamId?: string;
  readonly pricingParam?: string;
  readonly serialNumber?: string;
  readonly clientUserId?: string;
  readonly errorNumber: number;
  readonly errorMessage: string;
}

/** An asynchronous associate/disassociate/revoke as `GET status` reports it. */
export interface SimEvent {
  readonly eventId: string;
  readonly eventType: SimEventType;
  readonly numRequested: number;
  readonly createdAt: number;
  polls: number;
  eventStatus: 'PENDING' | 'COMPLETE' | 'FAILED';
  numCompleted: number;
  failures: SimEventFailure[];
  readonly run: () => { completed: number; failures: SimEventFailure[] };
}

interface AddedAssignment {
  readonly asset: BaseAsset;
  readonly serialNumber?: string;
  readonly clientUserId?: string;
  readonly version: number;
  readonly json: string;
}

interface Holder {
  readonly serialNumber?: string;
  readonly clientUserId?: string;
}

export interface AssignmentFilter {
  readonly adamId?: string;
  readonly serialNumber?: string;
  readonly clientUserId?: string;
  readonly sinceVersionId?: string;
}

export interface AssetFilter {
  readonly adamId?: string;
  readonly pricingParam?: string;
  readonly productType?: string;
  readonly deviceAssignable?: boolean;
  readonly revocable?: boolean;
}

export interface UserFilter {
  readonly clientUserId?: string;
  readonly sinceVersionId?: string;
}

/** A location as Apple holds it: seeded base data plus an overlay of changes made through the API. */
export class SimLocation {
  readonly id: string;
  readonly seed: LocationSeed;
  readonly base: BaseData;
  /** Apple's library id, stable across token renewals. */
  readonly uId: string;
  readonly expiresAt: Date;
  /** Inner `token` values, one per token file. Secret. */
  readonly innerTokens: readonly string[];
  /** `.vpptoken` file contents, one per token. Secret. */
  readonly tokenFiles: readonly string[];
  tokenState: SimTokenState = 'active';
  mdmInfo: MdmInfo | undefined;
  notificationUrl: string | undefined;
  notificationTypes: readonly string[] | undefined;
  /** Stored, never returned: Apple does not echo it either. */
  notificationAuthToken: string | undefined;
  version = 0;
  readonly events = new Map<string, SimEvent>();
  private readonly versionIds = new Map<string, number>();
  private removedSorted: number[] = [];
  private readonly removedSet = new Set<number>();
  private added: AddedAssignment[] = [];
  private readonly addedKeys = new Map<string, AddedAssignment>();
  private readonly assetDelta: Int32Array;
  /** Licenses bought (+), refunded or transferred away (−) since seeding, per asset index. */
  private readonly purchaseDelta: Int32Array;
  private readonly assetsByKey = new Map<string, BaseAsset>();
  private eventCounter = 0;
  private externalChanges = 0;
  /** Incremented by every add or remove, so callers can tell whether a batch changed anything. */
  changeCount = 0;

  constructor(seedValue: string | number, seedKey: number, seed: LocationSeed, now: Date) {
    this.id = seed.id;
    this.seed = seed;
    this.base = new BaseData(seedKey, seed.id, {
      assets: seed.assets,
      assignments: seed.assignments,
      users: seed.users,
    });
    this.uId = String(
      2_000_000_000_000_000 +
        (mixHash(this.base.key, 90) % 1_000_000) * 1_000_000_000 +
        (mixHash(this.base.key, 91) % 1_000_000_000),
    );
    this.expiresAt = resolveExpiry(seed, now);
    const files = simTokenFiles(seedValue, [seed], now);
    this.innerTokens = files.map((_, n) => innerTokenFor(seedValue, seed.id, n));
    this.tokenFiles = files.map((file) => file.content);
    this.assetDelta = new Int32Array(this.base.assets.length);
    this.purchaseDelta = new Int32Array(this.base.assets.length);
    for (const asset of this.base.assets)
      this.assetsByKey.set(`${asset.adamId}|${asset.pricingParam}`, asset);
    this.resetState();
  }

  /** Back to the seeded state: no overlay, version 0, seeded token state and mdmInfo, no events. */
  resetState(): void {
    this.tokenState = this.seed.state ?? 'active';
    this.mdmInfo = this.seed.mdmInfo;
    this.notificationUrl = undefined;
    this.notificationTypes = undefined;
    this.notificationAuthToken = undefined;
    this.removedSorted = [];
    this.removedSet.clear();
    this.added = [];
    this.addedKeys.clear();
    this.assetDelta.fill(0);
    this.purchaseDelta.fill(0);
    this.events.clear();
    this.eventCounter = 0;
    this.externalChanges = 0;
    this.versionIds.clear();
    this.version = 0;
    this.versionIds.set(this.versionId, 0);
  }

  /** The opaque versionId of the current data. */
  get versionId(): string {
    return versionIdOf(this.base.key, this.version);
  }

  /** Marks the data as changed: a new versionId. */
  bumpVersion(): void {
    this.version += 1;
    this.versionIds.set(this.versionId, this.version);
  }

  /** The version number behind a versionId, or undefined when this location never issued it. */
  versionOf(versionId: string): number | undefined {
    return this.versionIds.get(versionId);
  }

  /** The expiry Apple reports, formatted like Apple (`+0000`). */
  get tokenExpirationDate(): string {
    return formatAppleDate(this.expiresAt);
  }

  findAsset(adamId: string, pricingParam: string): BaseAsset | undefined {
    return this.assetsByKey.get(`${adamId}|${pricingParam}`);
  }

  assignedCount(asset: BaseAsset): number {
    return asset.baseAssigned + this.assetDelta[asset.index]!;
  }

  totalCount(asset: BaseAsset): number {
    return asset.unlimited ? unlimitedTotalCount : asset.purchasedCount + this.purchaseDelta[asset.index]!;
  }

  /** Licenses bought (count > 0), refunded or transferred away (count < 0); unlimited assets do not change. */
  changePurchased(asset: BaseAsset, count: number): void {
    if (!asset.unlimited) this.purchaseDelta[asset.index]! += count;
  }

  availableCount(asset: BaseAsset): number {
    return this.totalCount(asset) - this.assignedCount(asset);
  }

  /** Number of live assignments (seeded minus removed plus added). */
  get assignmentTotal(): number {
    return this.base.assignmentCount - this.removedSorted.length + this.added.length;
  }

  /** The `assets` records matching a filter, as Apple's JSON objects. */
  assets(filter: AssetFilter): Record<string, unknown>[] {
    return this.assetsMatching(filter).map((asset) => this.assetRecord(asset));
  }

  /** The assets matching a filter, in Apple's order (their records are built by {@link assetRecord}). */
  assetsMatching(filter: AssetFilter): BaseAsset[] {
    const result: BaseAsset[] = [];
    for (const asset of this.base.assets) {
      if (filter.adamId !== undefined && asset.adamId !== filter.adamId) continue;
      if (filter.pricingParam !== undefined && asset.pricingParam !== filter.pricingParam) continue;
      if (filter.productType !== undefined && asset.item.productType !== filter.productType) continue;
      if (filter.deviceAssignable !== undefined && asset.deviceAssignable !== filter.deviceAssignable)
        continue;
      if (filter.revocable !== undefined && asset.revocable !== filter.revocable) continue;
      result.push(asset);
    }
    return result;
  }

  /** One asset as Apple's JSON object. */
  assetRecord(asset: BaseAsset): Record<string, unknown> {
    return {
      adamId: asset.adamId,
      pricingParam: asset.pricingParam,
      productType: asset.item.productType,
      totalCount: this.totalCount(asset),
      assignedCount: this.assignedCount(asset),
      availableCount: this.availableCount(asset),
      retiredCount: asset.retiredCount,
      deviceAssignable: asset.deviceAssignable,
      revocable: asset.revocable,
      supportedPlatforms: asset.item.supportedPlatforms,
    };
  }

  /** The assignments matching a filter, generated on demand. */
  assignments(filter: AssignmentFilter): JsonList {
    if (filter.sinceVersionId !== undefined) {
      const since = this.versionOf(filter.sinceVersionId);
      if (since === undefined) throw new SimApiError(simErrors.badVersionId);
      // Changes since a version: licenses added after it that still exist (removals are not listed;
      // Apple does not document how they appear, so clients must keep full syncs).
      return materialized(
        this.added.filter((a) => a.version > since && matchesAdded(a, filter)).map((a) => a.json),
      );
    }
    if (filter.serialNumber !== undefined || filter.clientUserId !== undefined) {
      const items: string[] = [];
      for (const asset of this.base.assets) {
        if (filter.adamId !== undefined && asset.adamId !== filter.adamId) continue;
        const i = this.seededAssignmentOf(asset, filter);
        if (i !== undefined) items.push(this.base.assignmentJson(i));
      }
      for (const a of this.added) if (matchesAdded(a, filter)) items.push(a.json);
      return materialized(items);
    }
    const segments: JsonList[] = [];
    if (filter.adamId !== undefined) {
      for (const asset of this.base.assets) {
        if (asset.adamId !== filter.adamId) continue;
        segments.push(this.seededRange(asset.firstAssignment, asset.firstAssignment + asset.baseAssigned));
      }
    } else {
      segments.push(this.seededRange(0, this.base.assignmentCount));
    }
    segments.push(materialized(this.added.filter((a) => matchesAdded(a, filter)).map((a) => a.json)));
    return concatenated(segments);
  }

  /** The `users` records matching a filter. */
  users(filter: UserFilter): JsonList {
    if (filter.sinceVersionId !== undefined) {
      if (this.versionOf(filter.sinceVersionId) === undefined) throw new SimApiError(simErrors.badVersionId);
      // The simulator has no user-management endpoints, so users never change after seeding.
      return materialized([]);
    }
    const base = this.base;
    if (filter.clientUserId !== undefined) {
      const u = base.userOf(filter.clientUserId);
      if (u === undefined) return materialized([]);
      const items = [JSON.stringify(base.user(u))];
      const live = base.associatedUsers + base.registeredUsers;
      if (base.associatedUsers > 0 && u < base.associatedUsers) {
        for (let t = live + u; t < base.userCount; t += base.associatedUsers) {
          items.push(JSON.stringify(base.user(t)));
        }
      }
      return materialized(items);
    }
    return {
      length: base.userCount,
      slice: (from, to) => {
        const out: string[] = [];
        for (let t = from; t < Math.min(to, base.userCount); t++) out.push(JSON.stringify(base.user(t)));
        return out;
      },
    };
  }

  /** A user record by clientUserId when the user can hold licenses (Registered or Associated). */
  liveUser(clientUserId: string): BaseUser | undefined {
    const u = this.base.userOf(clientUserId);
    return u === undefined ? undefined : this.base.user(u);
  }

  /** True when the asset is held by the holder (seeded and not removed, or added). */
  hasAssignment(asset: BaseAsset, holder: Holder): boolean {
    return (
      this.seededAssignmentOf(asset, holder) !== undefined || this.addedKeys.has(addedKey(asset, holder))
    );
  }

  /** Adds a license; false when it already exists. Callers bump the version after a batch. */
  addAssignment(asset: BaseAsset, holder: Holder): boolean {
    if (this.hasAssignment(asset, holder)) return false;
    const entry: AddedAssignment = {
      asset,
      ...(holder.serialNumber !== undefined
        ? { serialNumber: holder.serialNumber }
        : { clientUserId: holder.clientUserId! }),
      version: this.version + 1,
      json:
        holder.serialNumber !== undefined
          ? `${asset.jsonHead}"serialNumber":${JSON.stringify(holder.serialNumber)}}`
          : `${asset.jsonHead}"clientUserId":${JSON.stringify(holder.clientUserId)}}`,
    };
    this.added.push(entry);
    this.addedKeys.set(addedKey(asset, holder), entry);
    this.assetDelta[asset.index]! += 1;
    this.changeCount += 1;
    return true;
  }

  /** Removes a license; false when there was none. Callers bump the version after a batch. */
  removeAssignment(asset: BaseAsset, holder: Holder): boolean {
    const i = this.seededAssignmentOf(asset, holder);
    if (i !== undefined) {
      this.removedSet.add(i);
      this.removedSorted.splice(upperBound(this.removedSorted, i), 0, i);
      this.assetDelta[asset.index]! -= 1;
      this.changeCount += 1;
      return true;
    }
    const key = addedKey(asset, holder);
    const entry = this.addedKeys.get(key);
    if (entry === undefined) return false;
    this.addedKeys.delete(key);
    this.added = this.added.filter((a) => a !== entry);
    this.assetDelta[asset.index]! -= 1;
    this.changeCount += 1;
    return true;
  }

  /** Every asset the holder has a live license for (for revoke). */
  assetsHeldBy(holder: Holder): BaseAsset[] {
    return this.base.assets.filter((asset) => this.hasAssignment(asset, holder));
  }

  /**
   * Another admin changes the data (used by the "data changes between pages" fault): one seeded license
   * moves to a new holder and one new device license is added, so the records, one asset's counts and
   * the versionId change while counts and assignments still agree.
   */
  simulateExternalChange(): void {
    const firstLive = this.firstLiveSeeded();
    this.externalChanges += 1;
    const serialNumber = `SIMX${this.externalChanges.toString(36).toUpperCase().padStart(8, '0')}`;
    if (firstLive !== undefined) {
      const asset = this.base.assetOfAssignment(firstLive);
      const holder = this.base.holderOf(asset, firstLive);
      this.removeAssignment(asset, holder);
      if (asset.deviceAssignable) {
        this.addAssignment(asset, { serialNumber });
      } else {
        // A user-only asset moves to another live user who does not hold it yet.
        const live = this.base.associatedUsers + this.base.registeredUsers;
        for (let u = 0; u < live; u++) {
          const clientUserId = this.base.clientUserId(u);
          if (clientUserId !== holder.clientUserId && this.addAssignment(asset, { clientUserId })) break;
        }
      }
    }
    // And one more license is handed out, so asset counts (not only assignment records) change too.
    const spare = this.base.assets.find((a) => a.deviceAssignable && this.availableCount(a) > 0);
    if (spare !== undefined)
      this.addAssignment(spare, { serialNumber: `${serialNumber.slice(0, 3)}Y${serialNumber.slice(4)}` });
    this.bumpVersion();
  }

  /** Registers an asynchronous event; its work runs when it completes. */
  createEvent(
    eventType: SimEventType,
    numRequested: number,
    createdAt: number,
    run: SimEvent['run'],
  ): SimEvent {
    this.eventCounter += 1;
    const h1 = mixHash(this.base.key, this.eventCounter, 80);
    const h2 = mixHash(this.base.key, this.eventCounter, 81);
    const hex = `${h1.toString(16).padStart(8, '0')}${h2.toString(16).padStart(8, '0')}${this.eventCounter.toString(16).padStart(16, '0')}`;
    const eventId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
    const event: SimEvent = {
      eventId,
      eventType,
      numRequested,
      createdAt,
      polls: 0,
      eventStatus: 'PENDING',
      numCompleted: 0,
      failures: [],
      run,
    };
    this.events.set(eventId, event);
    return event;
  }

  /** Runs a pending event's work and records the outcome (COMPLETE, or FAILED when nothing succeeded). */
  completeEvent(event: SimEvent): void {
    if (event.eventStatus !== 'PENDING') return;
    const outcome = event.run();
    event.numCompleted = outcome.completed;
    event.failures = outcome.failures;
    event.eventStatus = outcome.completed === 0 && outcome.failures.length > 0 ? 'FAILED' : 'COMPLETE';
  }

  private firstLiveSeeded(): number | undefined {
    for (let i = 0; i < this.base.assignmentCount; i++) if (!this.removedSet.has(i)) return i;
    return undefined;
  }

  private seededAssignmentOf(asset: BaseAsset, holder: Holder): number | undefined {
    let i: number | undefined;
    if (holder.serialNumber !== undefined) {
      const d = this.base.deviceOf(holder.serialNumber);
      i = d === undefined ? undefined : this.base.assignmentOfDevice(asset, d);
    } else if (holder.clientUserId !== undefined) {
      const u = this.base.userOf(holder.clientUserId);
      i = u === undefined ? undefined : this.base.assignmentOfUser(asset, u);
    }
    return i === undefined || this.removedSet.has(i) ? undefined : i;
  }

  /** Seeded assignments [a, b) minus removed ones, addressed by position among the live ones. */
  private seededRange(a: number, b: number): JsonList {
    const removed = this.removedSorted;
    const removedSet = this.removedSet;
    const base = this.base;
    const removedBelow = (x: number) => lowerBound(removed, x);
    const length = b - a - (removedBelow(b) - removedBelow(a));
    return {
      length,
      slice: (from, to) => {
        const out: string[] = [];
        if (from >= length || to <= from) return out;
        // Smallest x with (live records in [a, x]) = from + 1: binary search on the removed offsets.
        let lo = a + from;
        let hi = b - 1;
        const liveUpTo = (x: number) => x - a + 1 - (removedBelow(x + 1) - removedBelow(a));
        while (lo < hi) {
          const mid = Math.floor((lo + hi) / 2);
          if (liveUpTo(mid) >= from + 1) hi = mid;
          else lo = mid + 1;
        }
        const want = Math.min(to, length) - from;
        for (let x = lo; x < b && out.length < want; x++) {
          if (!removedSet.has(x)) out.push(base.assignmentJson(x));
        }
        return out;
      },
    };
  }
}

function versionIdOf(key: number, version: number): string {
  return `${mixHash(key, version, 70).toString(16).padStart(8, '0')}${version.toString(16).padStart(4, '0')}`;
}

function addedKey(asset: BaseAsset, holder: Holder): string {
  return holder.serialNumber !== undefined
    ? `${asset.index}|s|${holder.serialNumber}`
    : `${asset.index}|u|${holder.clientUserId}`;
}

function matchesAdded(a: AddedAssignment, filter: AssignmentFilter): boolean {
  if (filter.adamId !== undefined && a.asset.adamId !== filter.adamId) return false;
  if (filter.serialNumber !== undefined && a.serialNumber !== filter.serialNumber) return false;
  if (filter.clientUserId !== undefined && a.clientUserId !== filter.clientUserId) return false;
  return true;
}

function materialized(items: string[]): JsonList {
  return { length: items.length, slice: (from, to) => items.slice(from, to) };
}

function concatenated(parts: readonly JsonList[]): JsonList {
  const nonEmpty = parts.filter((p) => p.length > 0);
  const length = nonEmpty.reduce((sum, p) => sum + p.length, 0);
  return {
    length,
    slice: (from, to) => {
      const out: string[] = [];
      let offset = 0;
      for (const part of nonEmpty) {
        const start = Math.max(from - offset, 0);
        const end = Math.min(to - offset, part.length);
        if (start < end) out.push(...part.slice(start, end));
        offset += part.length;
        if (offset >= to) break;
      }
      return out;
    },
  };
}

/** Number of elements of a sorted array below x. */
function lowerBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Number of elements of a sorted array at or below x. */
function upperBound(sorted: readonly number[], x: number): number {
  return lowerBound(sorted, x + 1);
}
