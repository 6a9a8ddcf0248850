/** The sample's routes, listed once so the start-up log and `GET /` never disagree. */
export const ENDPOINTS: ReadonlyArray<{ path: string; what: string }> = [
  { path: '/request', what: '10 slots, fail fast, 2 s of work: the Go PressureGauge example' },
  { path: '/queued', what: '2 slots, queue of 5 waiting up to 1 s, 400 ms of work' },
  { path: '/report', what: 'a service runs its work in an injected gauge (3 slots, 1 s)' },
  { path: '/gauges', what: 'every gauge: limit, inFlight, queued, admitted, rejected, ...' },
  { path: '/metrics', what: 'the same figures as Prometheus metrics (backpressure_*)' },
  {
    path: '/health',
    what: 'readiness: 503 once a gauge is saturated for 10 s or its store is down',
  },
  { path: '/docs', what: 'Swagger UI: each limited route documents its 429 (/docs-json)' },
];

/** The endpoint list as plain text lines, for the log and the home page. */
export function describeEndpoints(baseUrl: string): string[] {
  const width = Math.max(...ENDPOINTS.map((e) => e.path.length));
  return ENDPOINTS.map((e) => `GET ${baseUrl}${e.path.padEnd(width)}  ${e.what}`);
}
