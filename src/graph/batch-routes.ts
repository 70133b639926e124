import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.js';
import { errors } from '../domain/errors.js';
import type { GraphVersion } from '../domain/graph-enum.js';
import { graphErrorBody } from '../http/graph-error.js';
import { type InnerRequests, innerRequestHeader } from '../http/inner-requests.js';
import { methodNotAllowed } from '../http/method-not-allowed.js';

/**
 * Graph's JSON batching (`POST /beta/$batch`, `POST /v1.0/$batch`): up to {@link maxBatchRequests}
 * requests in one call, each answered with its own status, headers and body.
 *
 * - Each step goes through `app.inject` with the batch's `Authorization` (and the step's own
 *   headers), so it is authenticated, authorized, validated and throttled exactly as if it came alone;
 *   a failing step fails only itself. The outer call only needs a valid token.
 * - `url` is relative to the version (`deviceAppManagement/vppTokens` or `/deviceAppManagement/...`).
 *   A path that repeats the batch's own version (`/beta/...` in a beta batch, what graph-js produces
 *   from absolute URLs; behind a path prefix `/vppd/beta/...`) and an absolute URL whose path holds
 *   the same version are accepted (the host is never contacted: the path is served here); another
 *   version is refused.
 * - `body`: for a JSON `Content-Type` (or none, with an object body) a JSON value; otherwise a base64
 *   string, decoded to bytes, as Graph does. A string body without `Content-Type` that decodes to JSON
 *   is sent as JSON: the Kiota JS core drops its steps' headers and base64-encodes the body.
 * - `dependsOn`: a step runs after the steps it names; if one of them failed (status ≥ 400) it is not
 *   run and answers 424 `FailedDependency`. Steps run one at a time, in request order unless a
 *   dependency says otherwise (Graph may run independent steps in parallel: nothing may rely on order).
 *   Responses come back in request order.
 * - Response bodies: JSON as JSON; a non-JSON body (`$count`'s text) base64-encoded, as Graph does.
 * - Nested `$batch` steps are refused (400 for that step).
 * Not declared in `$metadata`: Graph's own `$metadata` does not list `$batch` either.
 */
export const maxBatchRequests = 20;

const stepMethods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
type StepMethod = (typeof stepMethods)[number];

/** Headers a step may not set: the transport's, the batch's credentials, and proxy headers. */
const droppedStepHeaders = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'authorization',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-prefix',
  innerRequestHeader,
]);

/** Inner response headers a batch response carries (Graph's casing). */
const keptResponseHeaders: Readonly<Record<string, string>> = {
  location: 'Location',
  'content-type': 'Content-Type',
  'retry-after': 'Retry-After',
  'preference-applied': 'Preference-Applied',
  etag: 'ETag',
};

interface BatchStep {
  readonly id: string;
  readonly method: StepMethod;
  /** Path and query under the version, starting with `/`. */
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: unknown;
  readonly hasBody: boolean;
  readonly dependsOn: readonly string[];
}

interface BatchResponse {
  readonly id: string;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body?: unknown;
}

export interface BatchRoutesOptions {
  /** The root app: steps are injected there so every hook applies. */
  readonly root: FastifyInstance;
  readonly innerRequests: InnerRequests;
}

/** Registers `POST /$batch` in a version scope. */
export function registerBatchRoutes(
  scope: FastifyInstance,
  context: AppContext,
  version: GraphVersion,
  options: BatchRoutesOptions,
): void {
  const { root, innerRequests } = options;
  // The batch itself needs a valid token (checked before its body is read); each step checks its own
  // permission. No principal is set: the envelope is not a Graph request of its own (nor throttled).
  const authenticated = async (request: FastifyRequest) => {
    await context.authenticator.authenticate(request.headers.authorization);
  };
  scope.post('/$batch', { onRequest: authenticated }, async (request, reply) => {
    if (innerRequests.lookup(request.headers) !== undefined) {
      throw errors.badRequest('Nested $batch requests are not supported.');
    }
    const steps = parseBatch(request.body, version, request.externalBase);
    const results = new Map<string, BatchResponse>();
    const { marker, release } = innerRequests.register({ externalBase: request.externalBase });
    try {
      for (const step of executionOrder(steps)) {
        const failed = step.dependsOn.find((id) => (results.get(id)?.status ?? 424) >= 400);
        if (failed !== undefined) {
          results.set(step.id, failedDependency(request, step, failed, context.clock()));
          continue;
        }
        results.set(step.id, await runStep(root, request, version, step, marker));
      }
    } finally {
      release();
    }
    return reply
      .type('application/json')
      .send({ responses: steps.map((step) => results.get(step.id) as BatchResponse) });
  });
  methodNotAllowed(scope, '/$batch', ['POST'], context.clock);
}

