/**
 * What vppd's modules log through: structured details first, then the message (pino's shape, so the
 * process's logger from ops/logging.ts is one), and `child` for a logger that adds fixed details.
 */
export interface Logger {
  debug(details: object, message: string): void;
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** A logger that writes nothing (the default of modules whose caller may not pass one). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
