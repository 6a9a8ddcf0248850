import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { type Release } from '../../src';
import { RedisGaugeStore } from '../../src/redis';
import { gaugeOf, isSettled, Logs, until, within } from './support/helpers';
import {
  closeClient,
  deleteKeys,
  describeWithRedis,
  REDIS_URL,
  redisNow,
  uniquePrefix,
} from './support/redis-env';
import { compileLibrary, maxOverlap, startReplica, type Replica } from './support/replicas';

const describeRedis = describeWithRedis();

describeRedis('replicas in separate processes sharing one Redis gauge', () => {
  let library: ReturnType<typeof compileLibrary>;
  let redis: Redis;
  const prefix = uniquePrefix('replicas');
  const replicas: Replica[] = [];

  const replica = async (env: Record<string, string> = {}) => {
    const started = await startReplica({ LIB: library.index, REDIS_URL, PREFIX: prefix, ...env });
    replicas.push(started);
    return started;
  };

  beforeAll(() => {
    library = compileLibrary();
    redis = new Redis(REDIS_URL);
  }, 200_000);
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop('SIGKILL')));
    await deleteKeys(redis, prefix);
    await closeClient(redis);
    library?.remove();
  });

  it('never runs more than 10 handlers at once across 4 processes sharing a gauge of 10', async () => {
    const four = await Promise.all([1, 2, 3, 4].map(() => replica({ LIMIT: '10', WORK_MS: '10' })));
    // 24 concurrent clients per replica (96 in all) for 10 slots, 60 requests each replica.
    const statuses: number[] = [];
    await Promise.all(
      four.flatMap(({ url }) =>
        Array.from({ length: 24 }, async (_, client) => {
          for (let i = client; i < 60; i += 24) {
            const response = await fetch(`${url}/work`);
            await response.arrayBuffer();
            statuses.push(response.status);
          }
        }),
      ),
    );
    expect(statuses.filter((status) => status !== 200)).toEqual([]);

    const intervals = (
      await Promise.all(
        four.map(
          async ({ url }) => (await (await fetch(`${url}/intervals`)).json()) as [string, string][],
        ),
      )
    )
      .flat()
      .map(([start, end]) => [BigInt(start), BigInt(end)] as [bigint, bigint]);
    expect(intervals).toHaveLength(240);
    const peak = maxOverlap(intervals);
    expect(peak).toBeLessThanOrEqual(10);
    expect(peak).toBeGreaterThanOrEqual(5); // the load really overlapped across processes
    await Promise.all(four.map((r) => r.stop()));
  }, 120_000);

  it('gives the slots of a holder killed with SIGKILL back within the lease TTL', async () => {
    const ttl = 1500;
    const holder = await replica({ LIMIT: '10', LEASE_TTL_MS: String(ttl) });
    const holds = Array.from({ length: 10 }, () =>
      fetch(`${holder.url}/hold`).then(
        () => undefined,
        () => undefined, // the connection dies with the process
      ),
    );
    const key = `${prefix}{shared}:leases`;
    await until(async () => (await redis.zcard(key)) === 10, 'the holder takes all 10 slots');

    const store = new RedisGaugeStore({
      redis: REDIS_URL,
      keyPrefix: prefix,
      leaseTtlMs: ttl,
      recheckIntervalMs: 100,
      logger: new Logs(),
    });
    try {
      const gauge = gaugeOf(store, 'shared', { limit: 10, queue: { size: 10, timeoutMs: 20_000 } });
      const waiting = Promise.resolve(gauge.acquire());
      await until(() => gauge.queued === 1, 'a caller waits for a slot');
      expect(await isSettled(waiting)).toBe(false);

      await holder.stop('SIGKILL');
      const killedAt = await redisNow(redis);
      const scores = (await redis.zrange(key, '0', '-1', 'WITHSCORES')).filter(
        (_, i) => i % 2 === 1,
      );
      expect(scores).toHaveLength(10);
      // Every lease of the dead holder expires at most one TTL after its death.
      expect(Math.max(...scores.map(Number)) - killedAt).toBeLessThanOrEqual(ttl);

      const first = await within(waiting, ttl + 5000, 'the waiter gets a slot after the TTL');
      const rest = (await Promise.all(
        Array.from({ length: 9 }, () => gauge.acquire()),
      )) as Release[];
      expect(gauge.inFlight).toBe(10);
      for (const release of [first, ...rest]) release();
    } finally {
      await store.close();
      await Promise.all(holds);
    }
  }, 120_000);

  it('needs ioredis only when a store is given a URL, and says so clearly when it is missing', () => {
    // The compiled core and Redis store, copied where no node_modules can be found: as in an app
    // without ioredis (the Nest layer is left out: it needs @nestjs, which is not there either).
    const bare = mkdtempSync(join(tmpdir(), 'bp-no-ioredis-'));
    try {
      for (const dir of ['core', 'redis']) {
        cpSync(join(dirname(library.index), dir), join(bare, dir), { recursive: true });
      }
      const script = `
        const { MemoryGaugeStore } = require(${JSON.stringify(join(bare, 'core/gauge-store.interface'))});
        const { resolveGaugeOptions } = require(${JSON.stringify(join(bare, 'core/gauge-options'))});
        const { RedisGaugeStore } = require(${JSON.stringify(join(bare, 'redis'))});
        const gauge = new MemoryGaugeStore().createGauge(resolveGaugeOptions('local'));
        const store = new RedisGaugeStore({ redis: 'redis://127.0.0.1:6379' });
        try { store.createGauge(resolveGaugeOptions('shared')); console.log('created'); }
        catch (error) { console.log(gauge.limit, error.name, error.message); }`;
      const run = spawnSync(process.execPath, ['-e', script], { cwd: bare, encoding: 'utf8' });
      expect(run.stderr).toBe('');
      expect(run.stdout).toMatch(
        /^10 GaugeConfigError RedisGaugeStore was given a URL but "ioredis" could not be loaded \(Cannot find module 'ioredis'/,
      );
      expect(run.stdout).toContain('npm install ioredis');
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
  });
});
