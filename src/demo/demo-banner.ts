import type { DemoSeedResult } from './seed-demo-tenant.js';

export interface DemoBannerOptions {
  /** `http://host:port` of vppd. */
  readonly url: string;
  readonly tenantId: string;
  /** A ready bearer token for the demo tenant, or undefined when auth is not HS256 (JWKS given). */
  readonly bearer: string | undefined;
  readonly bearerDescription: string;
  /** The in-process simulator's Apple base URL, when the demo started one. */
  readonly appleSimUrl: string | undefined;
  readonly seed: DemoSeedResult | undefined;
  /** The dashboard's URL (served by `src/web/` at `/`; in demo mode it opens signed in). */
  readonly dashboardUrl?: string | undefined;
  /** Set when `/dashboard/session` is off because vppd listens on this non-loopback host. */
  readonly sessionOffHost?: string | undefined;
}

/** The lines `vppd serve --demo` prints before its listening line (the bearer token on a line of its own). */
export function demoBannerLines(options: DemoBannerOptions): string[] {
  const { url, tenantId, bearer, seed } = options;
  const lines: string[] = [];
  if (seed !== undefined) {
    lines.push(
      seed.uploaded.length > 0
        ? `demo: uploaded ${seed.uploaded.length} demo tokens into tenant ${tenantId}; their syncs run now (the large one takes ~30 s)`
        : `demo: tenant ${tenantId} kept its ${seed.kept} demo tokens; the large one syncs again now (~30 s)`,
    );
  }
  if (options.appleSimUrl !== undefined) lines.push(`demo: Apple simulator ${options.appleSimUrl}`);
  lines.push(`demo: API base URL ${url}/beta (also ${url}/v1.0)`);
  lines.push(`demo: tokens ${url}/beta/deviceAppManagement/vppTokens`);
  lines.push(`demo: $metadata ${url}/beta/$metadata`);
  if (options.dashboardUrl !== undefined) {
    lines.push(
      options.sessionOffHost === undefined
        ? `demo: dashboard ${options.dashboardUrl} (opens signed in to the demo tenant)`
        : `demo: dashboard ${options.dashboardUrl} (sign in with the bearer token below: /dashboard/session is off because vppd listens on ${options.sessionOffHost}, not on loopback)`,
    );
  }
  if (bearer !== undefined) {
    lines.push(`demo: tenant ${tenantId}, bearer token (${options.bearerDescription}):`, bearer);
    lines.push(
      `demo: curl -s -H "Authorization: Bearer ${bearer}" ${url}/beta/deviceAppManagement/vppTokens`,
      `demo: CLI: export VPPD_URL=${url} VPPD_TOKEN=<the token above>; vppd tokens list`,
    );
  }
  return lines;
}
