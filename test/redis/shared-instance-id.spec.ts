import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { GaugeExhaustedError, type Release } from '../../src';
import { RedisGaugeStore, type RedisGaugeStoreOptions } from '../../src/redis';
import { RedisLeaseClient } from '../../src/redis/redis-lease-client';
import { gaugeOf, Logs, until } from './support/helpers';
import { runLoad } from './support/load';
import { RedisServer } from './support/redis-server';
import {
  closeClient,
  deleteKeys,
  describeWithRedis,
  REDIS_URL,
  redisNow,
  uniquePrefix,
} from './support/redis-env';
import { sharedRedis } from './support/shared-redis';
import { compileLibrary, maxOverlap, startReplica, type Replica } from './support/replicas';

/*
 * `instanceId` is only a readable label: stores given the same one (two in one process, replicas
 * configured with a fixed id, a pod restarted under its old name while its predecessor's leases are
 * still in Redis) must never share a lease, so the limit holds and nobody releases or renews
 * another's slot.
 */

const describeRedis = describeWithRedis();

/** Fulfilled results of `attempts`, as releases; refusals must be "full". */
async function granted(attempts: (Release | Promise<Release>)[]): Promise<Release[]> {
  const results = await Promise.allSettled(attempts.map((attempt) => Promise.resolve(attempt)));
  for (const result of results) {
    if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(GaugeExhaustedError);
  }
  return results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
}

/** The members of a lease set with their scores (expiries), as a map. */
async function leases(redis: Redis, key: string): Promise<Map<string, number>> {
  const flat = await redis.zrange(key, '0', '-1', 'WITHSCORES');
  const map = new Map<string, number>();
  for (let i = 0; i < flat.length; i += 2) map.set(flat[i]!, Number(flat[i + 1]));
  return map;
}

