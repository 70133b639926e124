import type { AppleSim } from '../apple-sim/apple-sim.js';
import type { AppContext } from '../context.js';
import { validateTokenWrite } from '../domain/vpp-token.js';
import { type DemoToken, demoLargeLocationId, demoTokens } from './demo-scenario.js';

/** What {@link seedDemoTenant} did. */
export interface DemoSeedResult {
  /** Display names of the tokens uploaded now (empty on a restart: the data was kept). */
  readonly uploaded: readonly string[];
  /** How many demo tokens were there already. */
  readonly kept: number;
  /** When the deferred token's first automatic sync is due (if it was uploaded now). */
  readonly deferredUntil: Date | undefined;
}

/**
 * Uploads the simulator's token files into the demo tenant, once: a token whose display name is
 * already in the tenant is not uploaded again, so restarts keep the data and duplicate nothing.
 * Each upload takes the API's own path (validate, decode the sToken, store, request the first sync),
 * so every status and state comes from real syncs against the simulator. The deferred token's first
 * sync is scheduled one sync interval later instead, so `none` is visible. On every start the large
 * token is synced again (coalesced if it is still syncing), so `inProgress` is visible after restarts.
 */
export async function seedDemoTenant(
  context: AppContext,
  sim: Pick<AppleSim, 'tokenFor'>,
  tenantId: string,
): Promise<DemoSeedResult> {
  const existing = await context.tokens.list(tenantId);
  const byName = new Map(existing.map((t) => [t.displayName, t]));
  const uploaded: string[] = [];
  let kept = 0;
  let deferredUntil: Date | undefined;
  for (const demo of demoTokens) {
    if (byName.has(demo.displayName)) {
      kept++;
      continue;
    }
    const created = await uploadDemoToken(context, sim, tenantId, demo);
    uploaded.push(demo.displayName);
    if (demo.firstSync === 'deferred') {
      deferredUntil = new Date(context.clock().getTime() + context.config.syncIntervalMs);
      await context.sync.jobs.schedule(tenantId, created, deferredUntil);
    }
  }
  const large = byName.get(demoTokens.find((t) => t.locationId === demoLargeLocationId)?.displayName ?? null);
  if (large !== undefined) await context.sync.requestSync(tenantId, large.id, 'api');
  return { uploaded, kept, deferredUntil };
}

/** POST vppTokens without HTTP: the route's validation, then the same token service. */
async function uploadDemoToken(
  context: AppContext,
  sim: Pick<AppleSim, 'tokenFor'>,
  tenantId: string,
  demo: DemoToken,
): Promise<string> {
  const write = validateTokenWrite(
    { token: sim.tokenFor(demo.locationId, demo.index), displayName: demo.displayName },
    { mode: 'create', version: 'beta' },
  );
  const stored = await context.tokenService.create(tenantId, write, {
    firstSync: demo.firstSync === 'now' && context.sync.syncOnTokenWrite,
  });
  return stored.id;
}
