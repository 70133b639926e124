import { errors } from '../domain/errors.js';
import { decodeSToken } from '../domain/stoken.js';
import { effectiveTokenState } from '../domain/token-state.js';
import { applyTokenWrite, createVppToken, type TokenWrite, type VppToken } from '../domain/vpp-token.js';
import type { VppTokenChanges, VppTokenStore } from '../storage/vpp-token-store.js';
import type { SyncService } from '../sync/sync-service.js';

type SyncEffect = Awaited<ReturnType<SyncService['requestSync']>>['effect'];

export interface TokenServiceOptions {
  readonly tokens: VppTokenStore;
  readonly sync: Pick<SyncService, 'requestSync' | 'syncOnTokenWrite'>;
  readonly clock: () => Date;
  readonly newId: () => string;
}

export interface CreateTokenOptions {
  /** Request the first sync now (default: when the sync service is set to sync after token writes). */
  readonly firstSync?: boolean;
}

/**
 * What can be done to a token, whoever asks: Graph's routes, the demo seeding, and any in-process caller.
 * Writes arrive validated (`validateTokenWrite`: the wire rules depend on the Graph version); the service
 * decodes sTokens, stores, and requests the syncs a create or a renewal calls for.
 */
export interface TokenService {
  /** Uploads a token: decodes its sToken, stores it (already `expired` when it is past its expiry), syncs. */
  create(tenantId: string, write: TokenWrite, options?: CreateTokenOptions): Promise<VppToken>;
  /**
   * Renames and/or renews a token; a renewed sToken is re-validated by a sync. Undefined when the tenant
   * has no such token.
   */
  update(tenantId: string, id: string, write: TokenWrite): Promise<VppToken | undefined>;
  /** Deletes a token with its licenses and history; false when the tenant has no such token. */
  delete(tenantId: string, id: string): Promise<boolean>;
  /** Graph's `syncLicenses`: a sync requested or coalesced with the one in flight, and the token as it is now. */
  syncLicenses(tenantId: string, id: string): Promise<{ effect: SyncEffect; token: VppToken }>;
}

/** Builds the token service over the store and the sync subsystem. */
export function createTokenService(options: TokenServiceOptions): TokenService {
  const { tokens, sync, clock, newId } = options;

  /** After a create or a renewal: the sync it calls for, and the token as it is then (`inProgress`). */
  const syncAfterWrite = async (token: VppToken, trigger: 'created' | 'renewed'): Promise<VppToken> => {
    await sync.requestSync(token.tenantId, token.id, trigger);
    return (await tokens.get(token.tenantId, token.id)) ?? token;
  };

  return {
    async create(tenantId, write, createOptions = {}) {
      if (write.token === undefined) throw errors.badRequest("The property 'token' is required.");
      const decoded = decodeSToken(write.token);
      const now = clock();
      const created = createVppToken({ id: newId(), tenantId, decoded, write, now });
      // An sToken uploaded after its expiry is known to be expired without asking Apple.
      const stored = await tokens.create(
        { ...created, state: effectiveTokenState(created.state, created.expirationDateTime, now) },
        decoded,
      );
      const firstSync = createOptions.firstSync ?? sync.syncOnTokenWrite;
      return firstSync ? syncAfterWrite(stored, 'created') : stored;
    },

    async update(tenantId, id, write) {
      const current = await tokens.get(tenantId, id);
      if (!current) return undefined;
      const decoded = write.token === undefined ? undefined : decodeSToken(write.token);
      const now = clock();
      const next = applyTokenWrite(current, write, now, decoded);
      const stored = await tokens.update(
        tenantId,
        id,
        changedProperties(write, next, decoded !== undefined, now),
        decoded,
      );
      if (!stored) return undefined;
      return decoded !== undefined && sync.syncOnTokenWrite ? syncAfterWrite(stored, 'renewed') : stored;
    },

    delete(tenantId, id) {
      return tokens.delete(tenantId, id);
    },

    async syncLicenses(tenantId, id) {
      const result = await sync.requestSync(tenantId, id, 'api');
      const token = result.effect === 'notFound' ? undefined : await tokens.get(tenantId, id);
      if (!token) throw errors.notFound('vppToken', id);
      return { effect: result.effect, token };
    },
  };
}

/** Only what the write touched goes to the store, so a concurrent sync's status update is not undone. */
function changedProperties(write: TokenWrite, next: VppToken, renewed: boolean, now: Date): VppTokenChanges {
  const { token: _secret, ...fields } = write;
  const changes: Record<string, unknown> = { ...fields, lastModifiedDateTime: next.lastModifiedDateTime };
  if (renewed) {
    changes.organizationName = next.organizationName;
    changes.expirationDateTime = next.expirationDateTime;
    changes.state = effectiveTokenState(next.state, next.expirationDateTime, now);
  }
  return changes as VppTokenChanges;
}
