import type { LimitPolicy } from '../../src/core/limit-policy';

/** One phase of a simulated run: the dependency's capacity and the offered load. */
export interface SimPhase {
  /** How long the phase lasts (ms). */
  readonly ms: number;
  /** Calls the dependency serves at once; more wait inside it, first come first served. */
  readonly capacity: number;
  /** Offered load, requests per second (Poisson arrivals). */
  readonly ratePerSecond: number;
  /** The dependency's service time (ms); each call takes it ±10 %. */
  readonly serviceMs: number;
}

/** What one bucket of simulated time saw. */
export interface SimBucket {
  readonly at: number;
  readonly limit: number;
  readonly served: number;
  readonly refused: number;
  /** Latencies of the calls that finished in the bucket (ms). */
  readonly latencies: number[];
  readonly maxInFlight: number;
}

/**
 * A deterministic discrete-event simulation of a fail-fast gauge under `policy` in front of a
 * dependency with a bounded number of servers (a DB pool's callers): the same seed gives the same
 * run, so a test can assert on what an adaptive limit does under a capacity shift, with no clock.
 */
export function simulate(
  policy: LimitPolicy,
  phases: readonly SimPhase[],
  { bucketMs = 500, seed = 1 }: { bucketMs?: number; seed?: number } = {},
): SimBucket[] {
  let rng = seed >>> 0 || 1;
  const random = () => {
    rng ^= rng << 13;
    rng ^= rng >>> 17;
    rng ^= rng << 5;
    rng >>>= 0;
    return rng / 2 ** 32;
  };
  // Finish events, kept sorted by time (few at once: at most the limit).
  const finishes: { at: number; started: number }[] = [];
  const waiting: number[] = []; // arrival times of calls queued inside the dependency
  let busy = 0;
  let inFlight = 0;
  let limit = policy.limit;
  const buckets: SimBucket[] = [];
  let bucket = newBucket(0, limit);
  let phaseIndex = 0;
  let phaseEnd = phases[0]?.ms ?? 0;
  const end = phases.reduce((sum, p) => sum + p.ms, 0);
  let nextArrival = 0;

  const phase = () => phases[phaseIndex] as SimPhase;
  const serve = (now: number, started: number) => {
    busy++;
    const service = phase().serviceMs * (0.9 + 0.2 * random());
    const at = now + service;
    let i = finishes.length;
    while (i > 0 && (finishes[i - 1] as { at: number }).at > at) i--;
    finishes.splice(i, 0, { at, started });
  };

  for (;;) {
    const finish = finishes[0];
    const now = Math.min(finish?.at ?? Infinity, nextArrival);
    if (now >= end) break;
    while (now >= phaseEnd && phaseIndex < phases.length - 1) {
      phaseIndex++;
      phaseEnd += phase().ms;
    }
    while (now >= bucket.at + bucketMs) {
      buckets.push(bucket);
      bucket = newBucket(bucket.at + bucketMs, limit);
    }
    if (finish !== undefined && finish.at === now) {
      finishes.shift();
      busy--;
      while (busy < phase().capacity && waiting.length > 0) serve(now, waiting.shift() as number);
      const heldMs = now - finish.started;
      bucket.served++;
      bucket.latencies.push(heldMs);
      limit = policy.update({ heldMs, outcome: 'succeeded', inFlight, at: now });
      inFlight--;
      bucket.limit = limit;
    } else {
      nextArrival = now + (-Math.log(1 - random()) * 1000) / phase().ratePerSecond;
      if (inFlight >= limit) {
        bucket.refused++;
        continue;
      }
      inFlight++;
      if (inFlight > bucket.maxInFlight) bucket.maxInFlight = inFlight;
      if (busy < phase().capacity) serve(now, now);
      else waiting.push(now);
    }
  }
  buckets.push(bucket);
  return buckets;
}

function newBucket(at: number, limit: number) {
  return { at, limit, served: 0, refused: 0, latencies: [] as number[], maxInFlight: 0 };
}

/** The `p`-th latency (0 to 1) of a list; NaN when empty. */
export function percentileOf(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}
