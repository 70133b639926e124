import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorCode, isVppdError } from '../domain/errors.js';

/** Graph's error codes that vppd answers with. */
export const graphErrorCodes = [
  'BadRequest',
  'InvalidAuthenticationToken',
  'Forbidden',
  'ResourceNotFound',
  'MethodNotAllowed',
  'Conflict',
  'RequestEntityTooLarge',
  'UnsupportedMediaType',
  /** A `$batch` step whose `dependsOn` failed. */
  'FailedDependency',
  /** Over a throttling limit (`VPPD_GRAPH_THROTTLING=intune`). */
  'TooManyRequests',
  'InternalServerError',
  'ServiceUnavailable',
] as const;
export type GraphErrorCode = (typeof graphErrorCodes)[number];

/** The HTTP status and Graph code of each vppd error code: the only place this mapping lives. */
export function httpStatusOf(code: ErrorCode): { status: number; graphCode: GraphErrorCode } {
  switch (code) {
    case 'badRequest':
    case 'invalidEnumMember':
    case 'readOnlyProperty':
    case 'unknownProperty':
    case 'invalidSToken':
    case 'notSupported':
      // Graph's rule: a query option or feature the server cannot honour is a 400, never ignored.
      return { status: 400, graphCode: 'BadRequest' };
    case 'unauthenticated':
      return { status: 401, graphCode: 'InvalidAuthenticationToken' };
    case 'forbidden':
      return { status: 403, graphCode: 'Forbidden' };
    case 'notFound':
      return { status: 404, graphCode: 'ResourceNotFound' };
    case 'conflict':
      return { status: 409, graphCode: 'Conflict' };
    case 'appleFailure':
      return { status: 503, graphCode: 'ServiceUnavailable' };
    case 'illegalTransition':
    case 'config':
    case 'internal':
      return { status: 500, graphCode: 'InternalServerError' };
    default: {
      const unreachable: never = code;
      throw new Error(`unmapped error code ${String(unreachable)}`);
    }
  }
}

/** Graph's error body: `{"error":{"code","message","innerError":{date, request-id, client-request-id}}}`. */
export function graphErrorBody(
  request: FastifyRequest,
  code: GraphErrorCode,
  message: string,
  now: Date,
): Record<string, unknown> {
  const clientRequestId = clientRequestIdOf(request);
  return {
    error: {
      code,
      message,
      innerError: {
        date: `${now.toISOString().slice(0, 19)}Z`,
        'request-id': request.id,
        ...(clientRequestId === undefined ? {} : { 'client-request-id': clientRequestId }),
      },
    },
  };
}

/**
 * Sends a Graph error response: every error vppd answers (4xx and 5xx, thrown or not) goes through
 * here. One answered before the request's body was read (401 from the bearer check, 413 from
 * Content-Length) closes the connection, so node does not go on reading (and discarding) a body sent
 * slowly. (Here rather than in an onSend hook: such a hook ran on every response, errors or not.)
 */
export function sendGraphError(
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  code: GraphErrorCode,
  message: string,
  now: Date,
): FastifyReply {
  reply.status(status).type('application/json');
  // After the content type: the headers go out in the order they were set, as before.
  if (!request.raw.complete) reply.header('connection', 'close');
  return reply.send(graphErrorBody(request, code, message, now));
}

/** The client's `client-request-id` if it is a sane value to echo (printable, bounded). */
export function clientRequestIdOf(request: FastifyRequest): string | undefined {
  const value = request.headers['client-request-id'];
  if (typeof value !== 'string') return undefined;
  return /^[\x21-\x7e]{1,200}$/.test(value) ? value : undefined;
}

/** Maps any thrown error to a Graph error response; 500s are logged and say nothing about internals. */
export function handleError(
  error: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
  now: Date,
): FastifyReply {
  if (isVppdError(error)) {
    const { status, graphCode } = httpStatusOf(error.code);
    if (status >= 500) {
      request.log.error({ err: error }, 'request failed');
      return sendGraphError(request, reply, status, graphCode, 'An internal server error occurred.', now);
    }
    if (status === 401) reply.header('www-authenticate', 'Bearer');
    return sendGraphError(request, reply, status, graphCode, error.message, now);
  }
  const fastifyError = error as Partial<FastifyError>;
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return sendGraphError(
        request,
        reply,
        415,
        'UnsupportedMediaType',
        'The request body must be sent as application/json.',
        now,
      );
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return sendGraphError(
        request,
        reply,
        413,
        'RequestEntityTooLarge',
        'The request body is too large.',
        now,
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return sendGraphError(request, reply, 400, 'BadRequest', 'The request body is empty.', now);
    default:
      break;
  }
  if (error instanceof SyntaxError || fastifyError.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return sendGraphError(request, reply, 400, 'BadRequest', 'The request body is not valid JSON.', now);
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return sendGraphError(request, reply, status, 'BadRequest', 'The request is not valid.', now);
  }
  request.log.error({ err: error }, 'request failed');
  return sendGraphError(
    request,
    reply,
    500,
    'InternalServerError',
    'An internal server error occurred.',
    now,
  );
}