async function runStep(
  root: FastifyInstance,
  outer: FastifyRequest,
  version: GraphVersion,
  step: BatchStep,
  marker: string,
): Promise<BatchResponse> {
  const headers: Record<string, string> = { ...step.headers, [innerRequestHeader]: marker };
  const authorization = outer.headers.authorization;
  if (authorization !== undefined) headers.authorization = authorization;
  const payload = step.hasBody ? stepPayload(step, headers) : undefined;
  const response = await root.inject({
    method: step.method,
    url: `/${version}${step.path}`,
    headers,
    ...(payload === undefined ? {} : { payload }),
  });
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    const shown = keptResponseHeaders[name.toLowerCase()];
    if (shown !== undefined && value !== undefined) out[shown] = String(value);
  }
  const contentType = String(response.headers['content-type'] ?? '');
  const raw = response.rawPayload;
  if (raw.length === 0) return { id: step.id, status: response.statusCode, headers: out };
  let body: unknown;
  if (isJsonType(contentType)) {
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      body = raw.toString('base64');
    }
  } else {
    body = raw.toString('base64');
  }
  return { id: step.id, status: response.statusCode, headers: out, body };
}

/** The bytes of a step's body, setting the content type it is sent with. */
function stepPayload(step: BatchStep, headers: Record<string, string>): string | Buffer {
  const typeKey = Object.keys(headers).find((name) => name.toLowerCase() === 'content-type');
  const contentType = typeKey === undefined ? undefined : headers[typeKey];
  if (contentType === undefined) {
    if (typeof step.body === 'string') {
      const decoded = decodeBase64(step.body);
      if (decoded !== undefined && isJsonText(decoded)) {
        headers['content-type'] = 'application/json';
        return decoded;
      }
      headers['content-type'] = 'application/octet-stream';
      return decoded ?? Buffer.from(step.body, 'utf8');
    }
    headers['content-type'] = 'application/json';
    return JSON.stringify(step.body);
  }
  if (isJsonType(contentType)) return JSON.stringify(step.body);
  if (typeof step.body === 'string') return decodeBase64(step.body) ?? Buffer.from(step.body, 'utf8');
  return JSON.stringify(step.body);
}

function isJsonType(contentType: string): boolean {
  const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  return type === 'application/json' || type.endsWith('+json');
}

function decodeBase64(text: string): Buffer | undefined {
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(compact)) return undefined;
  return Buffer.from(compact, compact.includes('-') || compact.includes('_') ? 'base64url' : 'base64');
}

function isJsonText(bytes: Buffer): boolean {
  try {
    JSON.parse(bytes.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

function failedDependency(
  request: FastifyRequest,
  step: BatchStep,
  failedId: string,
  now: Date,
): BatchResponse {
  return {
    id: step.id,
    status: 424,
    headers: { 'Content-Type': 'application/json' },
    body: graphErrorBody(
      request,
      'FailedDependency',
      `The request depends on request '${failedId}', which failed; it was not run.`,
      now,
    ),
  };
}

/** Steps in the order they run: request order, each after the steps it depends on. */
function executionOrder(steps: readonly BatchStep[]): BatchStep[] {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const done = new Set<string>();
  const order: BatchStep[] = [];
  while (order.length < steps.length) {
    const next = steps.find((s) => !done.has(s.id) && s.dependsOn.every((d) => done.has(d)));
    if (next === undefined) {
      const stuck = steps.find((s) => !done.has(s.id) && s.dependsOn.every((d) => byId.has(d)));
      throw errors.badRequest(
        `Batch request dependsOn forms a cycle (request '${stuck?.id ?? ''}' cannot run).`,
      );
    }
    done.add(next.id);
    order.push(next);
  }
  return order;
}

// ---- validation ---------------------------------------------------------------------------------

const invalid = (detail: string) => errors.badRequest(`Invalid batch payload format: ${detail}`);

/** Validates a batch body into steps; throws a 400 naming the first problem. */
export function parseBatch(body: unknown, version: GraphVersion, externalBase: string): BatchStep[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid('the body must be a JSON object with a "requests" array.');
  }
  const requests = (body as Record<string, unknown>).requests;
  if (!Array.isArray(requests)) throw invalid('"requests" must be an array.');
  if (requests.length === 0) throw invalid('"requests" is empty.');
  if (requests.length > maxBatchRequests) {
    throw errors.badRequest('Number of requests inside batch exceeds the limit.', {
      limit: maxBatchRequests,
    });
  }
  const steps = requests.map((item, index) => parseStep(item, index, version, externalBase));
  const ids = new Set<string>();
  for (const step of steps) {
    if (ids.has(step.id)) throw invalid(`the request id '${step.id}' is used more than once.`);
    ids.add(step.id);
  }
  for (const step of steps) {
    for (const dependency of step.dependsOn) {
      if (dependency === step.id) throw invalid(`request '${step.id}' depends on itself.`);
      if (!ids.has(dependency)) {
        throw invalid(`request '${step.id}' depends on '${dependency}', which is not in the batch.`);
      }
    }
  }
  return steps;
}

function idText(value: unknown): string | undefined {
  if (typeof value === 'string' && value.trim() !== '') return value;
  // PowerShell scripts (Maester) number their requests: `"id": 0`.
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

function parseStep(item: unknown, index: number, version: GraphVersion, externalBase: string): BatchStep {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    throw invalid(`requests[${index}] must be an object.`);
  }
  const raw = item as Record<string, unknown>;
  const id = idText(raw.id);
  if (id === undefined || id.length > 100) {
    throw invalid(`requests[${index}] needs an "id" (a non-empty string of at most 100 characters).`);
  }
  const method = typeof raw.method === 'string' ? raw.method.toUpperCase() : '';
  if (!(stepMethods as readonly string[]).includes(method)) {
    throw invalid(`request '${id}': "method" must be one of ${stepMethods.join(', ')}.`);
  }
  if (typeof raw.url !== 'string' || raw.url.trim() === '') {
    throw invalid(`request '${id}' needs a "url" relative to /${version}.`);
  }
  const path = stepPath(raw.url.trim(), id, version, externalBase);
  const headers: Record<string, string> = {};
  if (raw.headers !== undefined && raw.headers !== null) {
    if (typeof raw.headers !== 'object' || Array.isArray(raw.headers)) {
      throw invalid(`request '${id}': "headers" must be an object of header names and values.`);
    }
    for (const [name, value] of Object.entries(raw.headers as Record<string, unknown>)) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/.test(name)) {
        throw invalid(`request '${id}': '${name.slice(0, 40)}' is not a header name.`);
      }
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
        throw invalid(`request '${id}': the header '${name}' must have a string value.`);
      }
      const text = String(value);
      if (/[\r\n\0]/.test(text)) throw invalid(`request '${id}': the header '${name}' has a line break.`);
      if (droppedStepHeaders.has(name.toLowerCase())) continue;
      headers[name] = text;
    }
  }
  let dependsOn: string[] = [];
  if (raw.dependsOn !== undefined && raw.dependsOn !== null) {
    const list = Array.isArray(raw.dependsOn) ? raw.dependsOn : [raw.dependsOn];
    dependsOn = list.map((d) => {
      const text = idText(d);
      if (text === undefined) throw invalid(`request '${id}': "dependsOn" must list request ids.`);
      return text;
    });
  }
  const hasBody = raw.body !== undefined && raw.body !== null;
  return { id, method: method as StepMethod, path, headers, body: raw.body, hasBody, dependsOn };
}

