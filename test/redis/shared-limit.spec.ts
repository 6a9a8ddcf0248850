import { expect, it } from '@jest/globals';
import { GaugeConfigError, GaugeUnavailableError, type GaugeEvent, type Release } from '../../src';
import type { RedisGaugeStore } from '../../src/redis';
import type { SharedGauge } from '../../src/core/shared/shared-gauge';
import { gaugeOf, isSettled, Logs, until, within } from './support/helpers';
import { describeWithRedis } from './support/redis-env';
import { sharedRedis } from './support/shared-redis';

const describeRedis = describeWithRedis();
const queue = { size: 10, timeoutMs: 10_000 };

/** The limit-changed events of a gauge, as `[from, to]`. */
function limitChanges(gauge: SharedGauge): [number, number][] {
  const changes: [number, number][] = [];
  gauge.subscribe((event: GaugeEvent) => {
    if (event.type === 'limit-changed') changes.push([event.from, event.to]);
  });
  return changes;
}

describeRedis('setLimit on a Redis gauge: one cap in Redis for every instance', () => {
  // One "instance": its own store and connections. Wake-ups come from notifications only.
  const { prefix, redis, instance } = sharedRedis('limit', {
    store: { recheckIntervalMs: 60_000 },
  });
  const capOf = (name: string) => redis.hgetall(`${prefix}{${name}}:limit`);
  const up = (store: RedisGaugeStore) => until(() => store.state === 'up', 'the store is up');

  it('stores the cap in Redis, so a setLimit on one instance holds on another', async () => {
    const storeA = instance();
    const a = gaugeOf(storeA, 'reach', { limit: 2 });
    const b = gaugeOf(instance(), 'reach', { limit: 2 });
    const seenByB = limitChanges(b);
    ((await b.acquire()) as Release)(); // connected, the cap stored
    await up(storeA); // a setLimit before a's store is up is refused (tested below)
    await a.setLimit(4);
    expect(a.limit).toBe(4);
    expect(await capOf('reach')).toEqual({ cap: '4', configured: '2' });

    const held = (await Promise.all([1, 2, 3, 4].map(() => b.acquire()))) as Release[];
    expect(b.limit).toBe(4); // learnt from its first acquire's reply
    expect(seenByB).toEqual([[2, 4]]);
    await expect(b.acquire()).rejects.toMatchObject({ reason: 'full' });
    for (const release of held) release();
  });

  it('hands the new slots to waiters on every instance at once when raised', async () => {
    const a = gaugeOf(instance(), 'raise', { limit: 1, queue });
    const b = gaugeOf(instance(), 'raise', { limit: 1, queue });
    const held = (await a.acquire()) as Release;
    const waitingA = Promise.resolve(a.acquire());
    const waitingB = Promise.resolve(b.acquire());
    await until(() => a.queued === 1 && b.queued === 1, 'one waiter on each instance');
    expect(await isSettled(waitingA)).toBe(false);

    await a.setLimit(3); // the re-check is a minute away: only the announcement can wake b
    const [ra, rb] = await within(Promise.all([waitingA, waitingB]), 2_000, 'both waiters served');
    expect(await redis.zcard(`${prefix}{raise}:leases`)).toBe(3);
    expect(b.limit).toBe(3);
    for (const release of [held, ra, rb]) release();
  });

  it('never revokes a held slot when lowered: the count drains under the new cap', async () => {
    const a = gaugeOf(instance(), 'lower', { limit: 3 });
    const b = gaugeOf(instance(), 'lower', { limit: 3 });
    const [a1, a2] = await Promise.all([a.acquire(), a.acquire()]);
    const b1 = (await b.acquire()) as Release;
    await b.setLimit(1);
    expect([a.inFlight, b.inFlight]).toEqual([2, 1]); // still held
    expect(await redis.zcard(`${prefix}{lower}:leases`)).toBe(3);

    await expect(a.acquire()).rejects.toMatchObject({ reason: 'full' });
    expect(a.limit).toBe(1);
    const count = () => redis.zcard(`${prefix}{lower}:leases`);
    a1();
    await until(async () => (await count()) === 2, 'a release lands');
    await expect(a.acquire()).rejects.toMatchObject({ reason: 'full' }); // 2 held, cap 1
    a2();
    b1();
    await until(async () => (await count()) === 0, 'the last releases land');
    const only = (await a.acquire()) as Release;
    await expect(b.acquire()).rejects.toMatchObject({ reason: 'full' });
    only();
  });

  it('validates the new limit synchronously and leaves the cap alone', async () => {
    const gauge = gaugeOf(instance(), 'valid', { limit: 2 });
    ((await gauge.acquire()) as Release)();
    const noPrototype = Object.create(null) as number; // String() throws on it
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity, '3' as unknown as number, noPrototype]) {
      expect(() => gauge.setLimit(bad)).toThrow(GaugeConfigError);
    }
    expect(() => gauge.setLimit(0)).toThrow(
      /Gauge "valid": setLimit\(\): a limit must be an integer/,
    );
    expect(gauge.limit).toBe(2);
    expect(await capOf('valid')).toEqual({ cap: '2', configured: '2' });
  });

  it('rejects clearly while the store is not connected or unreachable', async () => {
    const connecting = gaugeOf(instance(), 'early', { limit: 2 });
    await expect(connecting.setLimit(3)).rejects.toThrow(
      'Gauge "early": setLimit(3) not applied, its Redis store is not connected yet; the limit stays 2',
    );
    const down = instance({ redis: 'redis://127.0.0.1:1', commandTimeoutMs: 200 });
    const gauge = gaugeOf(down, 'down', { limit: 2 });
    await until(() => down.state === 'down', 'the store is down');
    const refused = gauge.setLimit(3);
    await expect(refused).rejects.toBeInstanceOf(GaugeUnavailableError);
    await expect(refused).rejects.toThrow(
      /setLimit\(3\) not applied, its Redis store is unreachable/,
    );
    expect(gauge.limit).toBe(2);
  });

  it('warns at bootstrap when the stored cap is not the configured limit, naming both', async () => {
    const first = instance();
    const a = gaugeOf(first, 'boot', { limit: 5 });
    const seenByA = limitChanges(a);
    await up(first);
    await until(async () => (await capOf('boot')).cap === '5', 'the first instance stores 5');

    // Another configured limit: the newest configuration wins, for every instance.
    const logs = new Logs();
    const b = gaugeOf(instance({ logger: logs }), 'boot', { limit: 8 });
    await until(() => logs.warnings.length === 1, 'the mismatch is reported');
    expect(logs.warnings[0]).toBe(
      'Gauge "boot": configured with limit 8 here, but the cap stored in Redis is 5 (from another ' +
        'instance configured with 5); the newest configuration wins: the cap is now 8 for every instance',
    );
    expect(b.limit).toBe(8);
    ((await a.acquire()) as Release)();
    expect(a.limit).toBe(8);
    expect(seenByA).toEqual([[5, 8]]);

    // A cap set at run time survives an instance (re)started with the same configuration.
    await b.setLimit(3);
    const again = new Logs();
    const c = gaugeOf(instance({ logger: again }), 'boot', { limit: 8 });
    await until(() => again.warnings.length === 1, 'the run-time cap is reported');
    expect(again.warnings[0]).toMatch(
      /^Gauge "boot": configured with limit 8, but the cap stored in Redis is 3 \(set at run time with setLimit\); it stays in effect/,
    );
    expect(c.limit).toBe(3);
    expect(logs.warnings).toHaveLength(1); // once, at bootstrap, not per request
  });

  it('keeps the cap while an instance of the gauge runs, and drops it after the last one', async () => {
    const store = instance({ leaseTtlMs: 300, renewIntervalMs: 50 });
    const gauge = gaugeOf(store, 'life', { limit: 2 });
    await up(store);
    await gauge.setLimit(6);
    const key = `${prefix}{life}:limit`;
    const renewedTwice = Date.now() + 700; // over two TTLs: alive only because it is renewed
    await until(() => Date.now() > renewedTwice, 'two TTLs passed');
    expect(await capOf('life')).toEqual({ cap: '6', configured: '2' });
    await store.close();
    await until(async () => (await redis.exists(key)) === 0, 'the cap expires');
  });
});
