import { resolveGaugeOptions, type GaugeOptions } from '../../../src';
import type { RedisGaugeStore, StoreLogger } from '../../../src/redis';
import type { SharedGauge } from '../../../src/core/shared/shared-gauge';

/** Collects a store's log lines, to check an outage is logged once, not per request. */
export class Logs implements StoreLogger {
  readonly warnings: string[] = [];
  readonly infos: string[] = [];
  warn(message: string): void {
    this.warnings.push(message);
  }
  log(message: string): void {
    this.infos.push(message);
  }
}

/** A gauge of `store` built the way the module builds it. */
export function gaugeOf(
  store: RedisGaugeStore,
  name: string,
  options: GaugeOptions = {},
): SharedGauge {
  // The store's public signature says `Gauge`; the tests look at its Redis side (keys, idle()).
  return store.createGauge(resolveGaugeOptions(name, options)) as SharedGauge;
}

/** Polls `condition` (every 10 ms) until true, or fails naming what was awaited. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects if `promise` has not settled within `ms` — to fail fast instead of at the jest timeout. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Whether a promise has settled yet (after letting pending callbacks run). */
export async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await sleep(0);
  return settled;
}
