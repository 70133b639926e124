import fc from 'fast-check';
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createHttpRequestMetrics } from './metrics.js';

/** The HTTP metrics as plain prom-client would keep them, one inc/observe per request. */
function promClientReference() {
  const registry = new Registry();
  const requests = new Counter({
    name: 'vppd_http_requests_total',
    help: 'HTTP requests served by method, route pattern and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'vppd_http_request_duration_seconds',
    help: 'HTTP request duration by method and route pattern',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return {
    registry,
    observe(method: string, route: string, status: number, seconds: number) {
      requests.inc({ method, route, status: String(status) });
      duration.observe({ method, route }, seconds);
    },
  };
}

const request = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE'),
  route: fc.constantFrom(
    '/beta/deviceAppManagement/vppTokens',
    '/beta/deviceAppManagement/vppTokens/:id',
    '/v1.0/deviceAppManagement/vppTokens/:id',
    'unmatched',
    '/a "quoted" \\ route',
  ),
  status: fc.constantFrom(200, 201, 204, 400, 401, 404, 500),
  // Bucket bounds exactly, values between them, and beyond the last one.
  seconds: fc.oneof(
    fc.constantFrom(0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7),
    fc.double({ min: 0, max: 10, noNaN: true }),
  ),
});

describe('createHttpRequestMetrics', () => {
  it('exposes exactly what prom-client would, text and JSON, across scrapes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(request, { maxLength: 60 }), { minLength: 1, maxLength: 3 }),
        async (scrapes) => {
          const reference = promClientReference();
          const registry = new Registry();
          const tallied = createHttpRequestMetrics(registry);
          for (const batch of scrapes) {
            for (const r of batch) {
              reference.observe(r.method, r.route, r.status, r.seconds);
              tallied.observe(r.method, r.route, r.status, r.seconds);
            }
            expect(await registry.metrics()).toBe(await reference.registry.metrics());
            expect(await registry.getMetricsAsJSON()).toEqual(await reference.registry.getMetricsAsJSON());
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('counts every request once, whenever the registry is read', async () => {
    const registry = new Registry();
    const metrics = createHttpRequestMetrics(registry);
    metrics.observe('GET', '/x', 200, 0.002);
    await registry.metrics();
    metrics.observe('GET', '/x', 200, 0.3);
    metrics.observe('GET', '/x', 404, 0.0005);
    const text = await registry.metrics();
    expect(text).toContain('vppd_http_requests_total{method="GET",route="/x",status="200"} 2');
    expect(text).toContain('vppd_http_requests_total{method="GET",route="/x",status="404"} 1');
    expect(text).toContain('vppd_http_request_duration_seconds_bucket{le="0.001",method="GET",route="/x"} 1');
    expect(text).toContain('vppd_http_request_duration_seconds_bucket{le="0.25",method="GET",route="/x"} 2');
    expect(text).toContain('vppd_http_request_duration_seconds_count{method="GET",route="/x"} 3');
    // Reading again adds nothing.
    expect(await registry.metrics()).toBe(text);
  });
});
