import type { AppleClient } from '../apple/apple-client.js';
import { appleErrorNumbers, appleFailureOf } from '../apple/apple-failure.js';
import type { AppleEventStatus } from '../apple/apple-types.js';
import { errors } from '../domain/errors.js';
import {
  checkOperationSize,
  type LicenseOperationRequest,
  maxOperationHolders,
  planBatches,
} from '../domain/license-operation.js';
import { planReclaim, type ReclaimPlan, type ReclaimRequest } from '../domain/license-reclaim.js';
import type { Logger } from '../domain/logger.js';
import { isTransientFailure } from '../domain/sync-failure.js';
import type { LicenseAssignmentInput } from '../storage/assignment-chunks.js';
import type { StorageEngine } from '../storage/engine.js';
import {
  type ClaimedOperation,
  createOperationClaims,
  type OperationBatch,
} from '../storage/license-operations/operation-claims.js';
import {
  createLicenseOperationStore,
  type LicenseOperation,
  type LicenseOperationFailure,
  type LicenseOperationSource,
  type LicenseOperationStore,
  type SnapshotUpdate,
} from '../storage/license-operations/operation-store.js';
import { createSnapshotPatches } from '../storage/license-operations/snapshot-patch.js';
import type { VppTokenStore } from '../storage/vpp-token-store.js';
import { createLicenseCountsSync } from './license-counts-sync.js';

/** The Apple calls license operations make. */
export type LicenseOperationsApple = Pick<
  AppleClient,
  | 'associationLimits'
  | 'associateAssets'
  | 'disassociateAssets'
  | 'getAssetEventStatus'
  | 'assets'
  | 'assignments'
>;

/** Timing of the worker; every value is injectable so tests run in milliseconds. */
export interface LicenseOperationSettings {
  /** First poll of an event after it was submitted (default 5 s). */
  readonly firstPollMs: number;
  /** Between polls once Apple answered PENDING: Apple asks for at least 30 s (default 30 s). */
  readonly pollIntervalMs: number;
  /** An event still PENDING this long after it was submitted is submitted again, as Apple documents (10 min). */
  readonly resubmitAfterMs: number;
  /** Submissions of one batch before vppd gives up on it (default 3). */
  readonly maxSubmissions: number;
  /** After an Apple call failed (retries of the client used up): wait this long (default 30 s). */
  readonly callRetryMs: number;
  /** Failed calls in a row before the batch is failed (default 5). */
  readonly maxCallFailures: number;
  /** How often an idle worker looks for due operations (default 1 s). */
  readonly idleMs: number;
  /** Lease of a claimed operation (default 30 s; renewed after every Apple call). */
  readonly leaseMs: number;
}

export const defaultLicenseOperationSettings: LicenseOperationSettings = {
  firstPollMs: 5_000,
  pollIntervalMs: 30_000,
  resubmitAfterMs: 10 * 60_000,
  maxSubmissions: 3,
  callRetryMs: 30_000,
  maxCallFailures: 5,
  idleMs: 1_000,
  leaseMs: 30_000,
};

/** Told when an operation ends (alerts, metrics). */
export type OperationEndedListener = (
  operation: LicenseOperation,
  failures: readonly LicenseOperationFailure[],
) => void;

export interface LicenseOperationServiceOptions {
  readonly storage: StorageEngine;
  readonly tokens: VppTokenStore;
  readonly apple: LicenseOperationsApple;
  readonly clock: () => Date;
  readonly newId: () => string;
  readonly logger: Logger;
  readonly settings?: Partial<LicenseOperationSettings>;
  /** Unique name of this process in leases. */
  readonly workerId: string;
  /** Requests a full sync (when Apple refuses the snapshot's version for a delta). */
  readonly requestFullSync: (tenantId: string, tokenId: string) => Promise<void>;
  readonly onOperationEnded?: OperationEndedListener;
}

/** License operations of every tenant: requests, reads, and the worker that runs them. */
export interface LicenseOperationService {
  readonly store: LicenseOperationStore;
  /**
   * Records an operation for a `valid` token (404 unknown token, 409 with the reason otherwise). With an
   * idempotency key used before for the same request, answers that operation (`created: false`).
   */
  request(
    tenantId: string,
    tokenId: string,
    request: LicenseOperationRequest,
    options?: { readonly idempotencyKey?: string; readonly source?: LicenseOperationSource },
  ): Promise<{ operation: LicenseOperation; created: boolean }>;
  /**
   * Plans a reclaim from the token's current snapshot: every license of the apps in scope whose holder is
   * not on the keep-list is released. Unless `dryRun`, records one disassociation per app and holder kind
   * (source `reclaim`); the token must then be `valid`. 409 when the token has no snapshot yet.
   */
  reclaim(
    tenantId: string,
    tokenId: string,
    request: ReclaimRequest,
  ): Promise<{ plan: ReclaimPlan; operations: LicenseOperation[] }>;
  /**
   * An operation became due now (Apple's ASSET_MANAGEMENT notification ended its batch): an idle worker
   * of this process looks at once instead of after `idleMs`.
   */
  wake(): void;
  /** Claims one due operation and does what is due now; false when nothing was due. */
  runOnce(): Promise<boolean>;
  /** Starts the worker loop of this process. */
  start(): void;
  /** Stops the loop after the step in progress; leases are left to expire (or given back when idle). */
  stop(): Promise<void>;
}

