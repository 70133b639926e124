import { SimApiError, simErrors } from './sim-errors.js';
import type { SimEndpoint } from './sim-faults.js';

// What every endpoint file of the simulator shares: the request and response shapes, Apple's
// published limits and the strict reading of a JSON body.

/** A response the HTTP layer writes as is. */
export interface SimResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: string;
}

/** The parts of a request the routes need. */
export interface SimRequest {
  readonly method: string;
  readonly endpoint: SimEndpoint;
  readonly query: URLSearchParams;
  readonly authorization: string | undefined;
  readonly contentType: string | undefined;
  /** Raw request body (empty for GET). */
  readonly body: string;
}

/** Service limits published by `service/config` (Apple's documented example values). */
export function serviceLimits(rateLimit: number | false): Record<string, number> {
  return {
    maxAssets: 25,
    maxClientUserIds: 1000,
    maxMdmIdLength: 100,
    maxMdmMetadataLength: 255,
    maxMdmNameLength: 100,
    // With the limiter switched off the simulator still advertises Apple's value.
    maxRequestPerSecond: rateLimit === false ? 15 : rateLimit,
    maxRevokeClientUserIds: 100,
    maxRevokeSerialNumbers: 100,
    maxSerialNumbers: 1000,
    maxUsers: 100,
  };
}

/** The JSON object body of a POST (415 when not JSON, 9602 when not an object). */
export function parseBody(request: SimRequest): Record<string, unknown> {
  if (!/^application\/json\b/i.test(request.contentType ?? '')) {
    throw new SimApiError(simErrors.unsupportedMediaType);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(request.body);
  } catch {
    throw new SimApiError(simErrors.invalidArgument, 'The request body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SimApiError(simErrors.invalidArgument, 'The request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

/** Apple's 9602 with a message. */
export function invalid(message: string): SimApiError {
  return new SimApiError(simErrors.invalidArgument, message);
}

/** A list of distinct non-empty strings of at most `max` entries (absent: empty). */
export function stringList(value: unknown, name: string, max: number): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v.length > 0)) {
    throw invalid(`${name} must be a list of non-empty strings`);
  }
  if (value.length > max) throw invalid(`${name} has more than ${max} entries`);
  return [...new Set(value as string[])];
}
