import type { AppleClient } from '../apple/apple-client.js';
import { appleFailureError, appleFailureOf } from '../apple/apple-failure.js';
import type { AppleMdmInfo } from '../apple/apple-types.js';
import type { Logger } from '../domain/logger.js';
import { parseAppleDateTime } from '../domain/stoken.js';
import type { SyncProgressListener } from '../domain/sync-phase.js';
import type { LicenseStore } from '../storage/license-store.js';
import {
  type ClaimedSync,
  LeaseLostError,
  type SnapshotCommit,
  type SyncJobStore,
} from '../storage/sync-job-store.js';
import type { VppTokenStore } from '../storage/vpp-token-store.js';
import { type BackgroundLane, noLane } from './background-lane.js';
import { syncFailureError } from './sync-failure-of.js';

export interface SyncEngineOptions {
  readonly apple: AppleClient;
  readonly tokens: VppTokenStore;
  readonly licenses: LicenseStore;
  readonly jobs: SyncJobStore;
  /** vppd's `mdmInfo` at Apple: `id` is the installation's stable UUID. */
  readonly mdmInfo: AppleMdmInfo;
  readonly clock: () => Date;
  readonly logger: Logger;
  /** Full re-reads after Apple's data moved mid-sync before the sync fails (default 2). */
  readonly maxSnapshotRestarts?: number;
  /**
   * Least time between progress notes in the run's history row while assignments are paged
   * (default 5 s): one write (and commit) each, so few; live progress goes through `onProgress`.
   */
  readonly progressEveryMs?: number;
  /** Where each page's staging waits for its turn, so requests are answered first (default none). */
  readonly lane?: BackgroundLane;
}

/**
 * Fetches one consistent Apple snapshot into a run's staging rows; the worker commits or fails it.
 * `prepared`: the run already checked client/config and the location (a delta falling back to a full
 * read), so the engine does not again.
 */
export type SyncEngine = (
  claim: ClaimedSync,
  signal: AbortSignal,
  onProgress?: SyncProgressListener,
  prepared?: PreparedSync,
) => Promise<SnapshotCommit>;

/** What every sync (full or delta) learns before reading licenses: the sToken and the location. */
export interface PreparedSync {
  readonly sToken: string;
  readonly locationUid: string;
  readonly locationName: string;
  readonly countryOrRegion: string | null;
  readonly expirationDateTime: Date | undefined;
  /** Where the metadata of new adamIds is looked up. */
  readonly metadataLookup: { readonly platform: string; readonly country: string };
}

/**
 * The first steps of every sync: client/config and the mdmInfo claim, the duplicate-location check.
 * `alongside` (a delta's reads) starts as soon as the sToken is known and runs while client/config is
 * checked; the preparation settles only once it has, and a failed check aborts it first (so nothing read
 * alongside is committed without the check).
 */
export type SyncPreparation = (
  claim: ClaimedSync,
  signal: AbortSignal,
  onProgress?: SyncProgressListener,
  alongside?: (sToken: string, signal: AbortSignal) => Promise<void>,
) => Promise<PreparedSync>;

/**
 * Builds the preparation every sync starts with (docs/apple.md, "A sync, call by call", steps 1-2):
 * client/config (location, country, expiry, the mdmInfo claim) and the duplicate-location check.
 */
