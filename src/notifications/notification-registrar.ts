import { randomBytes } from 'node:crypto';
import type { AppleClient } from '../apple/apple-client.js';
import { appleFailureOf } from '../apple/apple-failure.js';
import type { AppleMdmInfo } from '../apple/apple-types.js';
import type { Logger } from '../domain/logger.js';
import type { AppleNotificationStore, RegistrationCandidate } from '../storage/apple-notification-store.js';
import type { TokenCipher } from '../storage/token-cipher.js';
import type { VppTokenStore } from '../storage/vpp-token-store.js';

/** The notification types vppd subscribes to. */
export const subscribedNotificationTypes = ['ASSET_MANAGEMENT', 'ASSET_COUNT'] as const;

/** The path every registration's URL starts with (below the public base URL). */
export const appleNotificationsPath = '/apple/notifications';

export interface NotificationRegistrarOptions {
  readonly store: AppleNotificationStore;
  readonly tokens: VppTokenStore;
  readonly apple: AppleClient;
  readonly cipher: TokenCipher;
  /** vppd's `mdmInfo`: registration never touches a location another MDM holds. */
  readonly mdmInfo: () => Promise<AppleMdmInfo>;
  /** `VPPD_PUBLIC_URL` (no trailing slash). */
  readonly publicUrl: string;
  readonly clock: () => Date;
  readonly newId: () => string;
  readonly logger: Logger;
  /** How long a failed registration waits before it is tried again (default 1 h). */
  readonly retryFailedAfterMs?: number;
  /** The random bearer token of a registration (default 32 random bytes, base64url). */
  readonly newAuthToken?: () => string;
}

/** What one pass did. */
export interface RegistrationPass {
  readonly registered: number;
  readonly failed: number;
  readonly skipped: number;
  /** Registrations marked stale because their token is no longer valid. */
  readonly dropped: number;
}

/**
 * Registers each valid token's location for Apple's notifications (`POST client/config` with
 * `notificationUrl`, a fresh random `notificationAuthToken` and `notificationTypes`), and again when
 * the token's sToken was renewed or the URL changed. The registration row (the token's keyed hash) is
 * written before the call, because Apple delivers its TEST_NOTIFICATION while the call is in flight.
 */
export class NotificationRegistrar {
  readonly #options: NotificationRegistrarOptions;
  readonly #base: string;

  constructor(options: NotificationRegistrarOptions) {
    this.#options = options;
    this.#base = `${options.publicUrl}${appleNotificationsPath}`;
  }

  /** One pass over every token that needs (re)registering; failures are recorded, never thrown. */
  async registerPending(signal?: AbortSignal): Promise<RegistrationPass> {
    const { store, clock } = this.#options;
    const dropped = await store.markInvalidRegistrationsStale(clock());
    const candidates = await store.registrationCandidates(
      this.#base,
      clock(),
      this.#options.retryFailedAfterMs ?? 3_600_000,
    );
    let registered = 0;
    let failed = 0;
    let skipped = 0;
    for (const candidate of candidates) {
      if (signal?.aborted) break;
      const outcome = await this.#register(candidate, signal);
      if (outcome === 'registered') registered++;
      else if (outcome === 'failed') failed++;
      else skipped++;
    }
    return { registered, failed, skipped, dropped };
  }

  async #register(
    candidate: RegistrationCandidate,
    signal: AbortSignal | undefined,
  ): Promise<'registered' | 'failed' | 'skipped'> {
    const { store, tokens, apple, cipher, clock, newId, logger } = this.#options;
    const { tenantId, tokenId } = candidate;
    const sToken = await tokens.readSToken(tenantId, tokenId);
    if (sToken === undefined) return 'skipped';
    const ours = await this.#options.mdmInfo();
    const call = signal === undefined ? {} : { signal };
    const id = candidate.registrationId ?? newId();
    const notificationUrl = `${this.#base}/${id}`;
    const authToken = this.#options.newAuthToken?.() ?? randomBytes(32).toString('base64url');
    const base = {
      id,
      tenantId,
      tokenId,
      locationUid: candidate.locationUid,
      notificationUrl,
      authTokenHash: cipher.fingerprint(authToken),
      sealedAuthToken: cipher.seal(authToken, `${tenantId}:${tokenId}:notification`),
      stokenFingerprint: candidate.stokenFingerprint,
    };
    try {
      const config = await apple.getClientConfig(sToken, call);
      if (config.mdmInfo !== undefined && config.mdmInfo.id !== ours.id) {
        // Another MDM holds the location now: the next sync reports it; never take it over here.
        logger.warn({ tenantId, tokenId }, 'not registering notifications: another MDM manages the location');
        return 'skipped';
      }
      // Written first: Apple delivers the TEST_NOTIFICATION before it answers this call. Another
      // process registering this token right now keeps it (a pending row younger than 5 minutes).
      if (!(await store.claimRegistration({ ...base, status: 'pending' }, clock(), 300_000)))
        return 'skipped';
      await apple.setClientConfig(
        sToken,
        {
          mdmInfo: config.mdmInfo ?? ours,
          notificationUrl,
          notificationAuthToken: authToken,
          notificationTypes: subscribedNotificationTypes,
        },
        call,
      );
      await store.saveRegistration({ ...base, status: 'registered' }, clock());
      logger.info({ tenantId, tokenId, notificationUrl }, 'registered for Apple notifications');
      return 'registered';
    } catch (error) {
      const failure = appleFailureOf(error);
      if (failure === undefined) throw error;
      const reason = registrationFailureMessage(failure.appleErrorNumber, failure.message, notificationUrl);
      await store.saveRegistration(
        {
          ...base,
          status: 'failed',
          failureMessage: reason,
          ...(failure.appleErrorNumber === undefined ? {} : { appleErrorNumber: failure.appleErrorNumber }),
        },
        clock(),
      );
      logger.warn(
        { tenantId, tokenId, appleErrorNumber: failure.appleErrorNumber, reason },
        'Apple notification registration failed',
      );
      return 'failed';
    }
  }
}

/** The operator's explanation of a failed registration (Apple's numbers from docs/apple.md). */
export function registrationFailureMessage(
  appleErrorNumber: number | undefined,
  appleMessage: string,
  notificationUrl: string,
): string {
  switch (appleErrorNumber) {
    case 9728:
      return `Apple could not deliver its test notification to ${notificationUrl}: make that URL reachable from the internet over HTTPS (VPPD_PUBLIC_URL) and answering POST requests. Apple error 9728: ${appleMessage}`;
    case 9712:
      return `Apple accepts only HTTPS notification URLs; VPPD_PUBLIC_URL gives ${notificationUrl}. Apple error 9712: ${appleMessage}`;
    case 9711:
      return `The notification URL is longer than Apple accepts (${notificationUrl}). Apple error 9711: ${appleMessage}`;
    default:
      return appleErrorNumber === undefined
        ? `Registering ${notificationUrl} with Apple failed: ${appleMessage}`
        : `Registering ${notificationUrl} with Apple failed. Apple error ${appleErrorNumber}: ${appleMessage}`;
  }
}
