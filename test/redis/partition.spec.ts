import { expect, it, jest } from '@jest/globals';

import type { GaugeOptions, Release } from '../../src';
import { RedisLeaseClient } from '../../src/redis/redis-lease-client';
import { keyedLeaseId, partitionToken } from '../../src/core/shared/shared-partitions';
import { describeWithRedis } from './support/redis-env';
import { gaugeOf, until, within } from './support/helpers';
import { keySlot } from './support/key-slot';
import { sharedRedis } from './support/shared-redis';

const describeRedis = describeWithRedis();

describeRedis('Per-key fairness on a shared (Redis) gauge', () => {
  const { prefix, redis, instance, leasesOf, leftovers } = sharedRedis('partition');
  /** The same gauge on two instances. */
  const pair = (name: string, options: GaugeOptions) =>
    [gaugeOf(instance(), name, options), gaugeOf(instance(), name, options)] as const;

  it('holds partition.limit for a key across instances, while other keys get slots', async () => {
    const [a, b] = pair('cap', { limit: 10, partition: { limit: 2 } });
    const held: Release[] = [
      await a.acquire({ key: 'tenant' }),
      await b.acquire({ key: 'tenant' }),
    ];
    await expect(a.acquire({ key: 'tenant' })).rejects.toMatchObject({ reason: 'key-over-share' });
    await expect(b.acquire({ key: 'tenant' })).rejects.toMatchObject({ reason: 'key-over-share' });
    held.push(await a.acquire({ key: 'other' }), await b.acquire({ key: 'other' }));
    expect(a.rejected + b.rejected).toBe(2);

    held[0]!(); // a's lease of tenant goes back: tenant may take one more, on either instance
    await until(async () => (await redis.zcard(leasesOf('cap'))) === 3, 'the release lands');
    held.push(await b.acquire({ key: 'tenant' }));
    await expect(a.acquire({ key: 'tenant' })).rejects.toMatchObject({ reason: 'key-over-share' });

    for (const release of held) release();
    await Promise.all([a.idle(), b.idle()]);
    await until(async () => (await leftovers('cap')).length === 0, 'every set is gone');
  });

  it('a fraction as partition.limit is a share of the cap in Redis', async () => {
    const [a, b] = pair('fraction', { limit: 4, partition: { limit: 0.5 } });
    await a.acquire({ key: 't' });
    await b.acquire({ key: 't' });
    await expect(a.acquire({ key: 't' })).rejects.toMatchObject({ reason: 'key-over-share' });
    await a.setLimit(8); // ⌈8 × 0.5⌉ = 4 per key now
    await b.acquire({ key: 't' });
    await a.acquire({ key: 't' });
    await expect(b.acquire({ key: 't' })).rejects.toMatchObject({ reason: 'key-over-share' });
  });

  it('refuses a key over its fair share first when the room left is kept for others', async () => {
    const [a, b] = pair('share', { limit: 4, partition: {} });
    // Alone, a key's share is ⌈4 / 2⌉ = 2; beyond it, one slot is kept for keys under theirs.
    await a.acquire({ key: 'noisy' });
    await b.acquire({ key: 'noisy' });
    await a.acquire({ key: 'noisy' }); // over its share, 2 free > 1 kept
    await expect(b.acquire({ key: 'noisy' })).rejects.toMatchObject({ reason: 'key-over-share' });
    await expect(a.acquire({ key: 'noisy' })).rejects.toMatchObject({ reason: 'key-over-share' });
    // The slot kept goes to another key, on any instance.
    await b.acquire({ key: 'quiet' });
    // Full now: the quiet key (under its share) is told `full`, the noisy one `key-over-share`.
    await expect(a.acquire({ key: 'quiet' })).rejects.toMatchObject({ reason: 'full' });
    await expect(b.acquire({ key: 'noisy' })).rejects.toMatchObject({ reason: 'key-over-share' });
    const fairness = await redis.hgetall(`${prefix}{share}:limit`);
    expect(Number(fairness.under)).toBeGreaterThan(0); // arrivals under share, decayed
  });

  it('frees the key of a dead instance once its leases expire, from every set', async () => {
    const name = 'dead';
    const keys = { leases: leasesOf(name), limit: `${prefix}{${name}}:limit`, channel: 'x' };
    // A "dead instance": one keyed lease of 300 ms, never renewed nor released.
    const dead = new RedisLeaseClient(redis);
    const token = partitionToken('tenant');
    const partition = {
      token,
      id: keyedLeaseId('dead:n:1', token),
      overflowToken: 'o:1',
      overflowId: keyedLeaseId('dead:n:1', 'o:1'),
      limit: 1,
      maxKeys: 100,
      fair: true,
    };
    const reply = await dead.acquire(keys, 'dead:n:1', 5, 300, { partition, meanHoldMs: 0 });
    expect(reply).toMatchObject({ granted: true, id: 'dead:n:1#k:tenant#8' });
    expect(await redis.zrange(`${keys.leases}:keys`, '0', '-1')).toEqual(['k:tenant']);

    const gauge = gaugeOf(instance(), name, { limit: 5, partition: { limit: 1 } });
    await expect(gauge.acquire({ key: 'tenant' })).rejects.toMatchObject({
      reason: 'key-over-share',
    });
    await until(async () => (await leftovers(name)).length === 0, 'the dead lease expires', 3000);
    const release = await gauge.acquire({ key: 'tenant' });
    release();
    await gauge.idle();
    await until(async () => (await leftovers(name)).length === 0, 'nothing is left');
  });

  it('a renewal adds keyed leases Redis lost back to their key, so the key cap holds again', async () => {
    const name = 'lost';
    const options = { limit: 5, partition: { limit: 1 } };
    const a = gaugeOf(instance({ renewIntervalMs: 50 }), name, options);
    const b = gaugeOf(instance({ renewIntervalMs: 50 }), name, options);
    const held = await a.acquire({ key: 'tenant' });
    await redis.del(...(await redis.keys(`${prefix}{${name}}*`))); // Redis "restarted empty"
    await until(
      async () => (await redis.zcard(`${leasesOf(name)}:k:k:tenant`)) === 1,
      'the renewal re-adds the lease to its key',
    );
    expect(await redis.zrange(`${leasesOf(name)}:keys`, '0', '-1')).toEqual(['k:tenant']);
    await expect(b.acquire({ key: 'tenant' })).rejects.toMatchObject({ reason: 'key-over-share' });
    held();
    await a.idle();
    await until(async () => (await leftovers(name)).length === 0, 'nothing is left');
  });

  it('past maxKeys, new keys share overflow partitions until those are idle again', async () => {
    const name = 'overflow';
    const [a, b] = pair(name, { limit: 20, partition: { maxKeys: 2, limit: 1 } });
    const first = await a.acquire({ key: 'k1' });
    await b.acquire({ key: 'k2' });
    const third = await a.acquire({ key: 'k3' }); // a third key: an overflow partition
    expect(await redis.zrange(`${leasesOf(name)}:keys`, '0', '-1')).toEqual(['k:k1', 'k:k2']);
    const spilled = await redis.zrange(`${leasesOf(name)}:fixed`, '0', '-1');
    expect(spilled).toHaveLength(1);
    expect(spilled[0]).toMatch(/^o:\d+$/);
    const ids = await redis.zrange(leasesOf(name), '0', '-1');
    expect(ids.filter((id) => id.endsWith(`#${spilled[0]}#${spilled[0]!.length}`))).toHaveLength(1);
    // The overflow partition has its own cap: k3 again is refused (its partition holds 1).
    await expect(b.acquire({ key: 'k3' })).rejects.toMatchObject({ reason: 'key-over-share' });

    first(); // k1 leaves, but an overflow partition is live: new keys still go there
    await until(
      async () => (await redis.zcard(`${leasesOf(name)}:keys`)) === 1,
      'k1 leaves the live keys',
    );
    const fourth = await b.acquire({ key: 'k4' });
    expect(await redis.zrange(`${leasesOf(name)}:keys`, '0', '-1')).toEqual(['k:k2']);

    third(); // once every overflow partition is idle, new keys are tracked one by one again
    fourth();
    await until(async () => (await redis.zcard(`${leasesOf(name)}:fixed`)) === 0, 'k3, k4 leave');
    await a.acquire({ key: 'k5' });
    expect(await redis.zrange(`${leasesOf(name)}:keys`, '0', '-1')).toEqual(['k:k2', 'k:k5']);
  });

  it('takes any key ({ } in it, odd bytes, lone surrogates, very long) in the gauge’s hash slot', async () => {
    const name = 'odd{tag}';
    const odd = ['{x}', '}{', '', 'a}b{c', 'ключ', '\u0000\u0001', '\uD800', 'x'.repeat(300), '#9'];
    const [a, b] = pair(name, { limit: 50, partition: { limit: 1 } });
    const held: Release[] = [];
    for (const key of odd) {
      held.push(await a.acquire({ key }));
      await expect(b.acquire({ key })).rejects.toMatchObject({ reason: 'key-over-share' });
    }
    // A key and its look-alikes are distinct partitions.
    held.push(await b.acquire({ key: 'x'.repeat(301) }), await b.acquire({ key: '\uDC00' }));
    const keys = await redis.keys(`${prefix}{${name}}*`);
    const slot = keySlot(leasesOf(name));
    expect(keys.length).toBeGreaterThan(odd.length);
    for (const key of keys) expect(keySlot(key)).toBe(slot);
    expect(await redis.zcard(`${leasesOf(name)}:keys`)).toBe(odd.length + 2);

    for (const release of held) release();
    await Promise.all([a.idle(), b.idle()]);
    await until(async () => (await leftovers(name)).length === 0, 'every set is gone');
  });

  it('in a queue, serves waiters under their key and refuses those whose key reached its cap', async () => {
    const options = { limit: 2, queue: { size: 5, timeoutMs: 2000 }, partition: { limit: 1 } };
    const [a, b] = pair('queued', options);
    const t1 = await a.acquire({ key: 't' });
    await expect(b.acquire({ key: 't' })).rejects.toMatchObject({ reason: 'key-over-share' });
    const u1 = await b.acquire({ key: 'u' });
    const waitingT = a.acquire({ key: 't' }); // full: waits
    const waitingV = a.acquire({ key: 'v' });
    // u goes: the slot is for a's oldest waiter, of key t, which holds its cap on a: refused.
    u1();
    await expect(waitingT).rejects.toMatchObject({ reason: 'key-over-share' });
    const v = await waitingV;
    expect(a.queued).toBe(0);
    t1();
    v();
    await Promise.all([a.idle(), b.idle()]);
    await until(async () => (await leftovers('queued')).length === 0, 'every set is gone');
  });
  it('codel turning standing at a hand-off: the lease is taken under the key of the waiter served', async () => {
    // Fake clock: CoDel's switch to newest first is foreseen at the hand-off, before the store is
    // asked, so the slot is counted under the key of the waiter that gets it.
    let clock = -1000; // the holder may wait for the first connection: a hand-off of its own
    const now = jest.spyOn(performance, 'now').mockImplementation(() => clock);
    try {
      const gauge = gaugeOf(instance(), 'codel-keys', {
        limit: 1,
        queue: { size: 5, timeoutMs: 60_000, discipline: 'codel', targetMs: 5, intervalMs: 100 },
        partition: { limit: 1 },
      });
      const slot = (key: string) => Promise.resolve(gauge.acquire({ key }));
      const holder = await within(slot('x'), 3000, 'holder');
      clock = 0;
      const queued = (n: number) => until(() => gauge.queued === n, `${n} waiting`);
      const first = slot('y');
      await queued(1); // each joins the queue at its time (after the store said full)
      clock = 2;
      const oldest = slot('a'); // waits on: the queue never drains
      await queued(2);
      clock = 10;
      holder(); // y served after 10 ms: the interval opens with a late wait
      const y = await within(first, 3000, 'first');
      clock = 30;
      const newest = slot('b');
      await queued(2);
      clock = 200; // the whole interval saw no wait under target: standing, newest first
      y();
      const b = await within(newest, 3000, 'newest');
      const held = gauge.heldLeaseIds();
      expect(held).toHaveLength(1);
      expect(held[0]).toContain(`#${partitionToken('b')}#`);
      expect(gauge.queued).toBe(1);
      b();
      (await within(oldest, 3000, 'oldest'))();
      await gauge.idle();
      await until(async () => (await leftovers('codel-keys')).length === 0, 'every set is gone');
    } finally {
      now.mockRestore();
    }
  });
});
