import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { type AppContext, type ContextOverrides, createContext } from '../context.js';
import type { Readiness } from '../ops/health.js';
import { type BuildAppOptions, buildApp } from './app.js';

export interface StartServerOptions extends ContextOverrides, Omit<BuildAppOptions, 'readiness'> {
  /** Run the sync worker and scheduler of `config.sync.role` in this process (`vppd serve` does). */
  readonly runSync?: boolean;
}

/** A listening vppd: its base URL, the app and context, and one way to stop it. */
export interface RunningServer {
  /** `http://host:port` (or https), with the real port when the config asked for port 0. */
  readonly url: string;
  readonly app: FastifyInstance;
  readonly context: AppContext;
  /** Stops accepting, drains in-flight requests, closes the database. Safe to call twice. */
  close(): Promise<void>;
}

/** Creates the context, builds the app and listens on the configured host and port. */
export async function startServer(config: Config, options: StartServerOptions = {}): Promise<RunningServer> {
  const context = await createContext(config, options);
  // Revokes a stopped process left pending/active end as failed (internalError), now and periodically.
  if (options.runSync === true) await context.revokes.startRecovery();
  const readiness: Readiness = { ready: false };
  const { https, bodyLimit } = options;
  const app = buildApp(context, {
    readiness,
    ...(https ? { https } : {}),
    ...(bodyLimit === undefined ? {} : { bodyLimit }),
  });
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await app.close().catch(() => undefined);
    await context.dispose();
    throw error;
  }
  if (options.runSync === true) await context.sync.start(config.sync.role);
  // License operations run where syncs run: their leases are in the database too.
  if (options.runSync === true && config.sync.role !== 'api') context.licenseOperations.start();
  // Alert scanning and delivery run beside syncs in every role: all their state is in the database.
  if (options.runSync === true) context.alerts.start();
  // Apple's notifications: registered by workers (with VPPD_PUBLIC_URL), applied by every process.
  if (options.runSync === true) context.notifications.start(config.sync.role);
  readiness.ready = true;
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let closing: Promise<void> | undefined;
  return {
    url: `${https ? 'https' : 'http'}://${host}:${port}`,
    app,
    context,
    close() {
      closing ??= (async () => {
        readiness.ready = false;
        // Runs in flight are given back to the queue before the database closes.
        await context.sync.stop();
        await context.licenseOperations.stop();
        await context.notifications.stop();
        await app.close();
        await context.dispose();
      })();
      return closing;
    },
  };
}
