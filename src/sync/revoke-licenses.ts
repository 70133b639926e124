import type { AppleClient } from '../apple/apple-client.js';
import { appleFailureOf } from '../apple/apple-failure.js';
import type { AppleEventStatus } from '../apple/apple-types.js';
import type { VppTokenActionFailureReason } from '../domain/enums.js';
import { errorCodes, errors, VppdError } from '../domain/errors.js';
import type { Logger } from '../domain/logger.js';
import { failureOutcome } from '../domain/sync-failure.js';
import type { StorageEngine } from '../storage/engine.js';
import type { LicenseReadStore } from '../storage/license-read-store.js';
import type { VppTokenStore } from '../storage/vpp-token-store.js';
import { createRevokeActionStore, type RevokeActionStore, type RevokeCounts } from './revoke-action-store.js';

/** The body of `POST .../vppTokens/{id}/revokeLicenses` (CSDL action `revokeLicenses`). */
export interface RevokeLicensesRequest {
  /** Required by Graph; Apple's v2 revoke has no notification switch, so it is recorded only. */
  readonly notifyManagedDevices: boolean;
  /** Also revoke licenses Apple lists that vppd's snapshot does not hold (read live from Apple). */
  readonly revokeUntrackedLicenses: boolean;
}

const actionName = 'microsoft.graph.revokeLicenses';
const parameterNames = ['notifyManagedDevices', 'revokeUntrackedLicenses'] as const;

/** Validates the action's body strictly: an object with a boolean `notifyManagedDevices`, nothing unknown. */
export function parseRevokeLicensesRequest(body: unknown): RevokeLicensesRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw errors.badRequest(`The body of ${actionName} must be a JSON object with 'notifyManagedDevices'.`);
  }
  const record = body as Record<string, unknown>;
  for (const name of Object.keys(record)) {
    if (!(parameterNames as readonly string[]).includes(name)) {
      throw new VppdError(
        errorCodes.unknownProperty,
        `The parameter '${name.slice(0, 100)}' does not exist on action '${actionName}'. Its parameters are ${parameterNames.join(', ')}.`,
        { details: { property: name.slice(0, 100) } },
      );
    }
  }
  const notify = record.notifyManagedDevices;
  if (typeof notify !== 'boolean') {
    throw errors.badRequest(
      `The parameter 'notifyManagedDevices' of ${actionName} is required and must be true or false.`,
    );
  }
  const untracked = record.revokeUntrackedLicenses;
  if (untracked !== undefined && untracked !== null && typeof untracked !== 'boolean') {
    throw errors.badRequest(
      `The parameter 'revokeUntrackedLicenses' of ${actionName} must be true, false or null.`,
    );
  }
  return { notifyManagedDevices: notify, revokeUntrackedLicenses: untracked === true };
}

/** The Apple calls a revoke makes. */
export type RevokeAppleClient = Pick<
  AppleClient,
  'getServiceConfig' | 'revokeAssets' | 'getEventStatus' | 'assets' | 'assignments'
>;

export interface RevokeServiceOptions {
  /** The storage engine (revoke action results are read and written in locked transactions). */
  readonly storage: StorageEngine;
  readonly tokens: VppTokenStore;
  readonly licenseReads: LicenseReadStore;
  readonly apple: RevokeAppleClient;
  readonly clock: () => Date;
  /** Waits between status polls; rejects with the signal's reason when it aborts. */
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly logger: Logger;
  /** First wait before polling an event's status (default 1 s); doubles up to `maxPollIntervalMs`. */
  readonly pollIntervalMs?: number;
  /** Longest wait between polls (default 10 s). */
  readonly maxPollIntervalMs?: number;
  /** Polls of one event before it counts as failed (default 60: about 9 minutes with the defaults). */
  readonly maxPollsPerEvent?: number;
  /**
   * A pending/active revoke not updated for this long has lost its process (default 20 min; a
   * running revoke updates its entry at every Apple call, far more often).
   */
  readonly staleAfterMs?: number;
  /** After a revoke ended (done or failed): e.g. request a sync so the snapshot shows it. */
  readonly onRevokeEnded?: (tenantId: string, tokenId: string) => Promise<void>;
}

/** What {@link RevokeService.request} did. */
export type RevokeRequestOutcome = 'started' | 'coalesced';

/**
 * License revokes of a token (Graph's `revokeLicenses`): accepted and recorded as a pending
 * `revokeLicenses` action result, then run in the background of this process — Apple's
 * `POST /assets/revoke` in batches within the service limits, each event's `GET /status` polled to its
 * end — while the entry moves active → done | failed with its counts. Revokes whose process died are
 * failed (`internalError`) by {@link RevokeService.recoverAbandoned}.
 */
