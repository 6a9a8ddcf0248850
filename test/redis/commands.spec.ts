import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import type { Redis } from 'ioredis';
import { type Release } from '../../src';
import { RedisGaugeStore, type RedisGaugeStoreOptions } from '../../src/redis';
import { calls, commandStat } from './support/commandstats';
import { gaugeOf, Logs, sleep } from './support/helpers';
import { closeClient, describeWithRedis } from './support/redis-env';
import { RedisServer } from './support/redis-server';

const describeRedis = describeWithRedis({ server: true });

/** Counted on a private server, so nobody else's commands are in the figures. */
describeRedis('Redis commands a gauge sends (INFO commandstats, private redis-server)', () => {
  let server: RedisServer;
  let inspect: Redis;
  const stores: RedisGaugeStore[] = [];

  const instance = (options: Partial<RedisGaugeStoreOptions> = {}) => {
    // Long TTL: no renewal runs during a measurement unless a test asks for it.
    const store = new RedisGaugeStore({
      redis: server.url,
      logger: new Logs(),
      leaseTtlMs: 60_000,
      ...options,
    });
    stores.push(store);
    return store;
  };
  const stats = () => inspect.info('commandstats');

  beforeAll(async () => {
    server = await RedisServer.start();
    inspect = server.client();
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    await inspect.flushall();
  });
  afterAll(async () => {
    await closeClient(inspect);
    await server.stop();
  });

  it.each([
    ['fail fast', {}],
    ['with a queue', { queue: { size: 10, timeoutMs: 1000 } }],
  ])(
    'costs two commands per admitted request (%s): one to acquire, one to release',
    async (_label, queue) => {
      const gauge = gaugeOf(instance(), 'two', { limit: 5, ...queue });
      (await gauge.acquire())(); // the first call on a connection sends the script itself (EVAL)
      await sleep(20);
      await inspect.config('RESETSTAT');

      for (let i = 0; i < 50; i++) {
        const release = await gauge.acquire();
        release();
      }
      await gauge.process(() => undefined); // waits for nothing but lets the last release land
      const after = await stats();
      expect(calls(after, 'evalsha')).toBe(102);
      expect(calls(after, 'eval')).toBe(0);
      expect(calls(after, 'publish')).toBe(0); // nobody was waiting: no notification
    },
  );

  it('runs a script flushed from Redis again (EVALSHA, NOSCRIPT, then EVAL)', async () => {
    const gauge = gaugeOf(instance(), 'noscript', { limit: 2 });
    (await gauge.acquire())();
    await inspect.script('FLUSH');
    await inspect.config('RESETSTAT');

    const release = (await gauge.acquire()) as Release;
    expect(gauge.inFlight).toBe(1);
    expect(await inspect.zcard('backpressure:{noscript}:leases')).toBe(1);
    release();
    await gauge.process(() => undefined);
    const after = await stats();
    expect(commandStat(after, 'evalsha').errors).toBeGreaterThanOrEqual(1); // NOSCRIPT
    expect(calls(after, 'eval')).toBeGreaterThanOrEqual(1); // the script sent again
    expect(await inspect.zcard('backpressure:{noscript}:leases')).toBe(0);
  });

  it('publishes on release only from a full gauge with waiting in use', async () => {
    const queued = gaugeOf(instance(), 'notify', { limit: 1, queue: { size: 1, timeoutMs: 5000 } });
    const held = (await queued.acquire()) as Release;
    await inspect.config('RESETSTAT');
    const waiting = Promise.resolve(queued.acquire());
    held(); // the gauge was full: one PUBLISH, in the same script as the release
    const next = await waiting;
    expect(calls(await stats(), 'publish')).toBe(1);
    next(); // also from a full gauge: one more PUBLISH, which must land before the next count
    while ((await inspect.zcard('backpressure:{notify}:leases')) !== 0) await sleep(5);

    const failFast = gaugeOf(instance(), 'no-notify', { limit: 1 });
    await inspect.config('RESETSTAT');
    for (let i = 0; i < 5; i++) (await failFast.acquire())(); // full each time, nobody can wait
    await failFast.process(() => undefined);
    expect(calls(await stats(), 'publish')).toBe(0);
  });

  it('renews all leases of an instance with one call per interval, whatever their number', async () => {
    const store = instance({ leaseTtlMs: 1500, renewIntervalMs: 100 });
    const many = gaugeOf(store, 'renew-a', { limit: 20 });
    const few = gaugeOf(store, 'renew-b', { limit: 20 });
    const held = [
      ...(await Promise.all(Array.from({ length: 15 }, () => many.acquire()))),
      ...(await Promise.all(Array.from({ length: 2 }, () => few.acquire()))),
    ] as Release[];
    await inspect.config('RESETSTAT');
    const started = Date.now();
    await sleep(600);
    const after = await stats();
    const elapsed = Date.now() - started;

    // (The first renewal on a connection sends the script itself: EVAL, then EVALSHA.)
    const scripts = calls(after, 'evalsha') + calls(after, 'eval');
    // One script per gauge per interval (sent together as one pipeline): never one per lease.
    expect(scripts % 2).toBe(0);
    expect(scripts).toBeGreaterThanOrEqual(2);
    expect(scripts / 2).toBeLessThanOrEqual(Math.ceil(elapsed / 100) + 1);
    expect(calls(after, 'zadd')).toBe(scripts); // each renewal re-scores all its leases in one ZADD
    for (const release of held) release();
  });
});
