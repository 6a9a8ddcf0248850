import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import {
  closeClient,
  deleteKeys,
  describeWithRedis,
  REDIS_URL,
  uniquePrefix,
} from './support/redis-env';
import { compileLibrary, maxOverlap, startReplica, type Replica } from './support/replicas';

const describeRedis = describeWithRedis();

interface Stats {
  inFlight: number;
  limit: number;
  cap: number;
}

/*
 * An adaptive limit on a gauge shared through Redis, across processes: the policy's `max` is the
 * cap in Redis for all replicas together, and each replica adapts its own share from its own
 * latency. One replica's dependency serves one call at a time (its callers queue inside it, as a
 * saturated pool's do), the other's serves everyone: the first one's share must come down, the
 * other's not, and the replicas together never run more handlers than the cap.
 */
describeRedis('adaptive shares of one Redis gauge, across processes', () => {
  let library: ReturnType<typeof compileLibrary>;
  let redis: Redis;
  const prefix = uniquePrefix('adaptive-replicas');
  const replicas: Replica[] = [];
  const CAP = 12;

  const replica = async (env: Record<string, string>) => {
    const started = await startReplica({
      LIB: library.index,
      REDIS_URL,
      PREFIX: prefix,
      ADAPTIVE: 'gradient2',
      LIMIT: String(CAP),
      INITIAL: '6',
      WORK_MS: '10',
      ...env,
    });
    replicas.push(started);
    return started;
  };
  const stats = async ({ url }: Replica) => (await (await fetch(`${url}/stats`)).json()) as Stats;
  const intervals = async ({ url }: Replica) =>
    ((await (await fetch(`${url}/intervals`)).json()) as string[][]).map(
      ([start, end]) => [BigInt(start!), BigInt(end!)] as [bigint, bigint],
    );

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

  it('a replica whose dependency saturates lowers its share; together they never exceed the cap', async () => {
    const [slow, fast] = await Promise.all([replica({ DEP_CAPACITY: '1' }), replica({})]);
    expect(await stats(slow)).toMatchObject({ limit: 6, cap: CAP });

    // 16 closed-loop clients per replica, 300 requests each replica (queue mode: all succeed).
    const statuses: number[] = [];
    await Promise.all(
      [slow, fast].flatMap(({ url }) =>
        Array.from({ length: 16 }, async (_, client) => {
          for (let i = client; i < 300; i += 16) {
            const response = await fetch(`${url}/dep`);
            await response.arrayBuffer();
            statuses.push(response.status);
          }
        }),
      ),
    );
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect(statuses).toHaveLength(600);

    const all = [...(await intervals(slow)), ...(await intervals(fast))];
    expect(all).toHaveLength(600);
    expect(maxOverlap(all)).toBeLessThanOrEqual(CAP);
    const [s, f] = [await stats(slow), await stats(fast)];
    expect([s.cap, f.cap]).toEqual([CAP, CAP]);
    // One call at a time inside the slow dependency: its share came down from 6 (a share above a
    // few only adds queueing), the other replica's did not.
    expect(s.limit).toBeLessThanOrEqual(4);
    expect(f.limit).toBeGreaterThan(s.limit);
    for (const { limit } of [s, f]) expect(limit).toBeGreaterThanOrEqual(1);
  }, 120_000);
});