describeRedis('two stores in one process given the same instanceId', () => {
  const { prefix, redis, instance } = sharedRedis('same-id', { store: { instanceId: 'pod-0' } });

  it('admits no more than the limit between them', async () => {
    const a = gaugeOf(instance(), 'hold', { limit: 5 });
    const b = gaugeOf(instance(), 'hold', { limit: 5 });
    const key = `${prefix}{hold}:leases`;
    const fromA = await granted([a.acquire(), a.acquire(), a.acquire()]);
    expect(fromA).toHaveLength(3);

    // As many as it can get: only the 2 slots left, however its lease ids are counted.
    const fromB = await granted(Array.from({ length: 5 }, () => b.acquire()));
    expect(fromB).toHaveLength(2);
    expect(await redis.zcard(key)).toBe(5);
    expect(a.inFlight + b.inFlight).toBe(5);
    await expect(a.acquire()).rejects.toMatchObject({ reason: 'full' });
    await expect(b.acquire()).rejects.toMatchObject({ reason: 'full' });
    for (const release of [...fromA, ...fromB]) release();
  });

  it("never frees the other's leases when releasing its own", async () => {
    const a = gaugeOf(instance(), 'release', { limit: 4 });
    const b = gaugeOf(instance(), 'release', { limit: 4 });
    const key = `${prefix}{release}:leases`;
    const fromA = await granted([a.acquire(), a.acquire()]);
    const before = await leases(redis, key);
    const fromB = await granted([b.acquire(), b.acquire()]);
    expect([fromA.length, fromB.length]).toEqual([2, 2]);
    const ofB = [...(await leases(redis, key)).keys()].filter((id) => !before.has(id));
    expect(ofB).toHaveLength(2);

    for (const release of fromA) {
      release();
      release(); // a repeated call is harmless too
    }
    // Sent after the releases on the same connection: once answered, the releases are applied.
    const again = await granted([a.acquire(), a.acquire()]);
    expect(again).toHaveLength(2);

    const now = await leases(redis, key);
    expect(now.size).toBe(4);
    for (const id of ofB) expect(now.has(id)).toBe(true);
    expect(b.inFlight).toBe(2);
    await expect(a.acquire()).rejects.toMatchObject({ reason: 'full' });
    for (const release of [...again, ...fromB]) release();
  });

  it('keeps the limit under load from both, renewal included', async () => {
    const options = { limit: 5, queue: { size: 100, timeoutMs: 20_000 } };
    const gauges = [1, 2].map(() =>
      gaugeOf(instance({ leaseTtlMs: 1000, renewIntervalMs: 20 }), 'load', options),
    );
    const load = runLoad(gauges, { workersPerGauge: 8, workMs: 5 });
    try {
      await until(() => load.admitted >= 300, '300 admitted', 30_000);
    } finally {
      await load.stop();
    }
    expect(load.outcomes.unexpected).toEqual([]);
    expect(load.maxConcurrent).toBeLessThanOrEqual(5);
    expect(load.maxConcurrent).toBeGreaterThanOrEqual(3); // the load really overlapped
    await until(
      async () => (await redis.zcard(`${prefix}{load}:leases`)) === 0,
      'every lease released',
    );
  }, 60_000);

  it('gives each store its own lease ids behind the readable instanceId', async () => {
    const [one, two] = [instance(), instance()];
    expect(one.instanceId).toBe('pod-0');
    expect(two.instanceId).toBe('pod-0');
    expect(one.leaseIdPrefix).toMatch(/^pod-0:[\w-]{12}$/);
    expect(two.leaseIdPrefix).toMatch(/^pod-0:[\w-]{12}$/);
    expect(one.leaseIdPrefix).not.toBe(two.leaseIdPrefix);

    const releases = [
      await gaugeOf(one, 'ids', { limit: 2 }).acquire(),
      await gaugeOf(two, 'ids', { limit: 2 }).acquire(),
    ];
    const ids = [...(await leases(redis, `${prefix}{ids}:leases`)).keys()].sort();
    expect(ids).toEqual([`${one.leaseIdPrefix}:1`, `${two.leaseIdPrefix}:1`].sort());
    for (const release of releases) release();
  });

  it('never grants a lease id that is already in the set (the acquire script)', async () => {
    const client = new Redis(REDIS_URL);
    try {
      const commands = new RedisLeaseClient(client);
      const key = `${prefix}{script}:leases`;
      const keys = { leases: key, limit: `${prefix}{script}:limit`, channel: 'unused' };
      expect(await commands.acquire(keys, 'pod-0:x:1', 5, 10_000)).toEqual({
        granted: true,
        limit: 5,
      });
      const [, score] = await redis.zrange(key, '0', '-1', 'WITHSCORES');
      expect((await commands.acquire(keys, 'pod-0:x:1', 5, 60_000)).granted).toBe(false);
      expect(await redis.zrange(key, '0', '-1', 'WITHSCORES')).toEqual(['pod-0:x:1', score]);
    } finally {
      await closeClient(client);
    }
  });
});

