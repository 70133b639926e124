// The official beta SDK's Kiota pieces, wired the way its generated request builders are. The fluent
// `deviceAppManagement` builders are not published in the registry used here, so the request
// information below is built by hand from the same URL templates and query-parameter mappers the
// generator emits for `/deviceAppManagement/vppTokens` (and `/{vppToken-id}`).
import {
  AllowedHostsValidator,
  BaseBearerTokenAuthenticationProvider,
  type ErrorMappings,
  HttpMethod,
  RequestInformation,
} from '@microsoft/kiota-abstractions';
import { GraphBetaRequestAdapter } from '@microsoft/msgraph-beta-sdk';
import {
  createVppTokenCollectionResponseFromDiscriminatorValue,
  createVppTokenFromDiscriminatorValue,
  serializeVppToken,
  type VppToken,
  type VppTokenCollectionResponse,
} from '@microsoft/msgraph-beta-sdk/models/index.js';
import { createODataErrorFromDiscriminatorValue } from '@microsoft/msgraph-beta-sdk/models/oDataErrors/index.js';
import { version as betaSdkVersion } from '@microsoft/msgraph-beta-sdk/version.js';
import { createGraphClientFactory } from '@microsoft/msgraph-sdk-core';

/** The generator's URL template of the collection request builder. */
export const vppTokensUriTemplate =
  '{+baseurl}/deviceAppManagement/vppTokens{?%24count,%24expand,%24filter,%24orderby,%24search,%24select,%24skip,%24top}';

/** The generator's URL template of the item request builder. */
export const vppTokenItemUriTemplate =
  '{+baseurl}/deviceAppManagement/vppTokens/{vppToken%2Did}{?%24expand,%24select}';

/** The generator's mapper from query-parameter names to template variables. */
const queryParametersMapper: Record<string, string> = {
  count: '%24count',
  expand: '%24expand',
  filter: '%24filter',
  orderby: '%24orderby',
  search: '%24search',
  select: '%24select',
  skip: '%24skip',
  top: '%24top',
};

/** Error mapping of every generated Graph call: any 4xx/5xx body is an `ODataError`. */
export const graphErrorMappings: ErrorMappings = { XXX: createODataErrorFromDiscriminatorValue };

export interface VppTokensQuery {
  readonly count?: boolean;
  readonly filter?: string;
  readonly orderby?: string[];
  readonly select?: string[];
  readonly skip?: number;
  readonly top?: number;
}

/** A bearer token provider that hands out one fixed access token, only to the allowed hosts. */
function staticBearer(accessToken: string, allowedHosts: readonly string[]) {
  const validator = new AllowedHostsValidator(new Set(allowedHosts));
  return new BaseBearerTokenAuthenticationProvider({
    getAuthorizationToken: async (url) =>
      url === undefined || validator.isUrlHostValid(url) ? accessToken : '',
    getAllowedHostsValidator: () => validator,
  });
}

/** One HTTP exchange as it went over the wire (Kiota hides status codes from its callers). */
export interface Exchange {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly headers: Headers;
  readonly requestHeaders: Headers;
}

export interface BetaAdapterOptions {
  /** Every exchange is appended here: the real fetch does the work, this only looks. */
  readonly exchanges?: Exchange[];
}

/**
 * The beta SDK's request adapter (`GraphBetaRequestAdapter`: the Graph middleware chain of
 * msgraph-sdk-core, JSON serialization) pointed at `baseUrl` (e.g. `http://127.0.0.1:1234/beta`)
 * and sending `accessToken` as bearer.
 */
export function createBetaAdapter(
  baseUrl: string,
  accessToken: string,
  options: BetaAdapterOptions = {},
): GraphBetaRequestAdapter {
  const host = new URL(baseUrl).hostname;
  const { exchanges } = options;
  const recordingFetch = async (url: string, init: RequestInit): Promise<Response> => {
    const response = await fetch(url, init);
    exchanges?.push({
      method: init.method ?? 'GET',
      url,
      status: response.status,
      headers: response.headers,
      requestHeaders: new Headers(init.headers),
    });
    return response;
  };
  // The same client factory the adapter uses by default, with the recording fetch at the end of the chain.
  const httpClient = createGraphClientFactory(
    { graphServiceTargetVersion: 'beta', graphServiceLibraryClientVersion: betaSdkVersion },
    recordingFetch,
  );
  const adapter = new GraphBetaRequestAdapter(
    staticBearer(accessToken, [host]),
    undefined,
    undefined,
    httpClient,
  );
  adapter.baseUrl = baseUrl;
  return adapter;
}

function collectionRequest(adapter: GraphBetaRequestAdapter, method: HttpMethod): RequestInformation {
  return new RequestInformation(method, vppTokensUriTemplate, { baseurl: adapter.baseUrl });
}

function itemRequest(adapter: GraphBetaRequestAdapter, method: HttpMethod, id: string): RequestInformation {
  return new RequestInformation(method, vppTokenItemUriTemplate, {
    baseurl: adapter.baseUrl,
    'vppToken%2Did': id,
  });
}

/** Typed calls on `/deviceAppManagement/vppTokens`, as the generated builders would make them. */
export function vppTokensClient(adapter: GraphBetaRequestAdapter) {
  return {
    /** GET the collection (one page). */
    list(query: VppTokensQuery = {}, headers: Record<string, string> = {}) {
      const info = collectionRequest(adapter, HttpMethod.GET);
      info.configure({ queryParameters: query, headers }, queryParametersMapper);
      info.headers.tryAdd('Accept', 'application/json');
      return adapter.send<VppTokenCollectionResponse>(
        info,
        createVppTokenCollectionResponseFromDiscriminatorValue,
        graphErrorMappings,
      );
    },
    /** GET one token. */
    get(id: string, query: Pick<VppTokensQuery, 'select'> = {}) {
      const info = itemRequest(adapter, HttpMethod.GET, id);
      info.configure({ queryParameters: query }, queryParametersMapper);
      info.headers.tryAdd('Accept', 'application/json');
      return adapter.send<VppToken>(info, createVppTokenFromDiscriminatorValue, graphErrorMappings);
    },
    /** POST a new token (the body serialized by the SDK's own `serializeVppToken`). */
    create(body: VppToken) {
      const info = collectionRequest(adapter, HttpMethod.POST);
      info.headers.tryAdd('Accept', 'application/json');
      info.setContentFromParsable(adapter, 'application/json', body, serializeVppToken);
      return adapter.send<VppToken>(info, createVppTokenFromDiscriminatorValue, graphErrorMappings);
    },
    /** PATCH a token; resolves to undefined on 204, to the token when the server returns one. */
    update(id: string, body: VppToken, headers: Record<string, string> = {}) {
      const info = itemRequest(adapter, HttpMethod.PATCH, id);
      info.configure({ headers }, queryParametersMapper);
      info.headers.tryAdd('Accept', 'application/json');
      info.setContentFromParsable(adapter, 'application/json', body, serializeVppToken);
      return adapter.send<VppToken>(info, createVppTokenFromDiscriminatorValue, graphErrorMappings);
    },
    /** DELETE a token. */
    delete(id: string) {
      const info = itemRequest(adapter, HttpMethod.DELETE, id);
      info.headers.tryAdd('Accept', 'application/json');
      return adapter.sendNoResponseContent(info, graphErrorMappings);
    },
  };
}
