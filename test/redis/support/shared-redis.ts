import { afterAll, afterEach } from '@jest/globals';
import { Redis } from 'ioredis';
import { RedisGaugeStore, type RedisGaugeStoreOptions } from '../../../src/redis';
import { Logs } from './helpers';
import { closeClient, deleteKeys, REDIS_URL, uniquePrefix } from './redis-env';

/** What a suite on the shared Redis works with: its own key prefix, its stores and a plain client. */
export interface SharedRedis {
  /** The suite's key prefix: no other run or suite writes under it. */
  readonly prefix: string;
  /** A plain client on the same Redis, to look at (or break) what the stores wrote. */
  readonly redis: Redis;
  /** One "instance": its own store, connections and lease ids; closed after each test. */
  instance(options?: Partial<RedisGaugeStoreOptions>): RedisGaugeStore;
  /** The key of gauge `name`'s lease set. */
  leasesOf(name: string): string;
  /** Every key gauge `name` has in Redis but its cap hash, sorted. */
  leftovers(name: string): Promise<string[]>;
}

/**
 * Sets a describe block up on the shared Redis: a unique prefix, stores that are closed and keys
 * that are deleted after each test (after `beforeCleanup`, e.g. closing apps that own stores), and
 * a client closed after the block. Call it in the describe body.
 */
export function sharedRedis(
  label: string,
  setup: {
    /** Options every `instance()` starts from (the call's own win). */
    store?: Partial<RedisGaugeStoreOptions>;
    /** Runs after each test before the stores close and the keys go. */
    beforeCleanup?: () => unknown;
  } = {},
): SharedRedis {
  const prefix = uniquePrefix(label);
  const stores: RedisGaugeStore[] = [];
  // Connects on its first command, in a hook or test: declaring the suite opens no socket.
  const redis = new Redis(REDIS_URL, { lazyConnect: true });

  afterEach(async () => {
    await setup.beforeCleanup?.();
    await Promise.all(stores.splice(0).map((store) => store.close()));
    await deleteKeys(redis, prefix);
  });
  afterAll(async () => {
    await closeClient(redis);
  });

  return {
    prefix,
    redis,
    instance(options = {}) {
      const store = new RedisGaugeStore({
        redis: REDIS_URL,
        keyPrefix: prefix,
        logger: new Logs(),
        ...setup.store,
        ...options,
      });
      stores.push(store);
      return store;
    },
    leasesOf: (name) => `${prefix}{${name}}:leases`,
    leftovers: async (name) =>
      (await redis.keys(`${prefix}{${name}}*`)).filter((key) => !key.endsWith(':limit')).sort(),
  };
}