export interface RevokeService {
  /** Checks the token, records the pending action durably and starts the work; coalesces with one in flight. */
  request(tenantId: string, tokenId: string, request: RevokeLicensesRequest): Promise<RevokeRequestOutcome>;
  /** Fails (internalError) every pending/active revoke not updated for `staleAfterMs`; returns how many. */
  recoverAbandoned(): Promise<number>;
  /** Runs {@link recoverAbandoned} now and then every `intervalMs` until {@link close}. */
  startRecovery(intervalMs?: number): Promise<void>;
  /** Resolves when every revoke this process runs has ended (tests, graceful shutdown). */
  idle(): Promise<void>;
  /** Stops the recovery timer and aborts running revokes (they end as failed/internalError). */
  close(): Promise<void>;
}

const defaultLimit = 100;

/** Builds the revoke service. */
export function createRevokeService(options: RevokeServiceOptions): RevokeService {
  const { tokens, licenseReads, apple, clock, sleep, logger } = options;
  const actions: RevokeActionStore = createRevokeActionStore({ storage: options.storage });
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const maxPollIntervalMs = options.maxPollIntervalMs ?? 10_000;
  const maxPolls = options.maxPollsPerEvent ?? 60;
  const staleAfterMs = options.staleAfterMs ?? 20 * 60_000;
  const running = new Set<Promise<void>>();
  const closing = new AbortController();
  let recoveryTimer: ReturnType<typeof setInterval> | undefined;

  const finish = async (
    tenantId: string,
    tokenId: string,
    event: 'succeeded' | 'failed',
    counts: RevokeCounts,
  ): Promise<void> => {
    await actions.transition(tenantId, tokenId, event, clock(), counts);
    logger.info({ tokenId, tenantId, event, ...counts }, 'revokeLicenses ended');
    if (options.onRevokeEnded) {
      try {
        await options.onRevokeEnded(tenantId, tokenId);
      } catch (error) {
        logger.warn({ err: error, tokenId }, 'revokeLicenses: follow-up after the revoke failed');
      }
    }
  };

  /** Polls an event until COMPLETE/FAILED; undefined when it did not end within the poll budget. */
  const pollEvent = async (
    sToken: string,
    eventId: string,
    heartbeat: () => Promise<void>,
  ): Promise<AppleEventStatus | undefined> => {
    let wait = pollIntervalMs;
    for (let poll = 0; poll < maxPolls; poll += 1) {
      await sleep(wait, closing.signal);
      const status = await apple.getEventStatus(sToken, eventId, { signal: closing.signal });
      if (status.eventStatus === 'COMPLETE' || status.eventStatus === 'FAILED') return status;
      await heartbeat();
      wait = Math.min(maxPollIntervalMs, wait * 2);
    }
    return undefined;
  };

  const run = async (tenantId: string, tokenId: string, request: RevokeLicensesRequest): Promise<void> => {
    let counts: RevokeCounts = { actionFailureReason: 'none', totalLicensesCount: 0, failedLicensesCount: 0 };
    let remaining = 0;
    try {
      const started = await actions.transition(tenantId, tokenId, 'started', clock(), counts);
      if (!started.result) return; // the token was deleted meanwhile
      const sToken = await tokens.readSToken(tenantId, tokenId);
      if (sToken === undefined) return;

      const holders = await collectHolders(tenantId, tokenId, sToken, request.revokeUntrackedLicenses);
      const limits = await revokeLimits();
      const batches = toBatches(holders, limits);
      const total = sum(holders.serialNumbers) + sum(holders.clientUserIds);
      counts = { ...counts, totalLicensesCount: total };
      remaining = total;
      await actions.progress(tenantId, tokenId, clock(), counts);
      logger.info(
        {
          tokenId,
          tenantId,
          devices: holders.serialNumbers.size,
          users: holders.clientUserIds.size,
          batches: batches.length,
          notifyManagedDevices: request.notifyManagedDevices,
          revokeUntrackedLicenses: request.revokeUntrackedLicenses,
        },
        'revokeLicenses started',
      );
      const heartbeat = async () => {
        await actions.progress(tenantId, tokenId, clock(), counts);
      };

      for (const batch of batches) {
        const batchLicenses = licensesOf(batch, holders);
        const { eventId } = await apple.revokeAssets(
          sToken,
          { serialNumbers: batch.serialNumbers, clientUserIds: batch.clientUserIds },
          { signal: closing.signal },
        );
        const status = await pollEvent(sToken, eventId, heartbeat);
        let failed: number;
        if (status === undefined) {
          logger.warn(
            { tokenId, eventId, polls: maxPolls },
            'revokeLicenses: Apple did not finish an event in time',
          );
          failed = batchLicenses;
        } else if (status.eventStatus === 'FAILED') {
          failed = batchLicenses;
        } else {
          failed = Math.min(batchLicenses, failedLicensesOf(status, holders));
        }
        remaining -= batchLicenses;
        counts = {
          actionFailureReason: counts.failedLicensesCount + failed > 0 ? 'appleFailure' : 'none',
          totalLicensesCount: total,
          failedLicensesCount: counts.failedLicensesCount + failed,
        };
        await heartbeat();
      }
      await finish(tenantId, tokenId, 'succeeded', counts);
    } catch (error) {
      const failure = appleFailureOf(error);
      const reason: VppTokenActionFailureReason = failure
        ? failureOutcome(failure.kind).reason
        : 'internalError';
      if (!failure) logger.error({ err: error, tokenId, tenantId }, 'revokeLicenses failed inside vppd');
      else logger.warn({ tokenId, tenantId, failure }, 'revokeLicenses failed at Apple');
      // Licenses not yet confirmed revoked (this batch and the ones after it) count as failed.
      counts = {
        actionFailureReason: reason,
        totalLicensesCount: counts.totalLicensesCount,
        failedLicensesCount: counts.failedLicensesCount + Math.max(0, remaining),
      };
      try {
        await finish(tenantId, tokenId, 'failed', counts);
      } catch (recordError) {
        logger.error({ err: recordError, tokenId }, 'revokeLicenses: could not record the failure');
      }
    }
  };

  const collectHolders = async (
    tenantId: string,
    tokenId: string,
    sToken: string,
    untracked: boolean,
  ): Promise<Holders> => {
    const snapshot = await licenseReads.snapshotHolders(tenantId, tokenId);
    // Holders whose licenses are all non-revocable (books) have nothing to revoke: not sent.
    const serialNumbers = new Map([...(snapshot?.serialNumbers ?? [])].filter(([, n]) => n > 0));
    const clientUserIds = new Map([...(snapshot?.clientUserIds ?? [])].filter(([, n]) => n > 0));
    if (untracked) {
      // Apple's live list: holders vppd's snapshot does not know are revoked too (each license counts).
      const extraSerials = new Map<string, number>();
      const extraUsers = new Map<string, number>();
      const notRevocable = new Set<string>();
      for await (const page of apple.assets(sToken, {}, { signal: closing.signal })) {
        for (const asset of page.records) {
          if (asset.revocable === false) notRevocable.add(`${asset.adamId}\n${asset.pricingParam}`);
        }
      }
      for await (const page of apple.assignments(sToken, {}, { signal: closing.signal })) {
        for (const a of page.records) {
          if (notRevocable.has(`${a.adamId}\n${a.pricingParam}`)) continue;
          if (a.serialNumber !== undefined && !snapshot?.serialNumbers.has(a.serialNumber)) {
            extraSerials.set(a.serialNumber, (extraSerials.get(a.serialNumber) ?? 0) + 1);
          } else if (a.clientUserId !== undefined && !snapshot?.clientUserIds.has(a.clientUserId)) {
            extraUsers.set(a.clientUserId, (extraUsers.get(a.clientUserId) ?? 0) + 1);
          }
        }
      }
      for (const [k, v] of extraSerials) serialNumbers.set(k, v);
      for (const [k, v] of extraUsers) clientUserIds.set(k, v);
    }
    return { serialNumbers, clientUserIds };
  };

  const revokeLimits = async (): Promise<{ serials: number; users: number }> => {
    try {
      const config = await apple.getServiceConfig({ signal: closing.signal });
      return {
        serials: positive(config.limits.maxRevokeSerialNumbers) ?? defaultLimit,
        users: positive(config.limits.maxRevokeClientUserIds) ?? defaultLimit,
      };
    } catch (error) {
      // service/config is advisory here: Apple's documented limit (100) is used when it cannot be read.
      logger.warn({ err: error }, 'revokeLicenses: service/config unavailable, using the documented limits');
      return { serials: defaultLimit, users: defaultLimit };
    }
  };

  const track = (work: Promise<void>) => {
    running.add(work);
    void work.finally(() => running.delete(work));
  };

  const recoverAbandoned = async (): Promise<number> => {
    const now = clock();
    const stale = await actions.listStale(new Date(now.getTime() - staleAfterMs));
    let recovered = 0;
    for (const open of stale) {
      const current = await actions.get(open.tenantId, open.tokenId);
      const counts: RevokeCounts = {
        actionFailureReason: 'internalError',
        totalLicensesCount: current?.revoke?.totalLicensesCount ?? 0,
        failedLicensesCount: current?.revoke?.failedLicensesCount ?? 0,
      };
      try {
        await actions.transition(open.tenantId, open.tokenId, 'failed', now, counts);
        recovered += 1;
        logger.warn(
          {
            tokenId: open.tokenId,
            tenantId: open.tenantId,
            lastUpdated: open.lastUpdatedDateTime.toISOString(),
          },
          'revokeLicenses abandoned by a stopped process: marked failed',
        );
      } catch (error) {
        logger.error({ err: error, tokenId: open.tokenId }, 'revokeLicenses: recovery failed');
      }
    }
    return recovered;
  };

  return {
    async request(tenantId, tokenId, request) {
      const token = await tokens.get(tenantId, tokenId);
      if (!token) throw errors.notFound('vppToken', tokenId);
      if (token.state !== 'valid') {
        throw errors.conflict(
          `The VPP token's state is '${token.state}': licenses can be revoked only with a valid token. Renew or sync the token first.`,
          { state: token.state },
        );
      }
      if (closing.signal.aborted) throw errors.internal('The revoke service is stopping.');
      const zero: RevokeCounts = {
        actionFailureReason: 'none',
        totalLicensesCount: 0,
        failedLicensesCount: 0,
      };
      const recorded = await actions.transition(tenantId, tokenId, 'requested', clock(), zero);
      if (!recorded.result) throw errors.notFound('vppToken', tokenId);
      if (recorded.coalesced) return 'coalesced';
      track(run(tenantId, tokenId, request));
      return 'started';
    },

    recoverAbandoned,

    async startRecovery(intervalMs = Math.max(1000, Math.floor(staleAfterMs / 4))) {
      await recoverAbandoned();
      if (recoveryTimer !== undefined || closing.signal.aborted) return;
      recoveryTimer = setInterval(() => {
        recoverAbandoned().catch((error: unknown) => logger.error({ err: error }, 'revoke recovery failed'));
      }, intervalMs);
      recoveryTimer.unref();
    },

    async idle() {
      while (running.size > 0) await Promise.allSettled([...running]);
    },

    async close() {
      if (recoveryTimer !== undefined) clearInterval(recoveryTimer);
      recoveryTimer = undefined;
      closing.abort(new Error('vppd is stopping'));
      while (running.size > 0) await Promise.allSettled([...running]);
    },
  };
}

