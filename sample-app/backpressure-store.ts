import type { GaugeStore } from '../src';

/**
 * Where the sample app counts its slots. `undefined` means the default in-memory store, so one
 * instance enforces its own limits. (A shared store chosen from `BACKPRESSURE_REDIS_URL` is planned
 * here, so several instances can share one limit; until then this always returns `undefined`.)
 */
export function storeFromEnv(): GaugeStore | undefined {
  return undefined;
}
