import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import type { Cluster } from 'ioredis';
import { GaugeUnavailableError, type Release } from '../../src';
import { RedisGaugeStore, type RedisGaugeStoreOptions } from '../../src/redis';
import { gaugeOf, isSettled, Logs, until, within } from './support/helpers';
import { describeWithRedis } from './support/redis-env';
import { RedisTestCluster } from './support/redis-cluster';

const describeCluster = describeWithRedis({ server: true });
const queue = { size: 10, timeoutMs: 10_000 };

/**
 * The Redis store on a real Redis Cluster (three masters started by the test): each gauge's keys
 * share one hash slot, gauges spread over the nodes, and everything a single Redis gives — the
 * limit across instances, wake-up by notification, renewal, the shared cap — holds there too.
 */
describeCluster('RedisGaugeStore on a Redis Cluster', () => {
  let cluster: RedisTestCluster;
  let admin: Cluster;
  const stores: RedisGaugeStore[] = [];
  let prefix = 0;

  const instance = (options: Partial<RedisGaugeStoreOptions> = {}) => {
    const store = new RedisGaugeStore({
      redis: admin,
      keyPrefix: `bp-cluster-${prefix}:`,
      logger: new Logs(),
      recheckIntervalMs: 60_000,
      ...options,
    });
    stores.push(store);
    return store;
  };
  const keysOf = (name: string) =>
    ['leases', 'limit', 'released'].map((kind) => `bp-cluster-${prefix}:{${name}}:${kind}`);

  beforeAll(async () => {
    cluster = await RedisTestCluster.start();
    admin = cluster.client();
    await until(() => admin.status === 'ready', 'the admin client is ready');
  }, 60_000);
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    prefix++;
  });
  afterAll(async () => {
    admin?.disconnect();
    await cluster?.stop();
  });

  it('keeps each gauge on one hash slot, and spreads gauges over the masters', async () => {
    const names = ['orders', 'search', 'reports', 'billing', 'images', 'mail'];
    const nodes = new Set<string>();
    for (const name of names) {
      const slots = await Promise.all(keysOf(name).map((key) => admin.cluster('KEYSLOT', key)));
      expect(new Set(slots).size).toBe(1);
      const slot = Number(slots[0]);
      const ranges = await admin.cluster('SLOTS');
      const owner = ranges.find(([from, to]) => slot >= from && slot <= to);
      nodes.add(String(owner?.[2]?.[1]));
    }
    expect(nodes.size).toBeGreaterThan(1);

    // Every one of those gauges, wherever its slot lives, counts its leases there.
    const store = instance();
    for (const name of names) {
      const gauge = gaugeOf(store, name, { limit: 1 });
      const release = (await gauge.acquire()) as Release;
      expect(await admin.zcard(keysOf(name)[0] ?? '')).toBe(1);
      await expect(gauge.acquire()).rejects.toMatchObject({ reason: 'full' });
      release();
      await until(async () => (await admin.zcard(keysOf(name)[0] ?? '')) === 0, 'released');
    }
  });

  it('holds one limit across instances', async () => {
    const a = gaugeOf(instance(), 'shared', { limit: 3 });
    const b = gaugeOf(instance(), 'shared', { limit: 3 });
    const held = (await Promise.all([a.acquire(), b.acquire(), a.acquire()])) as Release[];
    await expect(b.acquire()).rejects.toMatchObject({ reason: 'full' });
    await expect(a.acquire()).rejects.toMatchObject({ reason: 'full' });
    held[0]?.();
    await until(async () => (await admin.zcard(keysOf('shared')[0] ?? '')) === 2, 'one released');
    const again = (await b.acquire()) as Release;
    for (const release of [again, ...held.slice(1)]) release();
  });

  it("wakes another instance's waiter by notification (no re-check for a minute)", async () => {
    const a = gaugeOf(instance(), 'wake', { limit: 1, queue });
    const b = gaugeOf(instance(), 'wake', { limit: 1, queue });
    const held = (await a.acquire()) as Release;
    const waiting = Promise.resolve(b.acquire());
    await until(() => b.queued === 1, 'b waits');
    expect(await isSettled(waiting)).toBe(false);
    held();
    const granted = await within(waiting, 3_000, 'the waiter on b is served');
    granted();
  });

  it('renews the leases of gauges on different nodes, one call per gauge', async () => {
    const store = instance({ leaseTtlMs: 300, renewIntervalMs: 50 });
    const names = ['renew-a', 'renew-b', 'renew-c', 'renew-d'];
    const held = await Promise.all(
      names.map(async (name) => (await gaugeOf(store, name, { limit: 2 }).acquire()) as Release),
    );
    const afterTwoTtls = Date.now() + 700;
    await until(() => Date.now() > afterTwoTtls, 'two lease TTLs passed');
    for (const name of names) expect(await admin.zcard(keysOf(name)[0] ?? '')).toBe(1);
    for (const release of held) release();
  });

  it('renews the other gauges when one gauge’s renewal fails with a script error', async () => {
    const logs = new Logs();
    // A cap set at run time: the healthy gauge's bootstrap sync adopts it, and says so (then only
    // renewals can tell it the cap set below).
    await admin.hset(keysOf('healthy')[1] ?? '', 'cap', 3, 'configured', 2);
    const store = instance({ leaseTtlMs: 1000, renewIntervalMs: 30, logger: logs });
    const broken = gaugeOf(store, 'broken', { limit: 2 });
    const healthy = gaugeOf(store, 'healthy', { limit: 2 });
    await until(() => logs.warnings.some((line) => line.includes('set at run time')), 'synced');
    expect(healthy.limit).toBe(3);
    await admin.del(broken.keys.limit);
    await admin.set(broken.keys.limit, 'x'); // every renewal of `broken` fails now
    const renewals = () => logs.warnings.filter((line) => line.includes('backpressureRenew'));
    await until(() => renewals().length > 0, 'the failed renewal is logged');

    await admin.hset(healthy.keys.limit, 'cap', 4);
    await until(() => healthy.limit === 4, 'the healthy gauge follows the stored cap', 3000);
    expect(renewals()).toHaveLength(1);
    expect(store.state).toBe('up');
    expect(logs.warnings.filter((line) => line.includes('unreachable'))).toEqual([]);
    await admin.del(broken.keys.limit);
  });

  it('stores the cap on the cluster, so setLimit on one instance reaches another', async () => {
    const storeA = instance();
    const a = gaugeOf(storeA, 'cap', { limit: 1 });
    const b = gaugeOf(instance(), 'cap', { limit: 1 });
    ((await b.acquire()) as Release)();
    await until(() => storeA.state === 'up', 'a is up');
    await a.setLimit(2);
    const held = (await Promise.all([b.acquire(), b.acquire()])) as Release[];
    expect(b.limit).toBe(2);
    await expect(a.acquire()).rejects.toMatchObject({ reason: 'full' });
    for (const release of held) release();
  });

  it('holds a per-key cap across instances on the cluster, renews and frees the per-key sets', async () => {
    const options = { limit: 10, partition: { limit: 2, maxKeys: 2 } };
    const a = gaugeOf(instance({ leaseTtlMs: 300, renewIntervalMs: 50 }), 'keyed', options);
    const b = gaugeOf(instance({ leaseTtlMs: 300, renewIntervalMs: 50 }), 'keyed', options);
    const keys = ['t{1}', 'u}', 'v', 'w']; // v and w: past maxKeys, overflow partitions
    const held: Release[] = [];
    for (const key of keys) {
      held.push((await a.acquire({ key })) as Release, (await b.acquire({ key })) as Release);
      await expect(a.acquire({ key })).rejects.toMatchObject({ reason: 'key-over-share' });
    }
    const tag = `bp-cluster-${prefix}:{keyed}`;
    const slots = new Set(
      await Promise.all(
        [`${tag}:leases`, `${tag}:leases:keys`, `${tag}:leases:k:k:t{1}`].map((key) =>
          admin.cluster('KEYSLOT', key),
        ),
      ),
    );
    expect(slots.size).toBe(1);
    const afterTwoTtls = Date.now() + 700;
    await until(() => Date.now() > afterTwoTtls, 'two lease TTLs passed');
    expect(await admin.zcard(`${tag}:leases`)).toBe(8);
    expect(await admin.zrange(`${tag}:leases:keys`, '0', '-1')).toEqual(['k:t{1}', 'k:u}']);
    await expect(b.acquire({ key: 'u}' })).rejects.toMatchObject({ reason: 'key-over-share' });
    for (const release of held) release();
    await until(
      async () =>
        (await admin.exists(`${tag}:leases`, `${tag}:leases:keys`, `${tag}:leases:fixed`)) === 0,
      'every set is gone',
    );
  });

  // Last: it stops the cluster.
  it('fails fast when the cluster goes away: refused, never hung, and at once once it counts as down', async () => {
    const store = instance({ commandTimeoutMs: 200 });
    const gauge = gaugeOf(store, 'outage', { limit: 2 });
    ((await gauge.acquire()) as Release)();
    await cluster.stop();
    // A race with the kill, decided by the machine's load: the store may have seen its
    // connections close already (then acquire() throws at once, synchronously) or not (then the
    // command fails on the closed connection, after ioredis's own failover retries). Either way a
    // refusal, never a hang: the bound only turns a hang into a failure, it is not a timing claim.
    const first = (async () => gauge.acquire())();
    await expect(within(first, 15_000, 'a refusal')).rejects.toMatchObject({
      name: 'GaugeUnavailableError',
    });
    // Once the store counts as down (its connection closed), a caller is refused synchronously:
    // no command is sent, nothing waits.
    // (ioredis's Cluster reports the close after its slot refresh fails: 0.1 to ~3.5 s here.)
    await until(() => store.state === 'down', 'the store counts as down', 20_000);
    let refusal: unknown;
    try {
      void gauge.acquire(); // must throw before returning anything
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(GaugeUnavailableError);
    expect(refusal).toMatchObject({ gauge: 'outage' });
  }, 60_000);
});