describeRedis('processes given the same instanceId', () => {
  let library: ReturnType<typeof compileLibrary>;
  let redis: Redis;
  const prefixes: string[] = [];
  const replicas: Replica[] = [];
  const stores: RedisGaugeStore[] = [];

  /** A key prefix of this test's own (the fixture's gauge is always "shared"). */
  const ownPrefix = () => {
    prefixes.push(uniquePrefix('same-id-processes'));
    return prefixes.at(-1)!;
  };
  const replica = async (env: Record<string, string>) => {
    const started = await startReplica({ LIB: library.index, REDIS_URL, ...env });
    replicas.push(started);
    return started;
  };
  const get = async <T>(url: string): Promise<T> => (await (await fetch(url)).json()) as T;
  type Stats = { inFlight: number; queued: number; gated: number };
  const stats = (r: Replica) => get<Stats>(`${r.url}/stats`);

  beforeAll(() => {
    library = compileLibrary();
    redis = new Redis(REDIS_URL);
  }, 200_000);
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    await Promise.all(replicas.splice(0).map((r) => r.stop('SIGKILL')));
    for (const prefix of prefixes.splice(0)) await deleteKeys(redis, prefix);
  });
  afterAll(async () => {
    await closeClient(redis);
    library?.remove();
  });

  it('keeps the global peak within the limit across two replicas with one instanceId', async () => {
    const prefix = ownPrefix();
    const env = { PREFIX: prefix, INSTANCE_ID: 'pod-0', LIMIT: '5', WORK_MS: '5' };
    const [a, b] = await Promise.all([replica(env), replica(env)]);

    // a holds 3; b then asks for 5 at once: 2 run, 3 wait.
    const gate = (r: Replica) =>
      fetch(`${r.url}/gate`).then(
        (response) => response.status,
        (error: unknown) => String(error), // the replica was killed (a failed test's clean-up)
      );
    const requests = Array.from({ length: 3 }, () => gate(a));
    await until(async () => (await stats(a)).gated === 3, 'a runs 3 handlers');
    requests.push(...Array.from({ length: 5 }, () => gate(b)));
    await until(async () => {
      const { inFlight, queued } = await stats(b);
      return inFlight + queued === 5;
    }, "each of b's callers has a slot or a place in the queue");
    const [ofA, ofB] = await Promise.all([stats(a), stats(b)]);
    expect([ofA.gated, ofB.gated]).toEqual([3, 2]);
    expect(ofA.inFlight + ofB.inFlight).toBe(5);
    expect(await redis.zcard(`${prefix}{shared}:leases`)).toBe(5);

    await Promise.all([a, b].map((r) => fetch(`${r.url}/open`)));
    expect(await Promise.all(requests)).toEqual(Array(8).fill(200));

    // Then closed-loop load on both: 12 clients each, 40 requests each replica.
    const statuses: number[] = [];
    await Promise.all(
      [a, b].flatMap(({ url }) =>
        Array.from({ length: 12 }, async (_, client) => {
          for (let i = client; i < 40; i += 12) {
            const response = await fetch(`${url}/work`);
            await response.arrayBuffer();
            statuses.push(response.status);
          }
        }),
      ),
    );
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    const intervals = (
      await Promise.all([a, b].map(({ url }) => get<[string, string][]>(`${url}/intervals`)))
    )
      .flat()
      .map(([start, end]) => [BigInt(start), BigInt(end)] as [bigint, bigint]);
    expect(intervals).toHaveLength(88);
    expect(maxOverlap(intervals)).toBeLessThanOrEqual(5);
  }, 120_000);

  it("leaves a dead predecessor's leases alone when restarted with its instanceId, until they expire", async () => {
    const prefix = ownPrefix();
    const ttl = 5000;
    const predecessor = await replica({
      PREFIX: prefix,
      INSTANCE_ID: 'pod-0',
      LIMIT: '5',
      LEASE_TTL_MS: String(ttl),
      RENEW_MS: '50', // so its leases have close to a whole TTL left when it dies
    });
    const key = `${prefix}{shared}:leases`;
    const holds = Array.from({ length: 3 }, () =>
      fetch(`${predecessor.url}/gate`).then(
        () => undefined,
        () => undefined, // the connection dies with the process
      ),
    );
    await until(async () => (await stats(predecessor)).inFlight === 3, 'it holds 3 slots');
    await predecessor.stop('SIGKILL');
    await Promise.all(holds);
    const old = await leases(redis, key);
    expect(old.size).toBe(3);

    // The newcomer: same instanceId, a fresh store (its lease counter starts again).
    const logs = new Logs();
    const store = new RedisGaugeStore({
      redis: REDIS_URL,
      keyPrefix: prefix,
      instanceId: 'pod-0',
      leaseTtlMs: ttl,
      renewIntervalMs: 50,
      logger: logs,
    });
    stores.push(store);
    const gauge = gaugeOf(store, 'shared', { limit: 5 });
    const mine = await granted(Array.from({ length: 5 }, () => gauge.acquire()));
    expect(mine).toHaveLength(2);
    const afterAcquire = await leases(redis, key);
    expect(afterAcquire.size).toBe(5);
    const own = [...afterAcquire.keys()].filter((id) => !old.has(id));
    expect(own).toHaveLength(2);

    // Its renewal pushes its own leases' expiries, never the predecessor's.
    await until(async () => {
      const now = await leases(redis, key);
      return own.every((id) => now.get(id)! > afterAcquire.get(id)!);
    }, 'the newcomer renews its leases');
    for (const [id, expiry] of old) expect((await leases(redis, key)).get(id)).toBe(expiry);

    // Its releases free its own slots only.
    for (const release of mine) release();
    await until(async () => (await redis.zcard(key)) === 3, "the newcomer's releases land");
    expect(await leases(redis, key)).toEqual(old);
    expect(await redisNow(redis)).toBeLessThan(Math.min(...old.values())); // not expired yet
    const again = await granted(Array.from({ length: 3 }, () => gauge.acquire()));
    expect(again).toHaveLength(2);
    expect(gauge.inFlight).toBe(2);

    // They expire by their TTL, as the predecessor left them; then the whole limit is free.
    const expiry = Math.max(...old.values());
    await until(async () => (await redisNow(redis)) > expiry, 'the old leases expire', ttl + 5000);
    const later = await granted(Array.from({ length: 3 }, () => gauge.acquire()));
    expect(later).toHaveLength(3);
    const final = await leases(redis, key);
    expect([...old.keys()].filter((id) => final.has(id))).toEqual([]);
    expect(final.size).toBe(5);
    expect(logs.warnings).toEqual([]);
    for (const release of [...again, ...later]) release();
    await gauge.idle();
  }, 60_000);
});

