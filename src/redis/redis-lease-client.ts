import type { Redis } from 'ioredis';
import type { LeaseBatch, LeaseClient } from '../core/shared/lease-client';
import { ACQUIRE_LEASE, RELEASE_LEASES, RENEW_LEASES } from './lease.scripts';

type Script = (...args: (string | number)[]) => Promise<unknown>;
type Scripts = Record<string, Script>;

const ACQUIRE = 'backpressureAcquire';
const RELEASE = 'backpressureRelease';
const RENEW = 'backpressureRenew';

/**
 * The `LeaseClient` on Redis: each operation is one Lua script (lease.scripts.ts) on one
 * connection, a gauge's leases one sorted set. The scripts are registered with ioredis's
 * `defineCommand`, which sends `EVALSHA` and falls back to `EVAL` on `NOSCRIPT` (a flushed script
 * cache or a restarted Redis), so a steady-state call is one small command.
 */
export class RedisLeaseClient implements LeaseClient {
  private readonly scripts: Scripts;

  constructor(private readonly client: Redis) {
    client.defineCommand(ACQUIRE, { numberOfKeys: 1, lua: ACQUIRE_LEASE });
    client.defineCommand(RELEASE, { numberOfKeys: 1, lua: RELEASE_LEASES });
    client.defineCommand(RENEW, { numberOfKeys: 1, lua: RENEW_LEASES });
    this.scripts = client as unknown as Scripts;
  }

  /** One attempt at a slot: true when lease `id` now holds one. */
  async acquire(key: string, id: string, limit: number, ttlMs: number): Promise<boolean> {
    return (await this.scripts[ACQUIRE](key, id, limit, ttlMs)) === 1;
  }

  /** Removes leases and wakes waiting instances if the gauge was full; resolves to the count removed. */
  async release(
    key: string,
    channel: string,
    limit: number,
    notify: boolean,
    ids: readonly string[],
  ): Promise<number> {
    return Number(await this.scripts[RELEASE](key, channel, limit, notify ? '1' : '0', ...ids));
  }

  /**
   * Renews every batch in one round trip (a pipeline when there are several gauges; on a Cluster
   * client, where a pipeline must stay on one node, one call per gauge sent together). Resolves to
   * how many leases had to be re-added, per batch.
   */
  async renew(batches: readonly LeaseBatch[], ttlMs: number): Promise<number[]> {
    if (batches.length === 1 || this.client.isCluster) {
      return Promise.all(
        batches.map(async ({ key, ids }) => Number(await this.scripts[RENEW](key, ttlMs, ...ids))),
      );
    }
    const pipeline = this.client.pipeline();
    const queued = pipeline as unknown as Scripts;
    for (const { key, ids } of batches) void queued[RENEW](key, ttlMs, ...ids);
    const results = (await pipeline.exec()) ?? [];
    return results.map(([error, added]) => {
      if (error) throw error;
      return Number(added);
    });
  }
}