export function createSyncPreparation(
  options: Pick<SyncEngineOptions, 'apple' | 'tokens' | 'jobs' | 'mdmInfo' | 'clock' | 'logger'>,
): SyncPreparation {
  const { apple, tokens, jobs, clock, logger } = options;
  return async (claim, signal, onProgress, alongside) => {
    const { tenantId, tokenId } = claim.job;
    onProgress?.({ phase: 'clientConfig', pages: 0, records: 0 });
    const [token, sToken] = await Promise.all([
      tokens.get(tenantId, tokenId),
      tokens.readSToken(tenantId, tokenId),
    ]);
    if (!token || sToken === undefined) throw new LeaseLostError('the token was deleted');
    if (alongside === undefined) return check(claim, signal, token, sToken);
    const side = new AbortController();
    const stop = () => side.abort(signal.reason);
    signal.addEventListener('abort', stop, { once: true });
    try {
      const running = alongside(sToken, side.signal);
      let prepared: PreparedSync;
      try {
        prepared = await check(claim, signal, token, sToken);
      } catch (error) {
        side.abort(error);
        await running.catch(() => undefined);
        throw error;
      }
      await running;
      return prepared;
    } finally {
      signal.removeEventListener('abort', stop);
    }
  };

  async function check(
    claim: ClaimedSync,
    signal: AbortSignal,
    token: { readonly claimTokenManagementFromExternalMdm: boolean },
    sToken: string,
  ): Promise<PreparedSync> {
    const { tenantId, tokenId } = claim.job;
    const call = { signal };

    const config = await apple.getClientConfig(sToken, call);
    const location = config.locationName === '' ? config.uId : config.locationName;
    const claimedBy = config.mdmInfo;
    if (claimedBy !== undefined && claimedBy.id !== options.mdmInfo.id) {
      if (!token.claimTokenManagementFromExternalMdm) {
        const who = claimedBy.name === '' ? 'another MDM' : `'${claimedBy.name}'`;
        throw syncFailureError({
          kind: 'externalMdm',
          message: `Apple location '${location}' is managed by ${who} (mdmInfo id ${claimedBy.id}). vppd did not touch it. To let vppd take it over, set claimTokenManagementFromExternalMdm to true and sync again.`,
        });
      }
      logger.warn(
        { tenantId, tokenId, location, previousMdm: claimedBy },
        'taking over the location from another MDM (claimTokenManagementFromExternalMdm is set)',
      );
      await apple.setClientConfig(sToken, { mdmInfo: options.mdmInfo }, call);
    } else if (claimedBy === undefined) {
      await apple.setClientConfig(sToken, { mdmInfo: options.mdmInfo }, call);
    }

    // The location's claim and the run's note of it, side by side: two round trips of one wait.
    const [holder] = await Promise.all([
      jobs.claimLocation(tenantId, tokenId, { uid: config.uId, name: location }, clock()),
      jobs.recordProgress(claim.runId, { locationUid: config.uId }),
    ]);
    if (holder !== undefined) {
      throw syncFailureError({
        kind: 'duplicateLocation',
        message: `Apple location '${location}' (uId ${config.uId}) is already held by another VPP token of this tenant (id ${holder}). Delete one of them; to renew a token, upload the new file to the existing token instead.`,
      });
    }
    return {
      sToken,
      locationUid: config.uId,
      locationName: location,
      countryOrRegion: config.countryISO2ACode?.toLowerCase() ?? null,
      expirationDateTime:
        config.tokenExpirationDate === undefined ? undefined : parseAppleDateTime(config.tokenExpirationDate),
      metadataLookup: {
        platform: config.defaultPlatform ?? 'volumestore',
        country: (config.countryISO2ACode ?? 'us').toLowerCase(),
      },
    };
  }
}

/**
 * The full sync of one token (docs/apple.md, "A sync, call by call"): client/config
 * (location, country, expiry, the mdmInfo claim), the duplicate-location check, every page of assets
 * and assignments streamed into staging rows and, while the assignments are paged, metadata for
 * adamIds not seen before. Data that moves mid-sync (another versionId) restarts the read; it is
 * never committed as a mix.
 */