describeWithRedis({ server: true })(
  'a store recovering from an outage next to one with its instanceId',
  () => {
    let server: RedisServer;
    let redis: Redis;
    const stores: RedisGaugeStore[] = [];

    beforeAll(async () => {
      server = await RedisServer.start();
      redis = server.client();
    }, 30_000);
    afterAll(async () => {
      await Promise.all(stores.map((store) => store.close()));
      await closeClient(redis);
      await server.stop();
    });

    it("removes only its own orphans on recovery, never the other's leases", async () => {
      const instance = (options: Partial<RedisGaugeStoreOptions>) => {
        const store = new RedisGaugeStore({
          redis: server.url,
          instanceId: 'pod-0',
          logger: new Logs(),
          ...options,
        });
        stores.push(store);
        return store;
      };
      // a renews rarely, so it sends nothing while the server is paused and never sees the outage.
      const a = gaugeOf(instance({ leaseTtlMs: 60_000 }), 'orphans', { limit: 5 });
      const recovering = instance({ commandTimeoutMs: 200, recheckIntervalMs: 50 });
      const b = gaugeOf(recovering, 'orphans', { limit: 5 });
      const key = `backpressure:{orphans}:leases`;
      const ofA = await granted([a.acquire(), a.acquire()]);
      expect(ofA).toHaveLength(2);
      const held = await leases(redis, key);
      await until(() => recovering.state === 'up', 'b connects');

      // b's attempt times out (the server is frozen): an orphan b removes once Redis answers again.
      server.pause();
      try {
        await expect(b.acquire()).rejects.toMatchObject({ name: 'GaugeUnavailableError' });
        expect(recovering.state).toBe('down');
      } finally {
        server.resume();
      }
      await until(() => recovering.state === 'up', 'b sees Redis again');
      // Sent after the orphan's removal on b's connection: once answered, the removal is applied.
      const ofB = await granted([b.acquire()]);
      expect(ofB).toHaveLength(1);

      const now = await leases(redis, key);
      for (const [id, expiry] of held) expect(now.get(id)).toBe(expiry);
      expect(now.size).toBe(3);
      expect(a.inFlight + b.inFlight).toBe(3);
      for (const release of [...ofA, ...ofB]) release();
      await Promise.all([a.idle(), b.idle()]);
    }, 30_000);
  },
);
