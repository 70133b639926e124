import type { AppleClient } from '../apple/apple-client.js';
import type { Logger } from '../domain/logger.js';
import type { StorageEngine } from '../storage/engine.js';
import type { LicenseReadStore } from '../storage/license-read-store.js';
import type { VppTokenStore } from '../storage/vpp-token-store.js';
import { type AssetCounts, createLicenseCountsStore } from './license-counts-store.js';

export interface LicenseCountsSyncOptions {
  /** The storage engine (the counts are written under a lock on the snapshot's row). */
  readonly storage: StorageEngine;
  readonly tokens: VppTokenStore;
  /** Only {@link LicenseCountsSync.syncTenant} needs it. */
  readonly licenseReads?: LicenseReadStore;
  readonly apple: Pick<AppleClient, 'assets'>;
  readonly logger: Logger;
  /** When reads start and end (default the wall clock); the same clock as the notification receiver's. */
  readonly clock?: () => Date;
  /** Tokens refreshed at once (default 4; Apple's rate limit is per location, so they do not compete). */
  readonly concurrency?: number;
}

/** The outcome of one token's refresh. */
export interface TokenCountsOutcome {
  readonly tokenId: string;
  readonly outcome: 'updated' | 'superseded' | 'failed';
  /** Assets of the snapshot whose counts were updated. */
  readonly updated: number;
  readonly error?: string;
}

/** Graph's `syncLicenseCounts`: refreshes asset counts of every token of a tenant that has a snapshot. */
export interface LicenseCountsSync {
  /**
   * For each of the tenant's tokens with a current snapshot: reads every page of Apple's `GET /assets`
   * and updates the counts of the snapshot's assets in one transaction per token. A token that fails
   * (Apple error, token gone) is logged and reported in the result; it does not stop the others.
   */
  syncTenant(tenantId: string, signal?: AbortSignal): Promise<TokenCountsOutcome[]>;
  /** The same for one token (what a `licenseCounts` job runs); a token without a snapshot is `superseded`. */
  refreshToken(tenantId: string, tokenId: string, signal?: AbortSignal): Promise<TokenCountsOutcome>;
}

/** Builds the license-count refresher. */
export function createLicenseCountsSync(options: LicenseCountsSyncOptions): LicenseCountsSync {
  const { tokens, licenseReads, apple, logger } = options;
  const store = createLicenseCountsStore({ storage: options.storage });
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const clock = options.clock ?? (() => new Date());

  const refreshToken = async (
    tenantId: string,
    tokenId: string,
    runId: string,
    signal: AbortSignal | undefined,
  ): Promise<TokenCountsOutcome> => {
    try {
      const sToken = await tokens.readSToken(tenantId, tokenId);
      if (sToken === undefined) return { tokenId, outcome: 'superseded', updated: 0 };
      const counts: AssetCounts[] = [];
      const startedAt = clock();
      for await (const page of apple.assets(sToken, {}, signal ? { signal } : {})) {
        for (const a of page.records) {
          counts.push({
            adamId: a.adamId,
            pricingParam: a.pricingParam,
            totalCount: a.totalCount,
            assignedCount: a.assignedCount,
            availableCount: a.availableCount,
            retiredCount: a.retiredCount,
          });
        }
      }
      const result = await store.applyCounts(tenantId, tokenId, runId, counts, {
        startedAt,
        finishedAt: clock(),
      });
      if (!result.applied) return { tokenId, outcome: 'superseded', updated: 0 };
      if (result.unknown > 0) {
        logger.info(
          { tokenId, tenantId, unknownAssets: result.unknown },
          'syncLicenseCounts: Apple lists assets the snapshot lacks; the next full sync adds them',
        );
      }
      return { tokenId, outcome: 'updated', updated: result.updated };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      logger.warn({ tokenId, tenantId, err: error }, 'syncLicenseCounts: a token could not be refreshed');
      return { tokenId, outcome: 'failed', updated: 0, error: message };
    }
  };

  return {
    async refreshToken(tenantId, tokenId, signal) {
      const runId = await store.currentRunId(tenantId, tokenId);
      if (runId === undefined) return { tokenId, outcome: 'superseded', updated: 0 };
      return refreshToken(tenantId, tokenId, runId, signal);
    },

    async syncTenant(tenantId, signal) {
      if (licenseReads === undefined) throw new Error('syncTenant needs licenseReads');
      const pointers = await licenseReads.snapshotPointers(tenantId);
      const outcomes: TokenCountsOutcome[] = new Array(pointers.length);
      let next = 0;
      const worker = async () => {
        for (;;) {
          const index = next++;
          const pointer = pointers[index];
          if (pointer === undefined) return;
          outcomes[index] = await refreshToken(tenantId, pointer.tokenId, pointer.runId, signal);
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, pointers.length) }, worker));
      return outcomes;
    },
  };
}
