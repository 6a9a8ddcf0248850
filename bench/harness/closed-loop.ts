import autocannon from 'autocannon';

/** One closed-loop measurement: every connection sends its next request when the last one returns. */
export interface ClosedLoopResult {
  /** Responses per second, all statuses. */
  rps: number;
  /** Responses per second by status code. */
  rpsByStatus: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  timeouts: number;
  requests: number;
  seconds: number;
}

export interface ClosedLoopOptions {
  url: string;
  connections: number;
  /** Seconds to run; or `amount` requests. */
  seconds?: number;
  amount?: number;
}

/** Runs autocannon (as a library, in this process, never in the server's). */
export async function closedLoop(options: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    pipelining: 1,
    duration: options.seconds ?? 10,
    ...(options.amount === undefined ? {} : { amount: options.amount }),
    timeout: 10,
  });
  const seconds = result.duration;
  const rpsByStatus: Record<string, number> = {};
  for (const [status, { count = 0 }] of Object.entries(result.statusCodeStats ?? {})) {
    rpsByStatus[status] = count / seconds;
  }
  const requests = Object.values(result.statusCodeStats ?? {}).reduce(
    (n, s) => n + (s.count ?? 0),
    0,
  );
  return {
    rps: requests / seconds,
    rpsByStatus,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors,
    timeouts: result.timeouts,
    requests,
    seconds,
  };
}
