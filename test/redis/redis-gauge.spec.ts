import { expect, it } from '@jest/globals';
import { GaugeAbortedError, GaugeExhaustedError, type Release } from '../../src';
import { describeWithRedis, redisNow } from './support/redis-env';
import { gaugeOf, isSettled, sleep, until, within } from './support/helpers';
import { sharedRedis } from './support/shared-redis';

const describeRedis = describeWithRedis();

describeRedis('RedisGauge on a shared Redis', () => {
  const { prefix, redis, instance } = sharedRedis('gauge');

  it('shares one limit between instances', async () => {
    const a = gaugeOf(instance(), 'shared', { limit: 3 });
    const b = gaugeOf(instance(), 'shared', { limit: 3 });
    const a1 = await a.acquire();
    await a.acquire();
    await b.acquire();

    await expect(a.acquire()).rejects.toMatchObject({
      name: 'GaugeExhaustedError',
      reason: 'full',
    });
    await expect(b.acquire()).rejects.toBeInstanceOf(GaugeExhaustedError);
    expect([a.inFlight, b.inFlight]).toEqual([2, 1]);

    a1();
    a1(); // a second call is harmless: it must not free another instance's slot
    await until(
      async () => (await redis.zcard(`${prefix}{shared}:leases`)) === 2,
      'the release lands',
    );
    const b2 = await b.acquire();
    expect(typeof b2).toBe('function');
    await expect(a.acquire()).rejects.toMatchObject({ reason: 'full' });
  });

  it('keeps a gauge in one hash-tagged sorted set (and its cap beside it), scored with Redis time', async () => {
    const store = instance({ leaseTtlMs: 5000 });
    const gauge = gaugeOf(store, 'keys', { limit: 2, queue: { size: 1, timeoutMs: 1000 } });
    const before = await redisNow(redis);
    await gauge.acquire();
    const after = await redisNow(redis);

    const key = `${prefix}{keys}:leases`;
    const cap = `${prefix}{keys}:limit`;
    expect((await redis.keys(`${prefix}*`)).sort()).toEqual([key, cap]);
    expect(await redis.hgetall(cap)).toEqual({ cap: '2', configured: '2' });
    expect(await redis.pttl(cap)).toBeGreaterThan(0); // it goes when the gauge's instances do
    expect(await redis.pttl(cap)).toBeLessThanOrEqual(5000);
    expect(gauge.leaseKey).toBe(key);
    expect(gauge.channel).toBe(`${prefix}{keys}:released`);
    const [member, score] = await redis.zrange(key, '0', '-1', 'WITHSCORES');
    expect(member?.startsWith(`${store.instanceId}:`)).toBe(true);
    expect(Number(score)).toBeGreaterThanOrEqual(before + 5000);
    expect(Number(score)).toBeLessThanOrEqual(after + 5000);
    const pttl = await redis.pttl(key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(5000);
  });

  it('serves the callers queued in one instance first in, first out', async () => {
    const gauge = gaugeOf(instance(), 'fifo', { limit: 1, queue: { size: 5, timeoutMs: 10_000 } });
    const first = (await gauge.acquire()) as Release;
    const order: number[] = [];
    const waiting = [1, 2, 3].map((n) =>
      Promise.resolve(gauge.acquire()).then((release) => {
        order.push(n);
        return release;
      }),
    );
    await until(() => gauge.queued === 3, 'three callers queue');

    let release = first;
    for (const [index, next] of waiting.entries()) {
      release();
      release = await next;
      expect(order).toEqual([1, 2, 3].slice(0, index + 1));
    }
    release();
  });

  it('wakes a caller waiting in another instance by notification, not by polling', async () => {
    // A re-check every minute: only the release notification can wake the waiter in time.
    const holder = gaugeOf(instance({ recheckIntervalMs: 60_000 }), 'wake', {
      limit: 1,
      queue: { size: 1, timeoutMs: 20_000 },
    });
    const waiter = gaugeOf(instance({ recheckIntervalMs: 60_000 }), 'wake', {
      limit: 1,
      queue: { size: 1, timeoutMs: 20_000 },
    });
    const release = await holder.acquire();
    const waiting = Promise.resolve(waiter.acquire());
    await until(() => waiter.queued === 1, 'the caller queues');
    expect(await isSettled(waiting)).toBe(false);

    release();
    const granted = await within(waiting, 5000, 'the waiter is woken by the release notification');
    expect(waiter.inFlight).toBe(1);
    granted();
  });

  it('refuses a queued caller at the queue timeout, and when the queue is full', async () => {
    const gauge = gaugeOf(instance(), 'timeout', { limit: 1, queue: { size: 1, timeoutMs: 100 } });
    const release = await gauge.acquire();
    const waiting = Promise.resolve(gauge.acquire());
    await until(() => gauge.queued === 1, 'the caller queues');
    // Decided locally, without a round trip: the queue is full.
    expect(() => gauge.acquire()).toThrow(expect.objectContaining({ reason: 'queue-full' }));
    await expect(waiting).rejects.toMatchObject({ name: 'GaugeExhaustedError', reason: 'timeout' });
    expect([gauge.queued, gauge.timedOut, gauge.rejected]).toEqual([0, 1, 1]);
    release();
  });

  it('lets an aborted caller leave the queue; the freed slot goes to the next one', async () => {
    const gauge = gaugeOf(instance(), 'abort', { limit: 1, queue: { size: 5, timeoutMs: 10_000 } });
    const release = await gauge.acquire();
    const leaving = new AbortController();
    const gone = Promise.resolve(gauge.acquire({ signal: leaving.signal }));
    const next = Promise.resolve(gauge.acquire());
    await until(() => gauge.queued === 2, 'two callers queue');

    leaving.abort();
    await expect(gone).rejects.toBeInstanceOf(GaugeAbortedError);
    expect(gauge.queued).toBe(1);
    release();
    (await within(next, 5000, 'the next caller gets the slot'))();
    expect(gauge.aborted).toBe(1);
    expect(() => gauge.acquire({ signal: AbortSignal.abort() })).toThrow(GaugeAbortedError);
  });

  it('renews held leases past their TTL, and a lease no longer renewed comes back', async () => {
    const ttl = { leaseTtlMs: 300, renewIntervalMs: 100 };
    const holderStore = instance(ttl);
    const holder = gaugeOf(holderStore, 'renew', { limit: 1 });
    const other = gaugeOf(instance(ttl), 'renew', { limit: 1 });
    await holder.acquire();

    await sleep(900); // three TTLs: only renewal keeps the lease alive
    await expect(other.acquire()).rejects.toMatchObject({ reason: 'full' });

    // The holder stops renewing without releasing, as a killed instance would.
    await holderStore.close();
    const stopped = await redisNow(redis);
    const [, expiry] = await redis.zrange(`${prefix}{renew}:leases`, '0', '-1', 'WITHSCORES');
    expect(Number(expiry) - stopped).toBeLessThanOrEqual(300);
    await until(async () => {
      try {
        (await other.acquire())();
        return true;
      } catch {
        return false;
      }
    }, 'the expired lease frees its slot');
  });

  it('runs process() in a slot and releases it however fn ends', async () => {
    const gauge = gaugeOf(instance(), 'process', { limit: 1 });
    expect(await gauge.process(() => gauge.inFlight)).toBe(1);
    await expect(gauge.process(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(gauge.inFlight).toBe(0);
    expect(gauge.admitted).toBe(2);
  });
});