export function createLicenseOperationService(
  options: LicenseOperationServiceOptions,
): LicenseOperationService {
  const { storage, tokens, apple, clock, newId, logger, workerId } = options;
  const settings: LicenseOperationSettings = { ...defaultLicenseOperationSettings, ...options.settings };
  const store = createLicenseOperationStore({ storage, newId });
  const claims = createOperationClaims({ storage });
  const patches = createSnapshotPatches({ storage });
  const counts = createLicenseCountsSync({ storage, tokens, apple, logger, clock });
  let loop: Promise<void> | undefined;
  let stopping = false;
  let wake: (() => void) | undefined;
  /** Set by wake() while the worker is busy: it looks again before idling. */
  let woken = false;

  const at = (ms: number) => new Date(clock().getTime() + ms);

  const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

  /** Sends one batch to Apple; true when the lease is still ours. */
  const submit = async (claim: ClaimedOperation, sToken: string, batch: OperationBatch): Promise<boolean> => {
    const input = {
      assets: batch.assets,
      ...(claim.holderKind === 'serialNumber'
        ? { serialNumbers: batch.holders }
        : { clientUserIds: batch.holders }),
    };
    try {
      const { eventId } =
        claim.operation.kind === 'associate'
          ? await apple.associateAssets(sToken, input)
          : await apple.disassociateAssets(sToken, input);
      return claims.recordSubmitted(claim, batch.index, eventId, clock(), at(settings.firstPollMs));
    } catch (error) {
      return callFailed(claim, batch, error);
    }
  };

  /** An Apple call failed: transient failures are tried again later, permanent ones fail the batch. */
  const callFailed = async (
    claim: ClaimedOperation,
    batch: OperationBatch,
    error: unknown,
  ): Promise<boolean> => {
    const failure = appleFailureOf(error);
    const message = messageOf(error);
    const transient = failure === undefined ? false : isTransientFailure(failure.kind);
    logger.warn(
      { operationId: claim.operation.id, batch: batch.index, kind: failure?.kind, err: error },
      'license operation: an Apple call failed',
    );
    if (transient && batch.callFailures + 1 < settings.maxCallFailures) {
      return claims.recordCallFailure(claim, batch.index, message, at(settings.callRetryMs), clock());
    }
    return claims.recordOutcome(
      claim,
      batch.index,
      {
        completed: 0,
        failures: [],
        errorMessage: `Apple refused the ${claim.operation.kind} call: ${message}`,
      },
      clock(),
    );
  };

  const failuresOf = (status: AppleEventStatus): LicenseOperationFailure[] =>
    status.failures.map((f) => {
      const str = (name: string) => (typeof f[name] === 'string' ? (f[name] as string) : null);
      const num = f.errorNumber;
      return {
        adamId: str('adamId'),
        pricingParam: str('pricingParam'),
        serialNumber: str('serialNumber'),
        clientUserId: str('clientUserId'),
        errorNumber:
          typeof num === 'number' ? num : typeof num === 'string' && /^\d+$/.test(num) ? Number(num) : null,
        errorMessage: str('errorMessage') ?? 'Apple did not say why',
      };
    });

  /** Polls one submitted batch; true when the lease is still ours. */
  const poll = async (claim: ClaimedOperation, sToken: string, batch: OperationBatch): Promise<boolean> => {
    let status: AppleEventStatus;
    try {
      status = await apple.getAssetEventStatus(sToken, batch.eventId ?? '');
    } catch (error) {
      // Apple forgot the event (9708): send the batch again, as for an event left PENDING.
      if (appleFailureOf(error)?.appleErrorNumber === 9708 && batch.submissions < settings.maxSubmissions) {
        return submit(claim, sToken, batch);
      }
      return callFailed(claim, batch, error);
    }
    if (status.eventStatus === 'PENDING') {
      const submittedAt = batch.submittedAt?.getTime() ?? 0;
      if (clock().getTime() - submittedAt >= settings.resubmitAfterMs) {
        if (batch.submissions < settings.maxSubmissions) {
          logger.info(
            { operationId: claim.operation.id, batch: batch.index, eventId: batch.eventId },
            'license operation: Apple left the event PENDING too long; submitting the batch again',
          );
          return submit(claim, sToken, batch);
        }
        return claims.recordOutcome(
          claim,
          batch.index,
          {
            completed: 0,
            failures: [],
            errorMessage: `Apple left the event PENDING after ${batch.submissions} submissions; nothing is known of its items.`,
          },
          clock(),
        );
      }
      return claims.recordPending(claim, batch.index, clock(), at(settings.pollIntervalMs));
    }
    return claims.recordOutcome(
      claim,
      batch.index,
      { completed: status.numCompleted ?? 0, failures: failuresOf(status) },
      clock(),
    );
  };

  /** After an operation ended: the snapshot follows (delta of assignments, counts), or a full sync is asked. */
  const updateSnapshot = async (
    claim: ClaimedOperation,
    sToken: string,
    done: LicenseOperation,
  ): Promise<SnapshotUpdate> => {
    const { tenantId, tokenId } = done;
    let update: SnapshotUpdate = 'failed';
    try {
      const pointer = await patches.pointer(tenantId, tokenId);
      if (pointer === undefined) {
        // No snapshot yet: the token's first sync will read everything.
        update = 'countsOnly';
      } else {
        const added: LicenseAssignmentInput[] = [];
        let versionId = pointer.versionId;
        let refused = false;
        try {
          for await (const page of apple.assignments(sToken, { sinceVersionId: pointer.versionId })) {
            versionId = page.versionId ?? versionId;
            for (const a of page.records) added.push(a);
          }
        } catch (error) {
          if (appleFailureOf(error)?.appleErrorNumber !== appleErrorNumbers.badSinceVersionId) throw error;
          refused = true;
        }
        if (refused) {
          await options.requestFullSync(tenantId, tokenId);
          update = 'fullSyncRequested';
        } else {
          // Apple's delta lists additions only; what a disassociation removed is known from the operation.
          const removed =
            done.kind === 'disassociate'
              ? await completedItems(claim, done)
              : ([] as LicenseAssignmentInput[]);
          const result = await patches.apply(tenantId, tokenId, pointer, { added, removed, versionId });
          await counts.refreshToken(tenantId, tokenId);
          update = result.applied ? 'incremental' : 'countsOnly';
        }
      }
      if (update === 'countsOnly') await counts.refreshToken(tenantId, tokenId);
    } catch (error) {
      logger.warn(
        { operationId: done.id, err: error },
        'license operation: the snapshot could not follow it',
      );
      update = 'failed';
    }
    return update;
  };

  /** The (asset, holder) pairs of an operation that Apple did: all requested minus the failures. */
  const completedItems = async (claim: ClaimedOperation, done: LicenseOperation) => {
    const failures = await store.failures(done.id, 100_000);
    const failed = new Set(
      failures.map((f) => `${f.adamId}\u0000${f.pricingParam}\u0000${f.serialNumber ?? f.clientUserId}`),
    );
    // A batch vppd gave up on lists no items, but none of them is known to be done.
    for (const batch of await claims.givenUpBatches(claim)) {
      for (const a of batch.assets)
        for (const h of batch.holders) failed.add(`${a.adamId}\u0000${a.pricingParam}\u0000${h}`);
    }
    const items: LicenseAssignmentInput[] = [];
    for (const asset of done.assets) {
      for (const holder of claim.holders) {
        if (failed.has(`${asset.adamId}\u0000${asset.pricingParam}\u0000${holder}`)) continue;
        items.push(
          claim.holderKind === 'serialNumber'
            ? { ...asset, serialNumber: holder }
            : { ...asset, clientUserId: holder },
        );
      }
    }
    return items;
  };

  const step = async (claim: ClaimedOperation): Promise<void> => {
    const { operation } = claim;
    let batches = claim.batches;
    if (batches.length === 0) {
      const limits = await apple.associationLimits();
      const planned = planBatches(
        { assets: operation.assets, holders: claim.holders, holderKind: claim.holderKind },
        limits,
      );
      if (!(await claims.planBatches(claim, planned, clock()))) return;
      batches = planned.map((b) => ({
        ...b,
        status: 'pending' as const,
        eventId: null,
        submittedAt: null,
        nextPollAt: null,
        polls: 0,
        submissions: 0,
        callFailures: 0,
      }));
    }
    const sToken = await tokens.readSToken(operation.tenantId, operation.tokenId);
    if (sToken === undefined) return; // the token was deleted: its operations went with it
    for (const batch of batches) {
      if (stopping) break;
      const due = batch.nextPollAt === null || batch.nextPollAt.getTime() <= clock().getTime();
      if (!due || batch.status === 'completed' || batch.status === 'failed') continue;
      const ours =
        batch.status === 'pending' ? await submit(claim, sToken, batch) : await poll(claim, sToken, batch);
      if (!ours || !(await claims.renew(claim, clock(), settings.leaseMs))) return;
    }
    if ((await claims.openBatches(claim)) > 0) {
      // Due at the next poll, or now when a notification ended the last open batch meanwhile.
      await claims.releaseUntilNextPoll(claim, clock());
      return;
    }
    // Every batch ended: the snapshot follows before the operation is marked ended, so a caller who sees
    // it ended reads current counts. A worker dying here leaves it to the next one (the patch is idempotent).
    if (!(await claims.renew(claim, clock(), settings.leaseMs))) return;
    const snapshotUpdate = await updateSnapshot(claim, sToken, operation);
    const done = await claims.finish(claim, clock(), snapshotUpdate);
    if (done === undefined) return;
    const failures = done.failedCount > 0 ? await store.failures(done.id, 1000) : [];
    logger.info(
      {
        operationId: done.id,
        tokenId: done.tokenId,
        status: done.status,
        completed: done.completedCount,
        failed: done.failedCount,
        snapshotUpdate,
      },
      'license operation ended',
    );
    try {
      options.onOperationEnded?.(done, failures);
    } catch (error) {
      logger.warn({ err: error }, 'license operation: a listener failed');
    }
  };

  const validToken = async (tenantId: string, tokenId: string) => {
    const token = await tokens.get(tenantId, tokenId);
    if (!token) throw errors.notFound('vppToken', tokenId);
    if (token.state !== 'valid') {
      throw errors.conflict(
        `The token's state is '${token.state}': license operations need a valid token. Sync it (or renew its sToken) until its state is 'valid'.`,
        { tokenId, state: token.state },
      );
    }
    return token;
  };

  const runOnce = async (): Promise<boolean> => {
    const claim = await claims.claimDue(workerId, clock(), settings.leaseMs);
    if (claim === undefined) return false;
    try {
      await step(claim);
    } catch (error) {
      logger.error({ operationId: claim.operation.id, err: error }, 'license operation step failed');
      await claims.release(claim, at(settings.callRetryMs), clock());
    }
    return true;
  };

  return {
    store,

    async request(tenantId, tokenId, request, requestOptions = {}) {
      checkOperationSize(request);
      await validToken(tenantId, tokenId);
      const result = await store.create({
        tenantId,
        tokenId,
        request,
        source: requestOptions.source ?? 'api',
        ...(requestOptions.idempotencyKey === undefined
          ? {}
          : { idempotencyKey: requestOptions.idempotencyKey }),
        now: clock(),
      });
      if (result.created) wake?.();
      return result;
    },

    async reclaim(tenantId, tokenId, request) {
      if (request.dryRun) {
        if (!(await tokens.get(tenantId, tokenId))) throw errors.notFound('vppToken', tokenId);
      } else {
        await validToken(tenantId, tokenId);
      }
      const holders = await patches.holdersByAsset(tenantId, tokenId);
      if (holders === undefined) {
        throw errors.conflict('The token has no license snapshot yet: sync it before planning a reclaim.', {
          tokenId,
        });
      }
      const plan = planReclaim(holders, request);
      const operations: LicenseOperation[] = [];
      if (request.dryRun) return { plan, operations };
      for (const app of plan.apps) {
        const asset = { adamId: app.adamId, pricingParam: app.pricingParam };
        const groups = [
          ['serialNumber', app.releaseSerialNumbers],
          ['clientUserId', app.releaseClientUserIds],
        ] as const;
        for (const [holderKind, list] of groups) {
          for (let i = 0; i < list.length; i += maxOperationHolders) {
            const { operation } = await store.create({
              tenantId,
              tokenId,
              request: {
                kind: 'disassociate',
                assets: [asset],
                holderKind,
                holders: list.slice(i, i + maxOperationHolders),
              },
              source: 'reclaim',
              now: clock(),
            });
            operations.push(operation);
          }
        }
      }
      logger.info(
        { tokenId, tenantId, release: plan.release, operations: operations.length },
        'reclaim recorded',
      );
      if (operations.length > 0) wake?.();
      return { plan, operations };
    },

    runOnce,

    wake() {
      woken = true;
      wake?.();
    },

    start() {
      if (loop !== undefined) return;
      stopping = false;
      loop = (async () => {
        while (!stopping) {
          let worked = false;
          try {
            worked = await runOnce();
          } catch (error) {
            logger.error({ err: error }, 'license operation worker: claim failed');
          }
          if (worked || stopping) continue;
          if (woken) {
            woken = false;
            continue;
          }
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, settings.idleMs);
            timer.unref();
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = undefined;
        }
      })();
    },

    async stop() {
      stopping = true;
      wake?.();
      await loop;
      loop = undefined;
    },
  };
}
