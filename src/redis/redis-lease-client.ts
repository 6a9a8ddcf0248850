import type { RedisClient } from './redis-client.util';
import type {
  AcquireReply,
  GaugeKeys,
  LeaseBatch,
  LeaseClient,
  LeaseRequest,
  LimitSync,
  RenewOutcome,
  RenewReply,
} from '../core/shared/lease-client';
import { StoreCommandError } from '../core/shared/command-error';
import {
  ACQUIRE_LEASE,
  RELEASE_LEASES,
  RENEW_LEASES,
  SET_LIMIT,
  SYNC_LIMIT,
} from './lease.scripts';
import { scriptFailure } from './redis-reply-error';

/** The acquire script's refusal codes. */
const REASONS = ['full', 'key-over-share', 'shed-priority'] as const;

const ACQUIRE = 'backpressureAcquire';
const RELEASE = 'backpressureRelease';
const RENEW = 'backpressureRenew';
const SYNC = 'backpressureSyncLimit';
const SET = 'backpressureSetLimit';

type Script = (...args: (string | number)[]) => Promise<unknown>;
/** The commands `defineCommand` adds to the client, by name. */
type Scripts = Record<
  typeof ACQUIRE | typeof RELEASE | typeof RENEW | typeof SYNC | typeof SET,
  Script
>;

/**
 * The `LeaseClient` on Redis: each operation is one Lua script (lease.scripts.ts) on one
 * connection, a gauge's leases one sorted set and its cap one hash beside it. The scripts are
 * registered with ioredis's `defineCommand`, which sends `EVALSHA` and falls back to `EVAL` on
 * `NOSCRIPT` (a flushed script cache or a restarted Redis), so a steady-state call is one small
 * command.
 */
export class RedisLeaseClient implements LeaseClient {
  private readonly scripts: Scripts;

  constructor(private readonly client: RedisClient) {
    client.defineCommand(ACQUIRE, { numberOfKeys: 2, lua: ACQUIRE_LEASE });
    client.defineCommand(RELEASE, { numberOfKeys: 2, lua: RELEASE_LEASES });
    client.defineCommand(RENEW, { numberOfKeys: 2, lua: RENEW_LEASES });
    client.defineCommand(SYNC, { numberOfKeys: 1, lua: SYNC_LIMIT });
    client.defineCommand(SET, { numberOfKeys: 1, lua: SET_LIMIT });
    this.scripts = client as unknown as Scripts;
  }

  /**
   * One attempt at a slot: whether lease `id` now holds one, and the cap Redis applied; with a
   * request (a key, a fail-fast level), also why it was refused and the id recorded (a keyed
   * call: under its key or an overflow partition).
   */
  async acquire(
    keys: GaugeKeys,
    id: string,
    limit: number,
    ttlMs: number,
    request?: LeaseRequest,
  ): Promise<AcquireReply> {
    if (request === undefined) {
      const [granted, cap] = pair(
        await this.run(ACQUIRE, keys.leases, keys.limit, id, limit, ttlMs),
      );
      return { granted: granted === 1, limit: cap };
    }
    const { partition: p, priority } = request;
    const reply = (await this.run(
      ACQUIRE,
      keys.leases,
      keys.limit,
      p?.id ?? id,
      limit,
      ttlMs,
      priority === undefined ? '' : priority.rank,
      priority?.named ? '1' : '0',
      Math.round(request.meanHoldMs * 1000) / 1000,
      ...(p === undefined
        ? ['']
        : [p.token, p.overflowId, p.overflowToken, p.limit, p.maxKeys, p.fair ? '1' : '0']),
    )) as unknown[];
    const [granted, cap, reason, overflow] = reply.map(Number) as [number, number, number, number];
    return {
      granted: granted === 1,
      limit: cap,
      reason: granted === 1 ? undefined : (REASONS[reason] ?? 'full'),
      id: p === undefined ? id : overflow === 1 ? p.overflowId : p.id,
    };
  }

  /** Removes leases and wakes waiting instances if the gauge was full; resolves to the count removed. */
  async release(
    keys: GaugeKeys,
    limit: number,
    notify: boolean,
    ids: readonly string[],
  ): Promise<number> {
    const { leases, limit: cap, channel } = keys;
    return Number(await this.run(RELEASE, leases, cap, channel, limit, notify ? '1' : '0', ...ids));
  }

  /**
   * Renews every batch in one round trip (a pipeline when there are several gauges; on a Cluster
   * client, where a pipeline must stay on one node, one call per gauge sent together). Resolves to
   * how many leases had to be re-added, and the cap, per batch; a batch whose script failed with
   * an error of its own resolves to that `StoreCommandError`, so one corrupted gauge never drops
   * the replies of the others. Any other error (an outage) rejects the whole renewal.
   */
  async renew(batches: readonly LeaseBatch[], ttlMs: number): Promise<RenewOutcome[]> {
    const args = ({ keys, limit, ids }: LeaseBatch) => [
      keys.leases,
      keys.limit,
      ttlMs,
      limit,
      ...ids,
    ];
    if (batches.length === 1 || this.client.isCluster) {
      return Promise.all(
        batches.map((batch) => this.run(RENEW, ...args(batch)).then(renewReply, ownError)),
      );
    }
    const pipeline = this.client.pipeline();
    const queued = pipeline as unknown as Scripts;
    for (const batch of batches) void queued[RENEW](...args(batch));
    const results = (await pipeline.exec()) ?? [];
    return results.map(([error, reply]) =>
      error ? ownError(scriptFailure(RENEW, error)) : renewReply(reply),
    );
  }

  /** At bootstrap: stores this instance's configured limit as the cap, or adopts the stored one. */
  async syncLimit(keys: GaugeKeys, configured: number, ttlMs: number): Promise<LimitSync> {
    const reply = await this.run(SYNC, keys.limit, configured, ttlMs);
    const [limit, storedLimit, storedConfigured] = triple(reply);
    return {
      limit,
      storedLimit: storedLimit > 0 ? storedLimit : undefined,
      storedConfigured: storedConfigured > 0 ? storedConfigured : undefined,
    };
  }

  /** Stores a cap for every instance (announced when raised); resolves to the one before, if any. */
  async setLimit(
    keys: GaugeKeys,
    limit: number,
    configured: number,
    ttlMs: number,
  ): Promise<number | undefined> {
    const before = Number(await this.run(SET, keys.limit, keys.channel, limit, configured, ttlMs));
    return before > 0 ? before : undefined;
  }

  /**
   * Calls script `name`; an error reply of the script's own (not an outage) rejects with a
   * `StoreCommandError` naming it (see `scriptFailure`).
   */
  private async run(name: keyof Scripts, ...args: (string | number)[]): Promise<unknown> {
    try {
      return await this.scripts[name](...args);
    } catch (error) {
      throw scriptFailure(name, error);
    }
  }
}

/** A script's `{ a, b }` reply as two numbers. */
function pair(reply: unknown): [number, number] {
  const [a, b] = reply as [unknown, unknown];
  return [Number(a), Number(b)];
}

/** A script's `{ a, b, c }` reply as three numbers. */
function triple(reply: unknown): [number, number, number] {
  const [a, b, c] = reply as [unknown, unknown, unknown];
  return [Number(a), Number(b), Number(c)];
}

/** A failed renewal of one gauge: its own error is that gauge's outcome; anything else, an outage. */
function ownError(error: unknown): StoreCommandError {
  if (error instanceof StoreCommandError) return error;
  throw error;
}

function renewReply(reply: unknown): RenewReply {
  const [readded, limit] = pair(reply);
  return { readded, limit };
}
