import type { VppTokenState, VppTokenSyncStatus } from '../domain/enums.js';
import { vppTokenAccountType } from '../domain/enums.js';
import { formatGraphDateTime } from '../domain/graph-date-time.js';
import { isNeverSynced } from '../domain/sync-lifecycle.js';
import type { VppToken } from '../domain/vpp-token.js';
import type { SyncJobStore, SyncRun } from '../storage/sync-job-store.js';
import type { LiveSync, SyncProgressStore } from '../storage/sync-progress-store.js';
import type { VppTokenStore } from '../storage/vpp-token-store.js';
import { presentRunFailure, type RunFailureBody } from './run-failure.js';

/** One row of the dashboard's table: a token with what its sync history and live job say (wire JSON). */
export interface TokenSummary {
  readonly id: string;
  readonly displayName: string | null;
  readonly organizationName: string | null;
  readonly locationName: string | null;
  readonly countryOrRegion: string | null;
  readonly appleId: string | null;
  readonly vppTokenAccountType: string;
  readonly state: VppTokenState;
  readonly lastSyncStatus: VppTokenSyncStatus;
  readonly expirationDateTime: string;
  readonly lastModifiedDateTime: string;
  /** End of the newest completed sync (Graph's `lastSyncDateTime`), or null when none completed. */
  readonly lastSuccessDateTime: string | null;
  /** Why the token is failed (from its newest run), while it is failed. */
  readonly failure: RunFailureBody | null;
  /** The sync in flight, while there is one. */
  readonly sync: {
    readonly job: 'queued' | 'running';
    readonly phase: string | null;
    readonly pages: number;
    readonly records: number;
  } | null;
}

/**
 * Combines a token with its sync facts into the dashboard's row: `lastRun` is its newest sync run (read
 * only for failed tokens), `live` its job in flight. The state is the stored one, as on Graph's reads (a
 * passed expiry is stored as `expired` by the scheduler).
 */
export function summarizeToken(
  token: VppToken,
  lastRun: SyncRun | undefined,
  live: LiveSync | undefined,
): TokenSummary {
  const failure =
    token.lastSyncStatus === 'failed' && lastRun !== undefined ? presentRunFailure(lastRun.failure) : null;
  return {
    id: token.id,
    displayName: token.displayName,
    organizationName: token.organizationName,
    locationName: token.locationName,
    countryOrRegion: token.countryOrRegion,
    appleId: token.appleId,
    vppTokenAccountType: vppTokenAccountType.toWire(token.vppTokenAccountType),
    state: token.state,
    lastSyncStatus: token.lastSyncStatus,
    expirationDateTime: formatGraphDateTime(token.expirationDateTime),
    lastModifiedDateTime: formatGraphDateTime(token.lastModifiedDateTime),
    // lastSyncDateTime moves only when a sync completes; before that it holds Graph's "never" sentinel.
    lastSuccessDateTime: isNeverSynced(token.lastSyncDateTime)
      ? null
      : formatGraphDateTime(token.lastSyncDateTime),
    failure,
    sync:
      live === undefined
        ? null
        : { job: live.state, phase: live.phase ?? null, pages: live.pages, records: live.records },
  };
}

export interface TokenSummaryLoaderOptions {
  readonly tokens: Pick<VppTokenStore, 'list'>;
  readonly jobs: Pick<SyncJobStore, 'newestRunsOfFailedTokens'>;
  readonly progress: Pick<SyncProgressStore, 'liveOfTenant'>;
  readonly clock: () => Date;
}

/** Reads a tenant's dashboard rows: three queries (tokens, sync history, jobs in flight), whatever the count. */
export function createTokenSummaryLoader(
  options: TokenSummaryLoaderOptions,
): (tenantId: string) => Promise<TokenSummary[]> {
  const { tokens, jobs, progress, clock } = options;
  return async (tenantId) => {
    const now = clock();
    const [list, runs, live] = await Promise.all([
      tokens.list(tenantId),
      jobs.newestRunsOfFailedTokens(tenantId),
      progress.liveOfTenant(tenantId, now),
    ]);
    return list.map((token) => summarizeToken(token, runs.get(token.id), live.get(token.id)));
  };
}
