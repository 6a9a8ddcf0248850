import { expect, it } from '@jest/globals';
import type { Release } from '../../src';
import type { SharedGauge } from '../../src/core/shared/shared-gauge';
import { seeded } from '../support/random';
import { describeWithRedis } from './support/redis-env';
import { gaugeOf, until } from './support/helpers';
import { sharedRedis } from './support/shared-redis';

const describeRedis = describeWithRedis();

const LIMIT = 6;
const PER_KEY = 2;
const KEYS = ['a', 'b', 'c', 'd{', '}e', 'f', undefined];
const LEVELS = [undefined, undefined, 'critical', 'high', 'low'] as const;

describeRedis('Per-key fairness on Redis, random calls (keys, levels) on two instances', () => {
  const { prefix, redis, instance, leftovers } = sharedRedis('partition-prop');

  it.each([1, 2, 3, 4])(
    'seed %i: neither the cap nor any key’s cap is exceeded, and nothing is left',
    async (seed) => {
      const random = seeded(seed);
      const name = `prop${seed}`;
      const leases = `${prefix}{${name}}:leases`;
      const options = { limit: LIMIT, partition: { limit: PER_KEY, maxKeys: 3 } };
      const gauges: SharedGauge[] = [0, 1].map(() => gaugeOf(instance(), name, options));
      const held: { key: string | undefined; release: Release }[] = [];
      const heldBy = (key: string | undefined) => held.filter((slot) => slot.key === key).length;
      let granted = 0;
      let overShare = 0;

      for (let step = 0; step < 60; step++) {
        // A burst of concurrent calls on both instances, some aborted while on the wire.
        const calls = Array.from({ length: 1 + Math.floor(random() * 5) }, async () => {
          const key = KEYS[Math.floor(random() * KEYS.length)];
          const priority = LEVELS[Math.floor(random() * LEVELS.length)];
          const gauge = gauges[Math.floor(random() * 2)]!;
          const controller = new AbortController();
          const call = gauge.acquire({ key, priority, signal: controller.signal });
          if (random() < 0.15) controller.abort();
          try {
            const release = await call;
            held.push({ key, release });
            granted++;
            expect(held.length).toBeLessThanOrEqual(LIMIT);
            expect(heldBy(key)).toBeLessThanOrEqual(PER_KEY);
          } catch (error) {
            const { name, reason } = error as { name: string; reason?: string };
            if (reason === 'key-over-share') overShare++;
            expect(name === 'GaugeAbortedError' ? 'aborted' : reason).toMatch(
              /^(full|key-over-share|shed-priority|aborted)$/,
            );
          }
        });
        await Promise.all(calls);
        // Give some back.
        for (let i = held.length - 1; i >= 0; i--) {
          if (random() < 0.4) held.splice(i, 1)[0]!.release();
        }
        if (step % 10 === 9) {
          // Once the releases land, the partitions add up to the lease set.
          await until(async () => (await redis.zcard(leases)) === held.length, 'releases land');
          const partitions = await redis.keys(`${leases}:k:*`);
          let inPartitions = 0;
          for (const key of partitions) inPartitions += await redis.zcard(key);
          expect(inPartitions).toBe(held.length);
          const live =
            (await redis.zcard(`${leases}:keys`)) + (await redis.zcard(`${leases}:fixed`));
          expect(live).toBe(partitions.length);
        }
      }
      expect(granted).toBeGreaterThan(20);
      expect(overShare).toBeGreaterThan(0);

      for (const slot of held.splice(0)) slot.release();
      await Promise.all(gauges.map((gauge) => gauge.idle()));
      await until(async () => (await leftovers(name)).length === 0, 'every set is gone');
    },
  );
});
