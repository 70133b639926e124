import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { registerAlertRoutes } from './alerts-routes.js';
import { registerLicenseAlertRoutes } from './license-alert-routes.js';
import { registerLicenseOperationRoutes } from './license-operations-routes.js';
import { registerLicenseUtilizationRoutes } from './license-utilization-routes.js';
import { registerNotificationStatusRoutes } from './notification-status-routes.js';
import { registerVppdSyncProgressRoutes } from './sync-progress-routes.js';
import { registerTokenEventRoutes, type TokenEventOptions } from './token-events-routes.js';

/**
 * vppd's own API under `/vppd/v1` (see `prefix.ts`): what Graph has no resource for — live sync progress and
 * history, alert webhooks, and the dashboard's token table with its event stream.
 */
export function registerVppdApiRoutes(
  app: FastifyInstance,
  context: AppContext,
  options: TokenEventOptions = {},
): void {
  registerAlertRoutes(app, context);
  registerLicenseOperationRoutes(app, context);
  registerVppdSyncProgressRoutes(app, context);
  registerTokenEventRoutes(app, context, options);
  registerNotificationStatusRoutes(app, context);
  registerLicenseAlertRoutes(app, context);
  registerLicenseUtilizationRoutes(app, context);
}
