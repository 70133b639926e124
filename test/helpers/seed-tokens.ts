import { decodeSToken } from '../../src/domain/stoken.js';
import { createVppToken, type TokenWrite, type VppToken } from '../../src/domain/vpp-token.js';
import type { VppTokenChanges, VppTokenStore } from '../../src/storage/vpp-token-store.js';
import { buildSToken } from './stoken-builder.js';

export interface SeedTokensOptions {
  readonly tenantId: string;
  readonly count: number;
  /** New token ids; default: random GUIDs. */
  readonly newId?: () => string;
  readonly now?: () => Date;
  /** What a client would have sent on create for the token at `index`. */
  readonly write?: (index: number) => Omit<TokenWrite, 'token'>;
  /** Server-side changes (sync status, state, ...) applied after the insert, as a sync would. */
  readonly changes?: (index: number) => VppTokenChanges | undefined;
}

/**
 * Stores `count` tokens straight through the store (no HTTP), the way an upload would have created
 * them, for tests and benchmarks that need many rows fast. Returns the tokens as stored.
 */
export async function seedTokens(store: VppTokenStore, options: SeedTokensOptions): Promise<VppToken[]> {
  const newId = options.newId ?? (() => crypto.randomUUID());
  const now = options.now ?? (() => new Date());
  const out: VppToken[] = [];
  for (let index = 0; index < options.count; index += 1) {
    const decoded = decodeSToken(buildSToken({ orgName: `Seeded Org ${index}` }));
    const write: TokenWrite = { displayName: `Seeded token ${index}`, ...(options.write?.(index) ?? {}) };
    const token = createVppToken({ id: newId(), tenantId: options.tenantId, decoded, write, now: now() });
    let stored = await store.create(token, decoded);
    const changes = options.changes?.(index);
    if (changes) {
      const updated = await store.update(options.tenantId, stored.id, changes);
      if (!updated) throw new Error(`seeded token ${stored.id} vanished`);
      stored = updated;
    }
    out.push(stored);
  }
  return out;
}
