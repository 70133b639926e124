import { type DestinationStream, type Logger, pino } from 'pino';
import type { Config } from '../config.js';
import { createLogDestination } from './log-destination.js';

/** Paths pino removes from every log line: credentials and the sToken. */
export const redactedLogPaths = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'token',
  '*.token',
  'sToken',
  '*.sToken',
  'body.token',
  'notificationAuthToken',
  '*.notificationAuthToken',
];

/**
 * JWTs and `.vpptoken` contents are base64(url) of JSON, so they start with `eyJ` (`{"`); a long run of
 * base64 after it (also percent-encoded, as in a logged URL) is replaced.
 */
const credentialShape = /eyJ(?:[A-Za-z0-9+/=_-]|%2[BbFf]|%3[Dd]){8,}(?:\.(?:[A-Za-z0-9_=-]|%3[Dd])*){0,2}/g;

/** Replaces anything shaped like a JWT or an sToken file in a log line. */
export function scrubCredentials(line: string): string {
  return line.includes('eyJ') ? line.replace(credentialShape, '[redacted]') : line;
}

/** Creates the application logger (JSON lines on stdout, or on `destination`: tests capture it). */
export function createLogger(config: Pick<Config, 'logLevel'>, destination?: DestinationStream): Logger {
  const options = {
    name: 'vppd',
    level: config.logLevel,
    redact: { paths: redactedLogPaths, censor: '[redacted]' },
    // Paths cannot catch a credential inside a value (a JWT or an sToken pasted into a URL query or a
    // message), so every written line is also scrubbed of their shape.
    hooks: { streamWrite: scrubCredentials },
  };
  // Bounded: a slow stdout drops (and counts) lines instead of growing the heap (log-destination.ts).
  return pino(options, destination ?? createLogDestination());
}
