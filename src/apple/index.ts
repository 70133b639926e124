export * from './apple-client.js';
export * from './apple-failure.js';
export * from './apple-http.js';
export * from './apple-types.js';
export * from './page-stream.js';
export * from './rate-limiter.js';
export * from './retry-policy.js';
