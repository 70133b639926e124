import type { StorageEngine } from './engine.js';

/**
 * Reads the database's change stamp: a value that differs after any change committed to the database
 * by any connection or process before the call. Undefined when the engine offers none; a caller must
 * then not reuse anything it read before. Read the stamp before the data it guards: data read
 * afterwards is then at least as new as the stamp, never older. Each engine's `change-stamp.ts` says
 * what its stamp is made of and why that holds.
 */
export type ChangeStamp = () => Promise<string | undefined>;

/**
 * The change stamp of `storage`. Calls made in the same event-loop turn share one read, taken in the
 * turn's check phase (after every I/O callback of the turn ran), so it still follows each of those
 * calls. Under load a turn serves several requests, which then share the read's cost.
 */
export function createChangeStamp(storage: StorageEngine): ChangeStamp {
  let next: Promise<string | undefined> | undefined;
  return () => {
    next ??= new Promise((resolve, reject) => {
      setImmediate(() => {
        // Calls from now on wait for a later read: this one may already be too old for them.
        next = undefined;
        try {
          resolve(storage.readChangeStamp());
        } catch (error) {
          reject(error);
        }
      });
    });
    return next;
  };
}

/**
 * Reads a tenant's change stamp: the `seq` of its newest event, as text. It moves after every commit
 * that changed something a reader of the tenant sees (storage/event-store.ts lists them) and never
 * comes back; other tenants' writes leave it alone. Read it before the data it guards.
 */
export type TenantChangeStamp = (tenantId: string) => Promise<string>;

/** Which events move a {@link TenantChangeStamp}. */
export interface TenantChangeStampOptions {
  /**
   * False: a sync's `syncProgressed` notes do not move it (StorageEngine.readTenantStampWithoutProgress),
   * for readers that show no live progress (Graph). Default true: every event does (the dashboard).
   */
  readonly progress?: boolean;
}

/**
 * The tenant change stamps of `storage`. Calls for one tenant in the same event-loop turn share one
 * read, taken in the turn's check phase (after every I/O callback of the turn), as for
 * {@link createChangeStamp}.
 */
export function createTenantChangeStamp(
  storage: StorageEngine,
  options: TenantChangeStampOptions = {},
): TenantChangeStamp {
  const readStamp =
    options.progress === false
      ? (tenantId: string) => storage.readTenantStampWithoutProgress(tenantId)
      : (tenantId: string) => storage.readTenantStamp(tenantId);
  const pending = new Map<string, Promise<string>>();
  return (tenantId) => {
    let next = pending.get(tenantId);
    if (next === undefined) {
      next = new Promise<string>((resolve, reject) => {
        setImmediate(() => {
          // Calls from now on wait for a later read: this one may already be too old for them.
          pending.delete(tenantId);
          try {
            const read = readStamp(tenantId);
            if (typeof read === 'number') resolve(String(read));
            else read.then((seq) => resolve(String(seq)), reject);
          } catch (error) {
            reject(error);
          }
        });
      });
      pending.set(tenantId, next);
    }
    return next;
  };
}
