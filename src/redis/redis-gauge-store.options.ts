import type { RedisClient } from './redis-client.util';
import { describeValue as show } from '../core/config-value.util';
import { GaugeConfigError } from '../core/gauge.errors';
import { assertStoreDownPolicy, type StoreDownPolicy } from '../core/store-down.policy';
import type { StoreLogger } from '../core/shared/store-health';

/** How a `RedisGaugeStore` connects and how its leases behave. Only `redis` is required. */
export interface RedisGaugeStoreOptions {
  /**
   * A `redis://` / `rediss://` URL (ioredis is then loaded on demand), or an ioredis client — a
   * `Redis` or a `Cluster`. A client is used as a template: the store opens its own connections
   * with `client.duplicate()` (so it can fail fast without changing your client's settings) and
   * never closes yours. On a Cluster, each gauge's keys share one hash slot.
   */
  redis: RedisClient | string;
  /** Prepended to every key and channel, so several apps can share one Redis. Default `backpressure:`. */
  keyPrefix?: string | undefined;
  /** A lease not renewed for this long expires: how fast a killed instance's slots come back. Default 10000. */
  leaseTtlMs?: number | undefined;
  /** How often this instance renews all its leases, in one batched call. Default a third of the TTL. */
  renewIntervalMs?: number | undefined;
  /** Fallback re-check of waiting callers (and probe of a down Redis) in case a notification is lost. Default 1000. */
  recheckIntervalMs?: number | undefined;
  /** A Redis command taking longer than this counts as an outage, so requests never hang on Redis. Default 1000. */
  commandTimeoutMs?: number | undefined;
  /** Default for gauges without their own `whenStoreDown`. Default `'fail-closed'` (503). */
  whenStoreDown?: StoreDownPolicy | undefined;
  /**
   * Readable start of this instance's lease ids (visible in Redis, handy when debugging). Default
   * random. Need not be unique: each store adds a random part of its own, so replicas given the
   * same id, or a restart reusing it, never share a lease.
   */
  instanceId?: string | undefined;
  /** Where the one line per outage goes. Default `console`. Nest's `new Logger('Backpressure')` fits. */
  logger?: StoreLogger | undefined;
}

/** The options with defaults applied. */
export type ResolvedRedisStoreOptions = {
  readonly [K in Exclude<keyof RedisGaugeStoreOptions, 'instanceId'>]-?: Exclude<
    RedisGaugeStoreOptions[K],
    undefined
  >;
} & {
  readonly instanceId: string | undefined;
};

const KNOWN = new Set([
  'redis',
  'keyPrefix',
  'leaseTtlMs',
  'renewIntervalMs',
  'recheckIntervalMs',
  'commandTimeoutMs',
  'whenStoreDown',
  'instanceId',
  'logger',
]);
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
const WHERE = 'RedisGaugeStore';

const consoleLogger: StoreLogger = {
  warn: (message) => console.warn(`[Backpressure] ${message}`),
  log: (message) => console.log(`[Backpressure] ${message}`),
};

/** Validates the store's options at construction, so a typo fails the bootstrap. */
export function resolveRedisStoreOptions(
  options: RedisGaugeStoreOptions,
): ResolvedRedisStoreOptions {
  if (options === null || typeof options !== 'object') {
    throw new GaugeConfigError(
      `${WHERE}: options must be an object with at least { redis }, got ${show(options)}`,
    );
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw new GaugeConfigError(
        `${WHERE}: unknown option "${key}" (known: ${[...KNOWN].join(', ')})`,
      );
    }
  }
  const { redis } = options;
  const isUrl = typeof redis === 'string' && /^rediss?:\/\//.test(redis);
  const isClient = typeof (redis as { duplicate?: unknown } | null)?.duplicate === 'function';
  if (!isUrl && !isClient) {
    throw new GaugeConfigError(
      `${WHERE}: option "redis" must be a redis:// URL or an ioredis client, got ${show(redis)}`,
    );
  }
  const keyPrefix = options.keyPrefix ?? 'backpressure:';
  if (typeof keyPrefix !== 'string') {
    throw new GaugeConfigError(
      `${WHERE}: option "keyPrefix" must be a string, got ${show(keyPrefix)}`,
    );
  }
  const leaseTtlMs = ms('leaseTtlMs', options.leaseTtlMs ?? 10_000, 100);
  const renewIntervalMs = ms(
    'renewIntervalMs',
    options.renewIntervalMs ?? Math.floor(leaseTtlMs / 3),
    10,
  );
  if (renewIntervalMs >= leaseTtlMs) {
    throw new GaugeConfigError(
      `${WHERE}: option "renewIntervalMs" (${renewIntervalMs}) must be shorter than "leaseTtlMs" (${leaseTtlMs}), or leases expire while held`,
    );
  }
  const recheckIntervalMs = ms('recheckIntervalMs', options.recheckIntervalMs ?? 1000, 10);
  const commandTimeoutMs = ms('commandTimeoutMs', options.commandTimeoutMs ?? 1000, 1);
  const whenStoreDown = options.whenStoreDown ?? 'fail-closed';
  assertStoreDownPolicy(WHERE, whenStoreDown);
  const { instanceId, logger = consoleLogger } = options;
  if (instanceId !== undefined && (typeof instanceId !== 'string' || instanceId === '')) {
    throw new GaugeConfigError(
      `${WHERE}: option "instanceId" must be a non-empty string, got ${show(instanceId)}`,
    );
  }
  if (typeof logger?.warn !== 'function' || typeof logger.log !== 'function') {
    throw new GaugeConfigError(
      `${WHERE}: option "logger" must have warn() and log(), got ${show(logger)}`,
    );
  }
  return {
    redis,
    keyPrefix,
    leaseTtlMs,
    renewIntervalMs,
    recheckIntervalMs,
    commandTimeoutMs,
    whenStoreDown,
    instanceId,
    logger,
  };
}

function ms(option: string, value: unknown, min: number): number {
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < min ||
    value > MAX_TIMEOUT_MS
  ) {
    throw new GaugeConfigError(
      `${WHERE}: option "${option}" must be an integer number of milliseconds from ${min} to ${MAX_TIMEOUT_MS}, got ${show(value)}`,
    );
  }
  return value;
}