interface Holders {
  /** Serial number → licenses it holds. */
  readonly serialNumbers: ReadonlyMap<string, number>;
  /** clientUserId → licenses the user holds. */
  readonly clientUserIds: ReadonlyMap<string, number>;
}

interface RevokeBatch {
  readonly serialNumbers: string[];
  readonly clientUserIds: string[];
}

/** Pairs chunks of serials and users so each Apple call carries up to both limits. */
function toBatches(holders: Holders, limits: { serials: number; users: number }): RevokeBatch[] {
  const serials = [...holders.serialNumbers.keys()];
  const users = [...holders.clientUserIds.keys()];
  const count = Math.max(Math.ceil(serials.length / limits.serials), Math.ceil(users.length / limits.users));
  const batches: RevokeBatch[] = [];
  for (let i = 0; i < count; i += 1) {
    batches.push({
      serialNumbers: serials.slice(i * limits.serials, (i + 1) * limits.serials),
      clientUserIds: users.slice(i * limits.users, (i + 1) * limits.users),
    });
  }
  return batches;
}

function licensesOf(batch: RevokeBatch, holders: Holders): number {
  let n = 0;
  for (const s of batch.serialNumbers) n += holders.serialNumbers.get(s) ?? 0;
  for (const u of batch.clientUserIds) n += holders.clientUserIds.get(u) ?? 0;
  return n;
}

/**
 * Licenses an event failed to revoke: a failure naming an asset is one license; one naming only a
 * holder is every license the holder had.
 */
function failedLicensesOf(status: AppleEventStatus, holders: Holders): number {
  let failed = 0;
  for (const failure of status.failures) {
    const serial = typeof failure.serialNumber === 'string' ? failure.serialNumber : undefined;
    const user = typeof failure.clientUserId === 'string' ? failure.clientUserId : undefined;
    const held =
      serial !== undefined
        ? (holders.serialNumbers.get(serial) ?? 1)
        : user !== undefined
          ? (holders.clientUserIds.get(user) ?? 1)
          : 1;
    failed += failure.adamId !== undefined ? 1 : held;
  }
  return failed;
}

function sum(map: ReadonlyMap<string, number>): number {
  let n = 0;
  for (const v of map.values()) n += v;
  return n;
}

function positive(value: number | undefined): number | undefined {
  return value !== undefined && Number.isInteger(value) && value > 0 ? value : undefined;
}
