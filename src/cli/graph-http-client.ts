import { VppdError } from '../domain/errors.js';

/** Where the CLI finds vppd when neither `--url` nor `VPPD_URL` says. */
export const defaultVppdUrl = 'http://127.0.0.1:8080';

export interface GraphHttpClientOptions {
  /** vppd's base URL, e.g. `http://127.0.0.1:8080` (no version segment). */
  readonly baseUrl: string;
  /** The bearer token; sent in the Authorization header, never printed. */
  readonly token: string;
  readonly fetch?: typeof fetch;
  /** Per-request timeout (default 30 s). */
  readonly timeoutMs?: number;
}

/** One answer of vppd: status, parsed JSON body (undefined when empty) and headers. */
export interface GraphHttpResponse<T> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

export interface GraphRequestOptions {
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A thin HTTP client over vppd's API for the CLI: JSON in and out, errors as one-line VppdErrors. */
export interface GraphHttpClient {
  readonly baseUrl: string;
  /** Sends a request to a path (or an absolute URL under the base, like `@odata.nextLink`). */
  request<T>(method: string, pathOrUrl: string, options?: GraphRequestOptions): Promise<GraphHttpResponse<T>>;
}

/** The error JSON vppd (and Graph) answers with. */
interface GraphErrorBody {
  readonly error?: { readonly code?: unknown; readonly message?: unknown };
}

/**
 * Builds the client. A failed call throws a VppdError whose message is the one line the CLI prints:
 * `404 ResourceNotFound: The vppToken with id 'x' was not found.`, or `cannot reach <url>: ECONNREFUSED`.
 */
export function createGraphHttpClient(options: GraphHttpClientOptions): GraphHttpClient {
  const doFetch = options.fetch ?? fetch;
  const base = options.baseUrl.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 30_000;
  return {
    baseUrl: base,
    async request<T>(method: string, pathOrUrl: string, request: GraphRequestOptions = {}) {
      const url = /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : `${base}${pathOrUrl}`;
      const headers: Record<string, string> = {
        accept: 'application/json',
        authorization: `Bearer ${options.token}`,
        ...request.headers,
      };
      if (request.body !== undefined) headers['content-type'] = 'application/json';
      let response: Response;
      try {
        response = await doFetch(url, {
          method,
          headers,
          ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        throw new VppdError('badRequest', `cannot reach ${base}: ${networkReason(error)}`, { cause: error });
      }
      const text = await response.text();
      let body: unknown;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        body = text;
      }
      if (!response.ok) throw httpError(response, body);
      return { status: response.status, body: body as T, headers: response.headers };
    },
  };
}

/** `401 InvalidAuthenticationToken: ...` from a Graph error body, else the status line. */
function httpError(response: Response, body: unknown): VppdError {
  const error = typeof body === 'object' && body !== null ? (body as GraphErrorBody).error : undefined;
  const code = typeof error?.code === 'string' ? error.code : response.statusText || 'Error';
  const message = typeof error?.message === 'string' ? error.message : '';
  const line = `${response.status} ${code}${message ? `: ${message}` : ''}`.replace(/\s*\n\s*/g, ' ');
  return new VppdError(response.status === 404 ? 'notFound' : 'badRequest', line, {
    details: { status: response.status, code },
  });
}

function networkReason(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return 'no answer in time';
  const cause =
    error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return error instanceof Error ? error.message : String(error);
}