/**
 * A step's path under the version (`/deviceAppManagement/vppTokens?$top=1`): relative, version-prefixed
 * or absolute with the same version; never with dot segments (a step cannot leave its version).
 */
function stepPath(url: string, id: string, version: GraphVersion, externalBase: string): string {
  let path = url;
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw invalid(`request '${id}': '${url.slice(0, 80)}' is not a valid URL.`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw invalid(`request '${id}': the url must be relative to /${version}.`);
    }
    path = withoutPrefix(url.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, ''), externalBase);
    if (!startsWithVersion(path, version)) {
      throw invalid(
        `request '${id}': the absolute URL must address /${version} (the version of this batch).`,
      );
    }
  }
  if (!path.startsWith('/')) path = `/${path}`;
  // graph-js turns an absolute URL into its path: behind a prefix, `/vppd/beta/...`.
  path = withoutPrefix(path, externalBase);
  if (startsWithVersion(path, version)) path = path.slice(version.length + 1);
  else if (startsWithVersion(path, version === 'beta' ? 'v1.0' : 'beta')) {
    throw invalid(`request '${id}': a /${version}/$batch can only hold /${version} requests.`);
  }
  const question = path.indexOf('?');
  const pathPart = question < 0 ? path : path.slice(0, question);
  if (pathPart.includes('#') || pathPart.includes('\\')) {
    throw invalid(`request '${id}': the url path has a character it cannot have.`);
  }
  const segments = pathPart.split('/').map((segment) => segment.replace(/%2e/gi, '.'));
  if (segments.some((segment) => segment === '.' || segment === '..')) {
    throw invalid(`request '${id}': the url cannot hold '.' or '..' segments.`);
  }
  if (path === '/' || path === '') throw invalid(`request '${id}' needs a resource path in "url".`);
  // Spaces a hand-written script left in a $filter are sent encoded.
  return path.replace(/ /g, '%20').split('#')[0] as string;
}

/** The path without the external base's path prefix (`/vppd`), when it starts with it and a version. */
function withoutPrefix(path: string, externalBase: string): string {
  const prefix = new URL(externalBase).pathname.replace(/\/+$/, '');
  if (prefix === '' || !path.startsWith(`${prefix}/`)) return path;
  const rest = path.slice(prefix.length);
  return startsWithVersion(rest, 'beta') || startsWithVersion(rest, 'v1.0') ? rest : path;
}

function startsWithVersion(path: string, version: string): boolean {
  const lower = path.toLowerCase();
  return lower === `/${version}` || lower.startsWith(`/${version}/`) || lower.startsWith(`/${version}?`);
}
