import { performance } from 'node:perf_hooks';
import type { AppleClient } from '../apple/apple-client.js';
import { appleErrorNumbers, appleFailureError, appleFailureOf } from '../apple/apple-failure.js';
import type { AppleAsset } from '../apple/apple-types.js';
import type { Logger } from '../domain/logger.js';
import type { SyncProgressListener } from '../domain/sync-phase.js';
import type { LicenseAssignmentInput } from '../storage/assignment-chunks.js';
import type { LicenseStore } from '../storage/license-store.js';
import { assetKey, holderKey } from '../storage/snapshot-merge.js';
import type { SnapshotReads } from '../storage/snapshot-reads.js';
import type { ClaimedSync, DeltaBase, DeltaCommit, StoredAssetRow } from '../storage/sync-job-store.js';
import { type BackgroundLane, noLane } from './background-lane.js';
import type { PreparedSync, SyncPreparation } from './sync-engine.js';

export interface DeltaSyncEngineOptions {
  readonly apple: Pick<AppleClient, 'assets' | 'assignments' | 'lookupMetadata'>;
  readonly licenses: LicenseStore;
  readonly snapshots: SnapshotReads;
  /** client/config and the location checks, shared with the full sync. */
  readonly prepare: SyncPreparation;
  readonly clock: () => Date;
  readonly logger: Logger;
  /** Re-reads after Apple's data moved mid-delta before the delta gives up on a full read (default 2). */
  readonly maxSnapshotRestarts?: number;
  /**
   * Apps whose counts did not add up that are re-read alone (`GET assignments?adamId=`); more than this
   * and the run reads everything instead (default 20).
   */
  readonly maxRereadApps?: number;
  readonly lane?: BackgroundLane;
}

/** A delta run's result: a delta to commit, or why the same run must read everything instead. */
export type DeltaOutcome =
  | { readonly kind: 'delta'; readonly commit: DeltaCommit; readonly prepared: PreparedSync }
  | { readonly kind: 'full'; readonly reason: string; readonly prepared: PreparedSync };

/** Reads a delta sync of one token; the worker commits it (or runs the full engine on `full`). */
export type DeltaSyncEngine = (
  claim: ClaimedSync,
  signal: AbortSignal,
  onProgress?: SyncProgressListener,
) => Promise<DeltaOutcome>;

/**
 * The delta sync (docs/apple.md, "A delta sync"): client/config as a full sync, the assignments Apple
 * added since the snapshot's versionId (every page), and every page of `GET assets`, all of one
 * version. Apple's deltas list additions only, so per asset the snapshot's licenses plus the new ones
 * must equal Apple's `assignedCount`; the apps where they do not (a license taken back, an app gone)
 * are re-read alone and replaced. Too many such apps, 9721 (Apple no longer knows the version), no
 * snapshot, or counts that still do not add up: the run reads everything instead.
 */