export function createSyncEngine(options: SyncEngineOptions): SyncEngine {
  const { apple, licenses, jobs, clock, logger } = options;
  const maxRestarts = options.maxSnapshotRestarts ?? 2;
  const progressEveryMs = Math.max(0, options.progressEveryMs ?? 5000);
  const lane = options.lane ?? noLane;
  const prepare = createSyncPreparation(options);

  return async (claim, signal, onProgress, prepared) => {
    const { tenantId, tokenId } = claim.job;
    // What interrupted attempts staged goes while client/config is checked: neither waits for the other.
    const clearing = clearInterruptedAttempts(claim);
    let ready: PreparedSync;
    try {
      ready = prepared ?? (await prepare(claim, signal, onProgress));
    } catch (error) {
      await clearing.catch(() => undefined);
      throw error;
    }
    await clearing;

    for (let restart = 0; ; restart++) {
      try {
        const fetched = await fetchSnapshot(claim, ready.sToken, signal, onProgress, ready.metadataLookup);
        const { pageCount: pages, assetCount, assignmentCount } = fetched.commit;
        onProgress?.({ phase: 'metadata', pages, records: assetCount + assignmentCount });
        await fetched.metadata;
        return {
          ...fetched.commit,
          locationUid: ready.locationUid,
          locationName: ready.locationName,
          countryOrRegion: ready.countryOrRegion,
          expirationDateTime: ready.expirationDateTime,
        };
      } catch (error) {
        if (appleFailureOf(error)?.kind !== 'snapshotMoved' || restart >= maxRestarts || signal.aborted) {
          throw error;
        }
        logger.warn(
          { tenantId, tokenId, runId: claim.runId, restart: restart + 1 },
          "Apple's data changed during the sync; reading the snapshot again",
        );
        await licenses.clearRun(claim.runId);
      }
    }
  };

  async function fetchSnapshot(
    claim: ClaimedSync,
    sToken: string,
    signal: AbortSignal,
    onProgress: SyncProgressListener | undefined,
    metadataLookup: { platform: string; country: string },
  ): Promise<{
    commit: Omit<SnapshotCommit, 'locationUid' | 'locationName' | 'countryOrRegion' | 'expirationDateTime'>;
    /** The metadata lookup of new adamIds, started when the assets were read; never rejects. */
    metadata: Promise<void>;
  }> {
    const run = { runId: claim.runId, tenantId: claim.job.tenantId, tokenId: claim.job.tokenId };
    let pageCount = 0;
    let assetCount = 0;
    let total = 0;
    let used = 0;
    let available = 0;
    let assetsVersion: string | undefined;
    const adamIds = new Set<string>();
    // Asset pages are staged behind the fetch: the assignments are paged while they are written.
    const assetStaging = stagingChain();
    try {
      for await (const page of apple.assets(sToken, {}, { signal })) {
        assetsVersion ??= page.versionId;
        assetStaging.add(async () => {
          await lane.turn();
          await licenses.insertAssets(run, page.records);
        });
        for (const asset of page.records) {
          adamIds.add(asset.adamId);
          total += asset.totalCount;
          used += asset.assignedCount;
          available += asset.availableCount;
        }
        assetCount += page.records.length;
        pageCount++;
        onProgress?.({ phase: 'assets', pages: pageCount, records: assetCount });
      }
    } catch (error) {
      // Nothing of the run may land after the caller clears it.
      await assetStaging.settled();
      throw error;
    }

    let assignmentCount = 0;
    let assignmentsVersion: string | undefined;
    // The metadata lookup goes to another Apple host: it runs while the assignments are paged
    // instead of after them. Stopped if this read fails (a restart looks the adamIds up again).
    const lookup = new AbortController();
    const stopLookup = () => lookup.abort(signal.reason);
    signal.addEventListener('abort', stopLookup, { once: true });
    const metadata = fetchNewMetadata([...adamIds], sToken, metadataLookup, lookup.signal, claim)
      .catch(() => undefined)
      .finally(() => signal.removeEventListener('abort', stopLookup));
    // Licenses are grouped into chunks per asset and staged in batches (see LicenseStore.assignmentWriter).
    const staging = licenses.assignmentWriter(claim.runId);
    let lastNote = clock().getTime();
    try {
      for await (const page of apple.assignments(sToken, {}, { signal })) {
        signal.throwIfAborted();
        assetStaging.throwIfFailed();
        assignmentsVersion ??= page.versionId;
        await lane.turn();
        await staging.write(page.records, page.escapeFree === true);
        assignmentCount += page.records.length;
        pageCount++;
        onProgress?.({ phase: 'assignments', pages: pageCount, records: assetCount + assignmentCount });
        const now = clock().getTime();
        if (now - lastNote >= progressEveryMs) {
          lastNote = now;
          await jobs.recordProgress(claim.runId, { assetCount, assignmentCount, pageCount });
        }
      }
      await lane.turn();
      await staging.close();
      await assetStaging.finish();
    } catch (error) {
      lookup.abort(error);
      // A batch still being written must land before the caller clears the run.
      await staging.discard();
      await assetStaging.settled();
      await metadata;
      throw error;
    }
    // Counts in assets and holders in assignments must describe the same data.
    if (assetsVersion && assignmentsVersion && assetsVersion !== assignmentsVersion) {
      throw syncSnapshotMoved(assetsVersion, assignmentsVersion);
    }
    const versionId = assignmentsVersion || assetsVersion || '';
    await jobs.recordProgress(claim.runId, { versionId, assetCount, assignmentCount, pageCount });
    return {
      commit: {
        versionId,
        assetCount,
        assignmentCount,
        pageCount,
        totalLicenseCount: total,
        usedLicenseCount: used,
        availableLicenseCount: available,
      },
      metadata,
    };
  }

  /**
   * A job taken over (its worker died) or given back (vppd stopped) first deletes what its
   * interrupted attempts staged: the periodic sweep would get there too, but only a minute later,
   * and a large run's rows are worth freeing before staging the same data again.
   */
  async function clearInterruptedAttempts(claim: ClaimedSync): Promise<void> {
    const runs = await jobs.listRuns(claim.job.tenantId, claim.job.tokenId, 10);
    for (const run of runs) {
      if (run.jobId !== claim.job.id || run.id === claim.runId || run.outcome !== 'interrupted') continue;
      await licenses.clearRun(run.id);
      await jobs.markCleaned(run.id);
    }
  }

  /** Names and bundle ids decorate licenses; a failed lookup never fails the sync (retried next time). */
  async function fetchNewMetadata(
    adamIds: readonly string[],
    sToken: string,
    lookup: { platform: string; country: string },
    signal: AbortSignal,
    claim: ClaimedSync,
  ): Promise<void> {
    const known = await licenses.knownMetadata(adamIds);
    const missing = adamIds.filter((id) => !known.has(id));
    if (missing.length === 0) return;
    try {
      const found = await apple.lookupMetadata(missing, { ...lookup, sToken, signal });
      await licenses.upsertMetadata([...found.values()], lookup, clock());
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

/**
 * Writes run one after the other, behind the caller: `add` queues a write and returns at once. The first
 * failure is kept (the writes queued after it are skipped) and thrown by `throwIfFailed` and `finish`;
 * `settled` waits for the queue whatever happened, so a caller that gives up can clear what was written.
 */
function stagingChain(): {
  add(write: () => Promise<void>): void;
  throwIfFailed(): void;
  finish(): Promise<void>;
  settled(): Promise<void>;
} {
  let queue: Promise<void> = Promise.resolve();
  let failure: { readonly error: unknown } | undefined;
  const throwIfFailed = () => {
    if (failure !== undefined) throw failure.error;
  };
  return {
    add(write) {
      queue = queue.then(async () => {
        if (failure !== undefined) return;
        try {
          await write();
        } catch (error) {
          failure = { error };
        }
      });
    },
    throwIfFailed,
    async finish() {
      await queue;
      throwIfFailed();
    },
    settled: () => queue,
  };
}

/** The failure of a snapshot whose assets and assignments came from different Apple versions. */
function syncSnapshotMoved(assetsVersion: string, assignmentsVersion: string) {
  // Built like the Apple client's own snapshotMoved error, so the restart logic treats both alike.
  return appleFailureError({
    failure: {
      kind: 'snapshotMoved',
      message: `Apple's data changed between reading assets (versionId '${assetsVersion}') and assignments (versionId '${assignmentsVersion}')`,
    },
    endpoint: 'GET /assets + GET /assignments',
    attempts: 1,
  });
}
