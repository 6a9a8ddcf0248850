import { describe, expect, it } from '@jest/globals';
import { GaugeConfigError, MemoryGaugeStore, resolveGaugeOptions } from '../../src';
import { RedisGaugeStore, type RedisGaugeStoreOptions } from '../../src/redis';

// No Redis needed: options are checked when the store is built, before any connection.
describe('RedisGaugeStore options', () => {
  const build = (options: unknown) => () => new RedisGaugeStore(options as RedisGaugeStoreOptions);

  it.each([
    [undefined, /options must be an object with at least \{ redis \}, got undefined$/],
    [{}, /option "redis" must be a redis:\/\/ URL or an ioredis client, got undefined/],
    [{ redis: 'localhost:6379' }, /option "redis" must be a redis:\/\/ URL.*got "localhost:6379"$/],
    [
      { redis: 'http://admin:s3cret@cache:6379' },
      /option "redis" must be a redis:\/\/ URL.*got "http:\/\/\*\*\*@cache:6379"$/,
    ],
    [
      { redis: 'redis://x', keyprefix: 'a' },
      /unknown option "keyprefix" \(known: redis, keyPrefix/,
    ],
    [{ redis: 'redis://x', keyPrefix: 3 }, /"keyPrefix" must be a string, got 3$/],
    [
      { redis: 'redis://x', leaseTtlMs: 50 },
      /"leaseTtlMs" must be an integer number of milliseconds from 100/,
    ],
    [
      { redis: 'redis://x', leaseTtlMs: 1000, renewIntervalMs: 1000 },
      /"renewIntervalMs" \(1000\) must be shorter than "leaseTtlMs"/,
    ],
    [{ redis: 'redis://x', commandTimeoutMs: 0 }, /"commandTimeoutMs".*got 0$/],
    [{ redis: 'redis://x', commandTimeoutMs: '200' }, /"commandTimeoutMs".*got "200"$/],
    [
      { redis: 'redis://x', whenStoreDown: 'fail-open' },
      /"whenStoreDown" must be 'fail-closed' or \{ localLimit \}/,
    ],
    [
      { redis: 'redis://x', whenStoreDown: { localLimit: 0 } },
      /"whenStoreDown.localLimit" must be an integer from 1/,
    ],
    [{ redis: 'redis://x', instanceId: '' }, /"instanceId" must be a non-empty string, got ""$/],
    [{ redis: 'redis://x', logger: {} }, /"logger" must have warn\(\) and log\(\), got \{\}$/],
  ])('refuses %j', (options, message) => {
    expect(build(options)).toThrow(GaugeConfigError);
    expect(build(options)).toThrow(message);
  });

  it("checks a gauge's own whenStoreDown with its other options", () => {
    expect(resolveGaugeOptions('db', { whenStoreDown: { localLimit: 3 } })).toMatchObject({
      whenStoreDown: { localLimit: 3 },
    });
    expect(resolveGaugeOptions('db', {})).not.toHaveProperty('whenStoreDown');
    expect(() =>
      resolveGaugeOptions('db', { whenStoreDown: { localLimit: 3, max: 1 } as never }),
    ).toThrow('Gauge "db": unknown option "whenStoreDown.max" (known: whenStoreDown.localLimit)');
    expect(() => resolveGaugeOptions('db', { whenStoreDown: 'open' as never })).toThrow(
      GaugeConfigError,
    );
    // The in-memory store is never down: it accepts the option and has nothing to do with it.
    expect(
      new MemoryGaugeStore().createGauge(
        resolveGaugeOptions('db', { whenStoreDown: 'fail-closed' }),
      ).limit,
    ).toBe(10);
  });

  it('connects only when a gauge is created, and closes cleanly without ever connecting', async () => {
    const store = new RedisGaugeStore({ redis: 'redis://127.0.0.1:1' });
    expect(store.state).toBe('connecting');
    expect(store.instanceId).toMatch(/^[\w-]{8}$/);
    await store.close();
    expect(() => store.createGauge(resolveGaugeOptions('late'))).toThrow(
      'RedisGaugeStore is closed',
    );
  });
});
