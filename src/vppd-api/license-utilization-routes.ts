import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { authorize, principalOf } from '../http/request.js';
import { vppdApiPrefix } from './prefix.js';

/** Apple's "unlimited" totalCount: such apps are left out of utilization. */
const unlimitedTotalCount = 2147483647;
/** Apps listed in `apps`, the most assigned first. */
const topApps = 10;

/**
 * `GET /vppd/v1/licenses/utilization`: the dashboard's utilization chart — per token of the caller's
 * tenant, total, assigned and available licenses of its current snapshot, and the `topApps` most assigned
 * apps. Apps with unlimited licenses are left out (they cannot run out). Read from the snapshots, so
 * counts moved by Apple's notifications show at once.
 */
export function registerLicenseUtilizationRoutes(app: FastifyInstance, context: AppContext): void {
  const { db, authenticator } = context;
  app.get(
    `${vppdApiPrefix}/licenses/utilization`,
    { onRequest: authorize(authenticator, 'read') },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const tokens = await db
        .selectFrom('license_snapshots as s')
        .innerJoin('license_assets as a', 'a.run_id', 's.run_id')
        .select((eb) => [
          's.token_id',
          eb.fn.sum<number | string | bigint>('a.total_count').as('total'),
          eb.fn.sum<number | string | bigint>('a.assigned_count').as('assigned'),
          eb.fn.sum<number | string | bigint>('a.available_count').as('available'),
        ])
        .where('s.tenant_id', '=', tenantId)
        .where('a.total_count', '<', unlimitedTotalCount)
        .groupBy('s.token_id')
        .orderBy('s.token_id')
        .execute();
      const apps = await db
        .selectFrom('license_snapshots as s')
        .innerJoin('license_assets as a', 'a.run_id', 's.run_id')
        .leftJoin('license_app_metadata as m', 'm.adam_id', 'a.adam_id')
        .select(['s.token_id', 'a.adam_id', 'a.pricing_param', 'a.total_count', 'a.assigned_count', 'm.name'])
        .where('s.tenant_id', '=', tenantId)
        .where('a.total_count', '<', unlimitedTotalCount)
        .orderBy('a.assigned_count', 'desc')
        .orderBy('s.token_id')
        .orderBy('a.adam_id')
        .orderBy('a.pricing_param')
        .limit(topApps * 4)
        .execute();
      // Metadata may hold a row per platform and country: keep each app once.
      const seen = new Set<string>();
      const unique = apps.filter((row) => {
        const key = `${row.token_id}\n${row.adam_id}\n${row.pricing_param}`;
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      });
      return reply.type('application/json').send({
        tokens: tokens.map((row) => ({
          tokenId: row.token_id,
          total: Number(row.total),
          assigned: Number(row.assigned),
          available: Number(row.available),
        })),
        apps: unique.slice(0, topApps).map((row) => ({
          tokenId: row.token_id,
          adamId: row.adam_id,
          pricingParam: row.pricing_param,
          name: row.name ?? null,
          total: Number(row.total_count),
          assigned: Number(row.assigned_count),
        })),
      });
    },
  );
}
