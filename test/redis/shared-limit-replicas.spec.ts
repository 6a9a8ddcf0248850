import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { RedisGaugeStore } from '../../src/redis';
import { gaugeOf, Logs, until } from './support/helpers';
import {
  closeClient,
  deleteKeys,
  describeWithRedis,
  REDIS_URL,
  uniquePrefix,
} from './support/redis-env';
import { compileLibrary, startReplica, type Replica } from './support/replicas';

const describeRedis = describeWithRedis();

interface Stats {
  inFlight: number;
  queued: number;
  gated: number;
  limit: number;
}

describeRedis('setLimit across processes sharing one Redis gauge', () => {
  let library: ReturnType<typeof compileLibrary>;
  let redis: Redis;
  let operator: RedisGaugeStore | undefined;
  const prefix = uniquePrefix('limit-replicas');
  const replicas: Replica[] = [];

  // The re-check is a minute away: waiters can only be woken by the raised cap's announcement.
  const replica = async (limit: string) => {
    const env = {
      LIB: library.index,
      REDIS_URL,
      PREFIX: prefix,
      LIMIT: limit,
      RECHECK_MS: '60000',
    };
    const started = await startReplica(env);
    replicas.push(started);
    return started;
  };
  const stats = async ({ url }: Replica) => (await (await fetch(`${url}/stats`)).json()) as Stats;

  beforeAll(() => {
    library = compileLibrary();
    redis = new Redis(REDIS_URL);
  }, 200_000);
  afterAll(async () => {
    await operator?.close();
    await Promise.all(replicas.map((r) => r.stop('SIGKILL')));
    await deleteKeys(redis, prefix);
    await closeClient(redis);
    library?.remove();
  });

  it('a raise made in another process hands slots to the waiters of every replica', async () => {
    const [one, two] = [await replica('1'), await replica('1')];
    // Three held handlers per replica for one slot in all: one runs, five wait.
    const requests = [one, two].flatMap(({ url }) =>
      [1, 2, 3].map(() => fetch(`${url}/gate`).then((response) => response.text())),
    );
    const all = async () => Promise.all([stats(one), stats(two)]);
    await until(async () => {
      const [a, b] = await all();
      return a.gated + b.gated === 1 && a.queued + b.queued === 5;
    }, 'one handler runs and five wait');

    operator = new RedisGaugeStore({ redis: REDIS_URL, keyPrefix: prefix, logger: new Logs() });
    const gauge = gaugeOf(operator, 'shared', { limit: 1, queue: { size: 10, timeoutMs: 10_000 } });
    await until(() => operator!.state === 'up', 'the operator store connects');
    await gauge.setLimit(4);

    await until(
      async () => {
        const [a, b] = await all();
        return a.gated + b.gated === 4 && a.gated > 0 && b.gated > 0;
      },
      'four handlers run, on both replicas',
      5_000,
    );
    const [a, b] = await all();
    expect([a.limit, b.limit]).toEqual([4, 4]);
    expect(a.queued + b.queued).toBe(2);

    await Promise.all([one, two].map(({ url }) => fetch(`${url}/open`)));
    expect(await Promise.all(requests)).toEqual(Array(6).fill('done'));
  });

  it('reports a replica configured with another limit at bootstrap, in its log', async () => {
    const odd = await replica('7');
    await until(() => odd.stderr().includes('Gauge "shared"'), 'the mismatch is logged');
    expect(odd.stderr()).toMatch(
      /Gauge "shared": configured with limit 7 here, but the cap stored in Redis is 4 \(from another instance configured with 1\); the newest configuration wins: the cap is now 7/,
    );
    expect((await stats(odd)).limit).toBe(7);
  });
});