export function createDeltaSyncEngine(options: DeltaSyncEngineOptions): DeltaSyncEngine {
  const { apple, licenses, snapshots, clock, logger } = options;
  const maxRestarts = options.maxSnapshotRestarts ?? 2;
  const maxReread = options.maxRereadApps ?? 20;
  const lane = options.lane ?? noLane;
  // Pages of each token's asset list at its last delta (a hint only): the next delta requests them all
  // at once instead of the second after the first. Bounded; the oldest tokens are forgotten first.
  const assetPages = new Map<string, number>();
  const rememberAssetPages = (tokenId: string, pages: number) => {
    assetPages.delete(tokenId);
    assetPages.set(tokenId, pages);
    if (assetPages.size > 10_000) assetPages.delete(assetPages.keys().next().value as string);
  };

  return async (claim, signal, onProgress) => {
    const { tenantId, tokenId } = claim.job;
    // Where a delta's time goes (debug log 'delta sync read'; the worker logs the commit's).
    const ms: Record<string, number> = {};
    let mark = performance.now();
    const lap = (phase: string) => {
      const now = performance.now();
      ms[phase] = Math.round((ms[phase] ?? 0) + now - mark);
      mark = now;
    };
    // The delta, the assets and the snapshot's counts are read while client/config is checked; the
    // check settles first (a conflict fails the sync, and nothing read alongside is committed then).
    // The snapshot's base is read while the preparation reads the token.
    const basing = snapshots.base(tenantId, tokenId);
    basing.catch(() => undefined);
    let first: Promise<Reading | undefined> | undefined;
    const prepared = await options.prepare(claim, signal, onProgress, (sToken, side) => {
      first = basing.then((b) =>
        b === undefined ? undefined : readAll(tokenId, sToken, b, side, onProgress),
      );
      return first.then(
        () => undefined,
        () => undefined,
      );
    });
    const firstBase = await basing;
    lap('prepareAndRead');
    const full = (reason: string): DeltaOutcome => ({ kind: 'full', reason, prepared });
    for (let restart = 0; ; restart++) {
      const base = restart === 0 ? firstBase : await snapshots.base(tenantId, tokenId);
      if (base === undefined) return full('the token has no license snapshot yet');
      try {
        const reading =
          (restart === 0 ? await first : undefined) ??
          (await readAll(tokenId, prepared.sToken, base, signal, onProgress));
        lap('read');
        const { read, held, storedAssets } = reading;
        if (read === 'unknownVersion') {
          return full(
            `Apple no longer knows the snapshot's versionId (error ${appleErrorNumbers.badSinceVersionId})`,
          );
        }
        const { versionId, assets, added } = read;
        let pageCount = read.pageCount;

        // Per asset: what the snapshot holds plus what the delta adds, against Apple's assignedCount.
        const expected = new Map(held);
        const fresh: LicenseAssignmentInput[] = [];
        const addedByAsset = new Map<string, LicenseAssignmentInput[]>();
        for (const a of added) {
          const key = assetKey(a);
          const list = addedByAsset.get(key);
          if (list === undefined) addedByAsset.set(key, [a]);
          else list.push(a);
        }
        // The snapshot's holders of the apps with additions only, read once the delta was in.
        const holders = await reading.holders;
        for (const [key, list] of addedByAsset) {
          const present = holders.get(key) ?? new Set<string>();
          const seen = new Set<string>();
          for (const a of list) {
            const h = holderKey(a);
            if (present.has(h) || seen.has(h)) continue;
            seen.add(h);
            fresh.push(a);
          }
          expected.set(key, (expected.get(key) ?? 0) + seen.size);
        }
        const apples = new Map(assets.map((a) => [assetKey(a), a]));
        const mismatched = new Set<string>();
        for (const key of new Set([...expected.keys(), ...apples.keys()])) {
          const count = expected.get(key) ?? 0;
          const asset = apples.get(key);
          if ((asset?.assignedCount ?? 0) !== count) {
            mismatched.add(asset?.adamId ?? key.slice(0, key.indexOf('\u0000')));
          }
        }
        lap('count');
        if (mismatched.size > maxReread) {
          return full(
            `the counts of ${mismatched.size} apps do not add up (more than ${maxReread} to re-read)`,
          );
        }

        // Apps whose counts do not add up: Apple's whole listing of each replaces the snapshot's.
        const replaced = new Map<string, { adamId: string; pricingParam: string; holders: string[] }>();
        for (const adamId of mismatched) {
          for (const asset of assets) {
            if (asset.adamId === adamId) {
              replaced.set(assetKey(asset), { adamId, pricingParam: asset.pricingParam, holders: [] });
            }
          }
          for (const key of expected.keys()) {
            if (key.startsWith(`${adamId}\u0000`) && !replaced.has(key)) {
              replaced.set(key, { adamId, pricingParam: key.slice(adamId.length + 1), holders: [] });
            }
          }
        }
        // Up to 5 apps at a time, one request each in flight: Apple's 5 per location. The apps with the
        // most licenses (the most pages, read one after another) go first, so the longest read starts
        // at once instead of last; `pop` takes from the end.
        const listed = new Map<string, number>();
        for (const a of assets) listed.set(a.adamId, (listed.get(a.adamId) ?? 0) + a.assignedCount);
        const rereads = [...mismatched].sort((x, y) => (listed.get(x) ?? 0) - (listed.get(y) ?? 0));
        const reread = async (adamId: string) => {
          for await (const page of apple.assignments(
            prepared.sToken,
            { adamId },
            { signal, concurrency: 1 },
          )) {
            if (page.versionId !== undefined && page.versionId !== versionId) {
              throw moved(versionId, page.versionId);
            }
            pageCount++;
            for (const a of page.records) {
              const key = assetKey(a);
              let entry = replaced.get(key);
              if (entry === undefined) {
                entry = { adamId: a.adamId, pricingParam: a.pricingParam, holders: [] };
                replaced.set(key, entry);
              }
              entry.holders.push(holderKey(a));
            }
          }
        };
        await Promise.all(
          Array.from({ length: Math.min(5, rereads.length) }, async () => {
            for (let next = rereads.pop(); next !== undefined; next = rereads.pop()) await reread(next);
          }),
        );
        lap('reread');
        for (const [key, entry] of replaced) {
          const wanted = new Set(entry.holders).size;
          if (wanted !== (apples.get(key)?.assignedCount ?? 0)) {
            return full(
              `app ${entry.adamId} (${entry.pricingParam}): Apple lists ${wanted} holders for an assignedCount of ${apples.get(key)?.assignedCount ?? 0}`,
            );
          }
        }
        if (replaced.size > 0) {
          logger.info(
            { tenantId, tokenId, runId: claim.runId, apps: [...mismatched] },
            'delta sync: counts did not add up for these apps (licenses taken back?); re-read them',
          );
        }
        onProgress?.({ phase: 'metadata', pages: pageCount, records: assets.length + added.length });
        // Apps of the snapshot had their names looked up by the sync that added them (a failed lookup is
        // retried by the next full sync): only adamIds new to the snapshot are looked up, usually none.
        const heldApps = new Set([...expected.keys()].map((key) => key.slice(0, key.indexOf('\u0000'))));
        for (const row of storedAssets) heldApps.add(row.adam_id);
        const newApps = assets.filter((a) => !heldApps.has(a.adamId));
        if (newApps.length > 0) await lookUpNewMetadata(claim, prepared, newApps, signal);
        lap('metadata');
        logger.debug(
          { tenantId, tokenId, runId: claim.runId, ms, reread: mismatched.size, added: added.length },
          'delta sync read',
        );
        return {
          kind: 'delta',
          prepared,
          commit: {
            base,
            locationUid: prepared.locationUid,
            locationName: prepared.locationName,
            countryOrRegion: prepared.countryOrRegion,
            expirationDateTime: prepared.expirationDateTime,
            versionId,
            assets,
            added: fresh.filter((a) => !replaced.has(assetKey(a))),
            replaced,
            pageCount,
            storedAssets,
          },
        };
      } catch (error) {
        if (appleFailureOf(error)?.kind !== 'snapshotMoved' || signal.aborted) throw error;
        if (restart >= maxRestarts) return full("Apple's data kept changing while the delta was read");
        logger.warn(
          { tenantId, tokenId, runId: claim.runId, restart: restart + 1 },
          "Apple's data changed during the delta sync; reading the delta again",
        );
      }
    }
  };

  /** Apple's delta and assets, and the snapshot's counts and asset rows, read side by side. */
  async function readAll(
    tokenId: string,
    sToken: string,
    base: DeltaBase,
    signal: AbortSignal,
    onProgress: SyncProgressListener | undefined,
  ): Promise<Reading> {
    let holders: Promise<Map<string, Set<string>>> | undefined;
    // The delta is in (usually one page, before the assets): the snapshot's holders of the apps it adds
    // licenses to are read while the asset pages still come (one statement per 100 apps).
    const deltaRead = (added: readonly LicenseAssignmentInput[]) => {
      const apps = new Map<string, LicenseAssignmentInput>();
      for (const a of added) if (!apps.has(assetKey(a))) apps.set(assetKey(a), a);
      holders = lane.turn().then(() => snapshots.holdersOf(base.runKey, [...apps.values()]));
      holders.catch(() => undefined);
    };
    const [read, held, storedAssets] = await Promise.all([
      readDelta(tokenId, sToken, base.versionId, signal, onProgress, deltaRead),
      snapshots.heldCounts(base.runKey),
      snapshots.assets(base.runId),
    ]);
    return { read, held, storedAssets, holders: holders ?? Promise.resolve(new Map()) };
  }

  /** The assignments delta (every page) and the assets, of one versionId; 9721 → 'unknownVersion'. */
  async function readDelta(
    tokenId: string,
    sToken: string,
    sinceVersionId: string,
    signal: AbortSignal,
    onProgress: SyncProgressListener | undefined,
    onDelta: (added: readonly LicenseAssignmentInput[]) => void,
  ): Promise<
    | 'unknownVersion'
    | { versionId: string; assets: AppleAsset[]; added: LicenseAssignmentInput[]; pageCount: number }
  > {
    // The delta and the assets are read side by side (Apple allows 5 requests in flight per location:
    // client/config, checked meanwhile, one; the delta, usually one page, one at a time; the assets 3).
    let pageCount = 0;
    const added: LicenseAssignmentInput[] = [];
    const assets: AppleAsset[] = [];
    const note = () =>
      onProgress?.({ phase: 'assignments', pages: pageCount, records: added.length + assets.length });
    const readAdded = async (stopped: AbortSignal): Promise<string | undefined | 'unknownVersion'> => {
      let version: string | undefined;
      try {
        for await (const page of apple.assignments(
          sToken,
          { sinceVersionId },
          { signal: stopped, concurrency: 1 },
        )) {
          version ??= page.versionId;
          pageCount++;
          for (const a of page.records) added.push(a);
          note();
        }
      } catch (error) {
        if (appleFailureOf(error)?.appleErrorNumber === appleErrorNumbers.badSinceVersionId)
          return 'unknownVersion';
        throw error;
      }
      onDelta(added);
      return version;
    };
    const readAssets = async (stopped: AbortSignal): Promise<string | undefined> => {
      let version: string | undefined;
      let pages = 0;
      const expectedPages = assetPages.get(tokenId);
      for await (const page of apple.assets(
        sToken,
        {},
        { signal: stopped, concurrency: 3, ...(expectedPages === undefined ? {} : { expectedPages }) },
      )) {
        version ??= page.versionId;
        pageCount++;
        pages++;
        for (const a of page.records) assets.push(a);
        note();
      }
      rememberAssetPages(tokenId, pages);
      return version;
    };
    const reading = new AbortController();
    const stop = () => reading.abort(signal.reason);
    signal.addEventListener('abort', stop, { once: true });
    let deltaVersion: string | undefined | 'unknownVersion';
    let assetsVersion: string | undefined;
    // The first read that fails stops the other.
    const guard = <T>(read: Promise<T>) =>
      read.catch((error: unknown) => {
        reading.abort(error);
        throw error;
      });
    try {
      [deltaVersion, assetsVersion] = await Promise.all([
        guard(readAdded(reading.signal)),
        guard(readAssets(reading.signal)),
      ]);
    } finally {
      signal.removeEventListener('abort', stop);
    }
    if (deltaVersion === 'unknownVersion') return 'unknownVersion';
    // Counts in assets and additions in the delta must describe the same data.
    if (deltaVersion && assetsVersion && deltaVersion !== assetsVersion)
      throw moved(deltaVersion, assetsVersion);
    const versionId = deltaVersion || assetsVersion || sinceVersionId;
    return { versionId, assets, added, pageCount };
  }

  /** Names of adamIds not seen before; a failed lookup never fails the sync (as in the full sync). */
  async function lookUpNewMetadata(
    claim: ClaimedSync,
    prepared: PreparedSync,
    assets: readonly AppleAsset[],
    signal: AbortSignal,
  ): Promise<void> {
    const adamIds = [...new Set(assets.map((a) => a.adamId))];
    const known = await licenses.knownMetadata(adamIds);
    const missing = adamIds.filter((id) => !known.has(id));
    if (missing.length === 0) return;
    try {
      const found = await apple.lookupMetadata(missing, {
        ...prepared.metadataLookup,
        sToken: prepared.sToken,
        signal,
      });
      await licenses.upsertMetadata([...found.values()], prepared.metadataLookup, clock());
    } catch (error) {
      signal.throwIfAborted();
      logger.warn(
        {
          tenantId: claim.job.tenantId,
          tokenId: claim.job.tokenId,
          runId: claim.runId,
          adamIds: missing.length,
          err: { message: error instanceof Error ? error.message : String(error) },
        },
        'content metadata lookup failed; licenses are stored without names and the lookup is retried next sync',
      );
    }
  }
}

interface Reading {
  readonly read:
    | 'unknownVersion'
    | { versionId: string; assets: AppleAsset[]; added: LicenseAssignmentInput[]; pageCount: number };
  /** Licenses per asset of the snapshot (snapshot-merge.ts keys). */
  readonly held: Map<string, number>;
  /** The snapshot's asset rows (its apps; the commit compares them with Apple's list). */
  readonly storedAssets: readonly StoredAssetRow[];
  /** The snapshot's holders (holder keys by asset key) of the assets the delta adds licenses to. */
  readonly holders: Promise<Map<string, Set<string>>>;
}

/** Apple's data moved between the reads of one delta: built like the client's own snapshotMoved error. */
function moved(expected: string, got: string) {
  return appleFailureError({
    failure: {
      kind: 'snapshotMoved',
      message: `Apple's data changed while the delta sync read it (versionId '${expected}', then '${got}')`,
    },
    endpoint: 'GET /assignments?sinceVersionId + GET /assets',
    attempts: 1,
  });
}
