import type { Gauge } from '../core/gauge.interface';
import type { GaugeStore } from '../core/gauge-store.interface';
import type { ResolvedGaugeOptions } from '../core/resolved-gauge-options';
import { SharedGaugeStore } from '../core/shared/shared-gauge-store';
import type { StoreState } from '../core/shared/store-health';
import { RedisConnection } from './redis-connection';
import { resolveRedisStoreOptions, type RedisGaugeStoreOptions } from './redis-gauge-store.options';

/**
 * Where a `RedisGaugeStore`'s connection stands (`store.state`, for health checks): `connecting`
 * until the first connection settles, then `up` or `down`.
 */
export type RedisState = StoreState;

/**
 * A gauge store on Redis: every instance given the same Redis (and `keyPrefix`) shares each gauge's
 * `limit`, so 10 means 10 across all replicas. Pass it as `store` to `BackpressureModule.forRoot()`
 * for every gauge, or in one gauge's config for that gauge only.
 *
 * Per instance it holds two connections (commands; release notifications) and two timers (lease
 * renewal; re-check and outage probe), whatever the number of gauges and requests. Options:
 * `RedisGaugeStoreOptions`; behaviour, guarantees and costs: docs/redis.md.
 */
export class RedisGaugeStore implements GaugeStore {
  /** The readable start of this store's lease ids (the `instanceId` option, or random). */
  readonly instanceId: string;
  /**
   * What every lease id of this store starts with: `instanceId:nonce`, the nonce random per store.
   * Stores given the same `instanceId` (replicas with a fixed id, two stores in one process, a pod
   * restarted under its old name while its predecessor's leases are still in Redis) never share a
   * lease id, so none admits on, renews or releases another's lease.
   */
  readonly leaseIdPrefix: string;
  /** The store-independent part: gauges, waiting, outages, renewal (src/core/shared). */
  private readonly shared: SharedGaugeStore;

  /** Checks the options (a mistake throws `GaugeConfigError`); connects on the first gauge. */
  constructor(options: RedisGaugeStoreOptions) {
    const resolved = resolveRedisStoreOptions(options);
    // ioredis's connect timeout, and how long the first connection may take to become ready.
    const connectTimeoutMs = Math.max(resolved.commandTimeoutMs, 1000);
    const connection = new RedisConnection({
      redis: resolved.redis,
      keyPrefix: resolved.keyPrefix,
      commandTimeoutMs: resolved.commandTimeoutMs,
      connectTimeoutMs,
    });
    this.shared = new SharedGaugeStore(connection, {
      kind: 'Redis',
      storeName: 'RedisGaugeStore',
      leaseTtlMs: resolved.leaseTtlMs,
      renewIntervalMs: resolved.renewIntervalMs,
      recheckIntervalMs: resolved.recheckIntervalMs,
      connectTimeoutMs,
      closeGraceMs: resolved.commandTimeoutMs,
      whenStoreDown: resolved.whenStoreDown,
      instanceId: resolved.instanceId,
      logger: resolved.logger,
    });
    this.instanceId = this.shared.instanceId;
    this.leaseIdPrefix = this.shared.leaseIdPrefix;
  }

  /** `connecting` until the first connection settles, then `up` or `down` (for health checks). */
  get state(): RedisState {
    return this.shared.state;
  }

  /**
   * Builds a gauge whose slots are leases in Redis; connects on the first call. Throws a
   * `GaugeConfigError` if given a URL and ioredis cannot be loaded (this call and every later one).
   */
  createGauge(options: ResolvedGaugeOptions): Gauge {
    return this.shared.createGauge(options);
  }

  /**
   * Refuses waiting and new callers, gives handlers still running up to `commandTimeoutMs` to
   * release their slots (so those releases reach Redis), then stops timers and closes the store's
   * connections (never a client you passed in). Leases still held after that are no longer
   * renewed and expire within the TTL.
   */
  close(): Promise<void> {
    return this.shared.close();
  }
}
