import { expect, it } from '@jest/globals';
import type { Release } from '../../src';
import { PriorityHeadroom } from '../../src/core/priority/priority-headroom';
import { RedisLeaseClient } from '../../src/redis/redis-lease-client';
import { PRIORITY_IDLE_MS } from '../../src/redis/lease-priority.scripts';
import { describeWithRedis, redisNow } from './support/redis-env';
import { gaugeOf } from './support/helpers';
import { sharedRedis } from './support/shared-redis';

const describeRedis = describeWithRedis();

describeRedis('Priority headroom on a fail-fast shared (Redis) gauge', () => {
  const { prefix, redis, instance } = sharedRedis('priority');
  const capOf = (name: string) => `${prefix}{${name}}:limit`;
  const keysOf = (name: string) => ({
    leases: `${prefix}{${name}}:leases`,
    limit: capOf(name),
    channel: `${prefix}{${name}}:released`,
  });

  it('keeps a slot for critical calls of any instance: one that never saw a priority sheds', async () => {
    const a = gaugeOf(instance(), 'room', { limit: 4 });
    const b = gaugeOf(instance(), 'room', { limit: 4 });
    const held: Release[] = [];
    // b's critical call makes the demand for room known to every instance.
    held.push(await b.acquire({ priority: 'critical' }));
    // a's calls name no level; with the room's size unknown (no hold time yet), one slot is kept.
    held.push(await a.acquire(), await a.acquire());
    await expect(a.acquire()).rejects.toMatchObject({ reason: 'shed-priority' });
    await expect(b.acquire({ priority: 'low' })).rejects.toMatchObject({
      reason: 'shed-priority',
    });
    held.push(await b.acquire({ priority: 'critical' })); // the slot kept
    await expect(a.acquire({ priority: 'critical' })).rejects.toMatchObject({ reason: 'full' });
    expect(a.rejected).toBe(2);
    for (const release of held) release();
  });

  it('keeps nothing, and writes nothing, while no call names a level', async () => {
    const a = gaugeOf(instance(), 'plain', { limit: 3 });
    const b = gaugeOf(instance(), 'plain', { limit: 3 });
    await a.acquire();
    await b.acquire();
    await a.acquire();
    await expect(b.acquire()).rejects.toMatchObject({ reason: 'full' });
    expect(await redis.hgetall(capOf('plain'))).toEqual({ cap: '3', configured: '3' });
  });

  it(`forgets the levels ${PRIORITY_IDLE_MS / 1000} s after the last call that named one`, async () => {
    const a = gaugeOf(instance(), 'idle', { limit: 2 });
    (await a.acquire({ priority: 'high' }))();
    await expect(Promise.resolve(a.acquire()).then(() => a.acquire())).rejects.toMatchObject({
      reason: 'shed-priority',
    });
    // As if the last named call were that long ago (Redis time).
    await redis.hset(capOf('idle'), 'pseen', (await redisNow(redis)) - PRIORITY_IDLE_MS - 1);
    await a.acquire(); // the one held before is still there: 2 of 2 now
    expect(Object.keys(await redis.hgetall(capOf('idle'))).sort()).toEqual(['cap', 'configured']);
    await expect(a.acquire()).rejects.toMatchObject({ reason: 'full' });
  });

  it('sizes the room as PriorityHeadroom does, from the levels above and the mean hold time', async () => {
    const name = 'sized';
    const client = new RedisLeaseClient(redis);
    const now = await redisNow(redis);
    // Five recent `high` arrivals, 50 ms holds, 10 slots: what one process would keep for high.
    await redis.hset(capOf(name), { cap: 10, configured: 10, p1: 5, pat: now, pseen: now });
    const local = new PriorityHeadroom();
    for (let i = 0; i < 5; i++) local.arrive(1, 0);
    local.held(50);
    const kept = local.reserveFor(3, 10);
    expect(kept).toBe(2);

    const low = { priority: { rank: 3, named: true }, meanHoldMs: 50 };
    let granted = 0;
    for (let i = 0; i < 10; i++) {
      const reply = await client.acquire(keysOf(name), `t:n:${i}`, 10, 10_000, low);
      if (!reply.granted) {
        expect(reply.reason).toBe('shed-priority');
        break;
      }
      granted++;
    }
    expect(granted).toBe(10 - kept);
    const high = { priority: { rank: 1, named: true }, meanHoldMs: 50 };
    expect(await client.acquire(keysOf(name), 't:n:high', 10, 10_000, high)).toMatchObject({
      granted: true,
    });
  });

  it('checks the key first, then the levels, then the cap (the in-memory order)', async () => {
    const options = { limit: 3, partition: { limit: 1 } };
    const a = gaugeOf(instance(), 'both', options);
    const b = gaugeOf(instance(), 'both', options);
    await b.acquire({ key: 'vip', priority: 'critical' });
    await expect(a.acquire({ key: 'vip', priority: 'critical' })).rejects.toMatchObject({
      reason: 'key-over-share',
    });
    await a.acquire({ key: 't1' });
    await expect(a.acquire({ key: 't2' })).rejects.toMatchObject({ reason: 'shed-priority' });
    await b.acquire({ key: 't3', priority: 'critical' });
    await expect(b.acquire({ key: 't4', priority: 'critical' })).rejects.toMatchObject({
      reason: 'full',
    });
  });

  it('a queue orders its own waiters: no room is kept in Redis', async () => {
    const queue = { size: 5, timeoutMs: 1000 };
    const a = gaugeOf(instance(), 'queued', { limit: 2, queue });
    await a.acquire({ priority: 'critical' });
    await a.acquire({ priority: 'low' });
    expect(await redis.hgetall(capOf('queued'))).toEqual({ cap: '2', configured: '2' });
  });
});
