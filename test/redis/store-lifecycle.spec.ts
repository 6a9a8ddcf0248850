import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { GaugeUnavailableError, type Release } from '../../src';
import { RedisGaugeStore } from '../../src/redis';
import { describeWithRedis, REDIS_URL } from './support/redis-env';
import { gaugeOf, Logs, within } from './support/helpers';
import { sharedRedis } from './support/shared-redis';

const describeRedis = describeWithRedis();

describeRedis('a Redis gauge store starting and stopping', () => {
  // The stores here are made and closed by the tests themselves: closing is what they check.
  const { prefix, redis, leasesOf } = sharedRedis('lifecycle');

  const leases = (name: string) => redis.zcard(leasesOf(name));

  it('sends the releases of handlers that end while it closes, instead of leaving them to the TTL', async () => {
    const store = new RedisGaugeStore({
      redis: REDIS_URL,
      keyPrefix: prefix,
      logger: new Logs(),
      leaseTtlMs: 60_000,
      commandTimeoutMs: 5000,
    });
    const gauge = gaugeOf(store, 'closing', { limit: 2 });
    const release = (await gauge.acquire()) as Release;
    expect(await leases('closing')).toBe(1);

    const closing = store.close(); // a handler is still running
    expect(() => gauge.acquire()).toThrow(GaugeUnavailableError); // nobody new is admitted
    release(); // ... and ends now
    await within(closing, 10_000, 'the store closes');
    expect(await leases('closing')).toBe(0);
  });

  it('closes within the command timeout when a handler keeps its slot; the lease is left to its TTL', async () => {
    const store = new RedisGaugeStore({
      redis: REDIS_URL,
      keyPrefix: prefix,
      logger: new Logs(),
      leaseTtlMs: 60_000,
      commandTimeoutMs: 100,
    });
    const gauge = gaugeOf(store, 'stuck', { limit: 2 });
    const release = (await gauge.acquire()) as Release;
    await within(store.close(), 10_000, 'the store closes');
    expect(await leases('stuck')).toBe(1); // never freed while its handler may still run
    release(); // after the close: harmless
  });
});

describeRedis('a Redis that accepts connections but never answers', () => {
  let server: Server;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    server.close();
    await once(server, 'close');
  });

  it('counts as down once the first connection is not ready in time: callers get the policy, not a hang', async () => {
    const { port } = server.address() as { port: number };
    const logs = new Logs();
    const store = new RedisGaugeStore({
      redis: `redis://127.0.0.1:${port}`,
      logger: logs,
      commandTimeoutMs: 200,
    });
    try {
      const failFast = gaugeOf(store, 'fast', { limit: 2 });
      const queued = gaugeOf(store, 'queued', {
        limit: 2,
        queue: { size: 5, timeoutMs: 60_000 },
        whenStoreDown: { localLimit: 1 },
      });
      const refused = Promise.resolve(failFast.acquire());
      const local = Promise.resolve(queued.acquire());
      await expect(within(refused, 10_000, 'the fail-fast caller is answered')).rejects.toThrow(
        GaugeUnavailableError,
      );
      (await within(local, 10_000, 'the queued caller gets a local slot'))();
      expect(store.state).toBe('down');
      // ioredis's ready check (INFO) times out first; the store's own ready deadline is the backstop.
      expect(logs.warnings).toEqual([expect.stringContaining('is unreachable')]);
    } finally {
      await store.close();
    }
  });
});
