import { Agent, type Dispatcher } from 'undici';

/** One HTTP request to Apple, as the client builds it. */
export interface AppleHttpRequest {
  readonly method: 'GET' | 'POST';
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Aborts the request and the reading of its body (caller abort or per-request timeout). */
  readonly signal: AbortSignal;
}

/** Apple's answer: status, the one header the client acts on, and the whole body as text. */
export interface AppleHttpResponse {
  readonly status: number;
  readonly retryAfter: string | undefined;
  readonly body: string;
}

/** The transport the Apple client sends requests through (undici pool or an injected `fetch`). */
export interface AppleHttp {
  request(request: AppleHttpRequest): Promise<AppleHttpResponse>;
  /** Releases connections the transport owns; a dispatcher passed in is left to its owner. */
  close(): Promise<void>;
}

export interface UndiciHttpOptions {
  /** A shared pool/agent; when absent the transport creates and owns a keep-alive `Agent`. */
  readonly dispatcher?: Dispatcher;
  /** Connections per origin of the owned agent (Apple allows 5 requests in flight per location). */
  readonly connections?: number;
  readonly keepAliveTimeoutMs?: number;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** An {@link AppleHttp} over an undici dispatcher with keep-alive connections. */
export function createUndiciHttp(options: UndiciHttpOptions = {}): AppleHttp {
  const owned = options.dispatcher === undefined;
  const dispatcher =
    options.dispatcher ??
    new Agent({
      connections: options.connections ?? 16,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 10_000,
      pipelining: 1,
    });
  return {
    async request(request) {
      const response = await dispatcher.request({
        origin: request.url.origin,
        path: `${request.url.pathname}${request.url.search}`,
        method: request.method,
        headers: { ...request.headers },
        body: request.body ?? null,
        signal: request.signal,
      });
      const body = await response.body.text();
      return {
        status: response.statusCode,
        retryAfter: headerValue(response.headers['retry-after']),
        body,
      };
    },
    async close() {
      if (owned) await dispatcher.close();
    },
  };
}

/** The subset of WHATWG `fetch` the client needs, so any conforming implementation can be injected. */
export type FetchLike = (
  input: string,
  init: { method: string; headers: Record<string, string>; body?: string; signal: AbortSignal },
) => Promise<{ status: number; headers: { get(name: string): string | null }; text(): Promise<string> }>;

/** An {@link AppleHttp} over an injected `fetch` (e.g. `globalThis.fetch` or undici's `fetch`). */
export function createFetchHttp(fetchImpl: FetchLike): AppleHttp {
  return {
    async request(request) {
      const response = await fetchImpl(request.url.href, {
        method: request.method,
        headers: { ...request.headers },
        ...(request.body === undefined ? {} : { body: request.body }),
        signal: request.signal,
      });
      const body = await response.text();
      return { status: response.status, retryAfter: response.headers.get('retry-after') ?? undefined, body };
    },
    async close() {},
  };
}
