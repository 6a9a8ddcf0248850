import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import type { Redis } from 'ioredis';
import { GaugeExhaustedError, GaugeUnavailableError, type Release } from '../../src';
import { RedisGaugeStore, type RedisGaugeStoreOptions } from '../../src/redis';
import { gaugeOf, Logs, until } from './support/helpers';
import { closeClient, describeWithRedis } from './support/redis-env';
import { RedisServer } from './support/redis-server';
import { runLoad } from './support/load';
import { calls } from './support/commandstats';

const describeRedis = describeWithRedis({ server: true });

describeRedis('a Redis gauge store when Redis goes away (private redis-server)', () => {
  let server: RedisServer;
  let inspect: Redis;
  const stores: RedisGaugeStore[] = [];

  const instance = (options: Partial<RedisGaugeStoreOptions> = {}) => {
    const logs = new Logs();
    const store = new RedisGaugeStore({
      redis: server.url,
      logger: logs,
      commandTimeoutMs: 300,
      recheckIntervalMs: 50,
      ...options,
    });
    stores.push(store);
    return { store, logs };
  };
  const leases = (name: string) => inspect.zcard(`backpressure:{${name}}:leases`);

  beforeAll(async () => {
    server = await RedisServer.start();
    inspect = server.client();
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    server.resume();
    await server.stop();
    await server.restart();
  });
  afterAll(async () => {
    await closeClient(inspect);
    await server.stop();
  });

  it('fails closed with 503 while Redis is down, logs the outage once, then recovers', async () => {
    const { store, logs } = instance();
    const gauge = gaugeOf(store, 'closed', { limit: 2, whenStoreDown: 'fail-closed' });
    const before = (await gauge.acquire()) as Release;

    await server.stop();
    await until(() => store.state === 'down', 'the store sees Redis go');
    for (let i = 0; i < 20; i++) {
      // Decided at once, without waiting for a timeout.
      expect(() => gauge.acquire()).toThrow(GaugeUnavailableError);
    }
    expect(() => gauge.acquire()).toThrow(/unreachable.*fails closed/);
    before(); // released during the outage: removed when Redis is back
    expect(logs.warnings).toHaveLength(1);
    expect(logs.warnings[0]).toContain(server.url);

    await server.restart();
    await until(() => store.state === 'up', 'the store sees Redis return');
    expect(logs.infos).toEqual([expect.stringContaining('reachable again')]);
    const both = [await gauge.acquire(), await gauge.acquire()];
    await expect(gauge.acquire()).rejects.toBeInstanceOf(GaugeExhaustedError);
    for (const release of both) release();
    await until(async () => (await leases('closed')) === 0, 'every slot is back');
    expect(logs.warnings).toHaveLength(1);
  });

  it('fails open to localLimit per instance; those slots are never released to Redis', async () => {
    // A long TTL: no renewal lands inside the command count below.
    const { store } = instance({ whenStoreDown: { localLimit: 1 }, leaseTtlMs: 60_000 });
    const gauge = gaugeOf(store, 'open', { limit: 3, whenStoreDown: { localLimit: 2 } });
    await until(() => store.state === 'up', 'the store connects');
    await server.stop();
    await until(() => store.state === 'down', 'the store sees Redis go');

    const local = [gauge.acquire(), gauge.acquire()] as Release[];
    expect(local.map((r) => typeof r)).toEqual(['function', 'function']);
    expect(() => gauge.acquire()).toThrow(expect.objectContaining({ reason: 'full' }));
    expect(gauge.inFlight).toBe(2);

    await server.restart();
    await until(() => store.state === 'up', 'the store sees Redis return');
    await inspect.config('RESETSTAT');
    for (const release of local) release();
    const global = [await gauge.acquire(), await gauge.acquire(), await gauge.acquire()];
    expect(await leases('open')).toBe(3);
    const stats = await inspect.info('commandstats');
    // Same connection, in order: the local releases sent nothing before these three acquires.
    expect(calls(stats, 'evalsha') + calls(stats, 'eval')).toBe(3);
    for (const release of global) release();
  });

  it('treats a Redis that stops answering as down after the command timeout; recovers when it answers', async () => {
    const { store, logs } = instance({ leaseTtlMs: 60_000 });
    const gauge = gaugeOf(store, 'hung', { limit: 5 });
    const kept = (await gauge.acquire()) as Release;
    const freed = (await gauge.acquire()) as Release;

    server.pause();
    const started = Date.now();
    await expect(gauge.acquire()).rejects.toBeInstanceOf(GaugeUnavailableError);
    expect(Date.now() - started).toBeLessThan(5000); // bounded by commandTimeoutMs, not hung
    expect(store.state).toBe('down');
    freed(); // during the outage

    server.resume();
    await until(() => store.state === 'up', 'a probe finds Redis answering again');
    // The freed lease and the timed-out attempt (executed late by Redis) are removed now, long
    // before their 60 s TTL: only the kept lease is left.
    await until(async () => (await leases('hung')) === 1, 'leftover leases are removed');
    expect(logs.warnings).toHaveLength(1);
    kept();
    await until(async () => (await leases('hung')) === 0, 'the last lease is released');
  });

  it('adds held leases back after a restart that lost them', async () => {
    const { store, logs } = instance({ leaseTtlMs: 60_000 });
    const gauge = gaugeOf(store, 'lost', { limit: 2 });
    const held = (await gauge.acquire()) as Release;
    await server.stop();
    await until(() => store.state === 'down', 'the store sees Redis go');
    await server.restart();
    await until(() => store.state === 'up', 'the store sees Redis return');

    await until(async () => (await leases('lost')) === 1, 'the held lease is counted again');
    expect(logs.warnings.some((line) => line.includes('added back'))).toBe(true);
    held();
    await until(async () => (await leases('lost')) === 0, 'the lease is released');
  });

  it.each([
    ['fail-closed', 'fail-closed' as const],
    ['fail-open', { localLimit: 1 }],
  ])(
    'keeps the %s policy under load while Redis stops and restarts, and leaves nothing stuck',
    async (_label, whenStoreDown) => {
      const limit = 4;
      const instances = [instance(), instance(), instance()];
      const gauges = instances.map(({ store }) =>
        gaugeOf(store, 'load', { limit, queue: { size: 20, timeoutMs: 2000 }, whenStoreDown }),
      );
      await until(() => instances.every(({ store }) => store.state === 'up'), 'all connect');

      const load = runLoad(gauges, { workersPerGauge: 4, workMs: 3 });
      await until(() => load.admitted >= 100, 'load runs with Redis up');
      await server.stop();
      await until(() => instances.every(({ store }) => store.state === 'down'), 'all see Redis go');
      const atOutage = { ...load.outcomes };
      await until(
        () =>
          whenStoreDown === 'fail-closed'
            ? load.outcomes.unavailable - atOutage.unavailable >= 50
            : load.admitted - atOutage.admitted >= 50,
        'load runs during the outage',
      );
      await server.restart();
      await until(
        () => instances.every(({ store }) => store.state === 'up'),
        'all see Redis return',
      );
      const afterRecovery = load.admitted;
      await until(() => load.admitted - afterRecovery >= 100, 'load runs after recovery');
      await load.stop();

      if (whenStoreDown === 'fail-closed') {
        // Measured by the work itself: never more than `limit` at once, across the outage.
        expect(load.maxConcurrent).toBeLessThanOrEqual(limit);
        expect(load.outcomes.unavailable).toBeGreaterThan(0);
      } else {
        expect(load.outcomes.unavailable).toBe(0);
        expect(load.maxConcurrent).toBeLessThanOrEqual(limit + gauges.length);
      }
      expect(load.outcomes.unexpected).toEqual([]);
      // Nothing stuck: no slot held, nobody queued, no lease left, every slot can be taken again.
      expect(gauges.map((g) => [g.inFlight, g.queued])).toEqual(gauges.map(() => [0, 0]));
      await until(async () => (await leases('load')) === 0, 'no lease is left in Redis');
      const [first, second] = [gauges[0]!, gauges[1]!]; // one per instance: three
      const all = await Promise.all(Array.from({ length: limit }, () => first.acquire()));
      await expect(second.acquire()).rejects.toBeInstanceOf(GaugeExhaustedError);
      for (const release of all) release();
      for (const { logs } of instances) {
        expect(logs.warnings).toHaveLength(1);
        expect(logs.infos).toHaveLength(1);
      }
    },
  );
});
