import { describe, expect, it } from '@jest/globals';
import { GaugeConfigError } from './gauge.errors';
import {
  assertDefaultLimit,
  assertGaugeName,
  DEFAULT_LIMIT,
  resolveGaugeOptions,
  type GaugeOptions,
} from './gauge-options';

const MAX_TIMEOUT = 2 ** 31 - 1;

/** Calls `fn`, expects a GaugeConfigError, and returns its message. */
function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(GaugeConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a GaugeConfigError, nothing was thrown');
}

/** Options deliberately of the wrong type, as plain JavaScript or a JSON config could pass them. */
const raw = (value: unknown) => value as GaugeOptions;

describe('resolveGaugeOptions', () => {
  describe('defaults', () => {
    it('fails fast with the default limit and Retry-After 1', () => {
      expect(resolveGaugeOptions('g')).toEqual({
        name: 'g',
        limit: DEFAULT_LIMIT,
        queueSize: 0,
        queueTimeoutMs: 0,
        retryAfterSeconds: 1,
      });
      expect(DEFAULT_LIMIT).toBe(10);
    });

    it("takes the module's default limit when the gauge has none", () => {
      expect(resolveGaugeOptions('g', {}, 3).limit).toBe(3);
      expect(resolveGaugeOptions('g', { limit: 7 }, 3).limit).toBe(7);
    });

    it.each([
      [2500, 3],
      [3000, 3],
      [3001, 4],
      [200, 1],
      [1, 1],
    ])('a queue timeout of %d ms defaults Retry-After to %d s', (timeoutMs, retry) => {
      const resolved = resolveGaugeOptions('g', { queue: { size: 5, timeoutMs } });
      expect(resolved).toMatchObject({ queueSize: 5, queueTimeoutMs: timeoutMs });
      expect(resolved.retryAfterSeconds).toBe(retry);
    });

    it('an explicit retryAfterSeconds wins, 0 included', () => {
      expect(resolveGaugeOptions('g', { retryAfterSeconds: 7 }).retryAfterSeconds).toBe(7);
      const queued = { queue: { size: 1, timeoutMs: 5000 }, retryAfterSeconds: 0 };
      expect(resolveGaugeOptions('g', queued).retryAfterSeconds).toBe(0);
    });

    it('a queue of size 0 fails fast: Retry-After 1', () => {
      const resolved = resolveGaugeOptions('g', { queue: { size: 0, timeoutMs: 10_000 } });
      expect(resolved).toMatchObject({ queueSize: 0, retryAfterSeconds: 1 });
    });

    it('a queue of size 0 resolves exactly as no queue, whatever its discipline', () => {
      const failFast = resolveGaugeOptions('g', { limit: 3 });
      expect(resolveGaugeOptions('g', { limit: 3, queue: { size: 0, timeoutMs: 10_000 } })).toEqual(
        failFast,
      );
      expect(
        resolveGaugeOptions('g', {
          limit: 3,
          queue: { size: 0, timeoutMs: 50, discipline: 'codel', targetMs: 2, intervalMs: 20 },
        }),
      ).toEqual(failFast);
      expect(
        resolveGaugeOptions('g', {
          limit: 3,
          queue: { size: 0, timeoutMs: 50, discipline: 'lifo' },
        }),
      ).toEqual(failFast);
    });

    it('a queue of size 0 still has its options checked (a typo fails while it is off)', () => {
      expect(
        configError(() =>
          resolveGaugeOptions(
            'g',
            raw({ queue: { size: 0, timeoutMs: 5, discipline: 'fifo', targetMs: 1 } }),
          ),
        ),
      ).toBe(
        `Gauge "g": option "queue.targetMs" is for discipline 'codel' only, but the discipline is "fifo"`,
      );
      expect(
        configError(() =>
          resolveGaugeOptions('g', raw({ queue: { size: 0, timeoutMs: 5, discipline: 'lilo' } })),
        ),
      ).toContain('Gauge "g": option "queue.discipline" must be one of');
      expect(
        configError(() => resolveGaugeOptions('g', raw({ queue: { size: 0, timeoutMs: 0 } }))),
      ).toContain('Gauge "g": option "queue.timeoutMs"');
    });

    it('accepts the largest timeout setTimeout honours', () => {
      const resolved = resolveGaugeOptions('g', { queue: { size: 1, timeoutMs: MAX_TIMEOUT } });
      expect(resolved.queueTimeoutMs).toBe(MAX_TIMEOUT);
    });
  });

  describe('rejects, naming the gauge and the option', () => {
    it.each([0, -1, NaN, 1.5, Infinity, -Infinity, '5', true])('limit %p', (limit) => {
      const message = configError(() => resolveGaugeOptions('orders', raw({ limit })));
      expect(message).toContain('Gauge "orders"');
      expect(message).toContain('"limit"');
    });

    it.each([-1, 1.5, NaN, Infinity, '3', undefined])('queue.size %p', (size) => {
      const message = configError(() =>
        resolveGaugeOptions('orders', raw({ queue: { size, timeoutMs: 100 } })),
      );
      expect(message).toContain('Gauge "orders"');
      expect(message).toContain('"queue.size"');
    });

    it.each([-1, 0, NaN, Infinity, 2 ** 31, MAX_TIMEOUT + 0.5, '100', undefined])(
      'queue.timeoutMs %p',
      (timeoutMs) => {
        const message = configError(() =>
          resolveGaugeOptions('orders', raw({ queue: { size: 1, timeoutMs } })),
        );
        expect(message).toContain('Gauge "orders"');
        expect(message).toContain('"queue.timeoutMs"');
      },
    );

    it.each([-1, 1.5, NaN, '2'])('retryAfterSeconds %p', (retryAfterSeconds) => {
      const message = configError(() => resolveGaugeOptions('orders', raw({ retryAfterSeconds })));
      expect(message).toContain('Gauge "orders"');
      expect(message).toContain('"retryAfterSeconds"');
    });

    it.each([null, 5, 'big', true])('queue %p', (queue) => {
      const message = configError(() => resolveGaugeOptions('orders', raw({ queue })));
      expect(message).toContain('Gauge "orders"');
      expect(message).toContain('"queue"');
    });

    it('an unknown key such as the typo "limt", listing the known ones', () => {
      const message = configError(() => resolveGaugeOptions('orders', raw({ limt: 5 })));
      expect(message).toContain('Gauge "orders"');
      expect(message).toContain('"limt"');
      expect(message).toContain('limit, queue, retryAfterSeconds');
    });

    it('an unknown queue key such as "timeout"', () => {
      const message = configError(() =>
        resolveGaugeOptions('orders', raw({ queue: { size: 1, timeout: 100 } })),
      );
      expect(message).toContain('Gauge "orders"');
      expect(message).toContain('"queue.timeout"');
      expect(message).toContain('queue.size, queue.timeoutMs');
    });

    it.each([null, 5, 'x'])('options %p that are not an object', (options) => {
      const message = configError(() => resolveGaugeOptions('orders', raw(options)));
      expect(message).toContain('Gauge "orders"');
    });

    it.each([
      ['limit null', { limit: null }, '"limit"', 'got null'],
      ['retryAfterSeconds null', { retryAfterSeconds: null }, '"retryAfterSeconds"', 'got null'],
      ['queue []', { queue: [] }, '"queue"', 'got []'],
      ['limit a function', { limit: function five() {} }, '"limit"', 'got function five'],
      ['limit a Date', { limit: new Date(0) }, '"limit"', 'got an instance of Date'],
      ['limit 10n', { limit: 10n }, '"limit"', 'got 10n'],
      ['limit a symbol', { limit: Symbol('five') }, '"limit"', 'got Symbol(five)'],
    ])(
      '%s: only undefined means "not set", and the value is shown as given',
      (_c, options, option, got) => {
        const message = configError(() => resolveGaugeOptions('orders', raw(options)));
        expect(message).toContain(option);
        expect(message.endsWith(got)).toBe(true);
      },
    );

    it('options that are an array are not taken for "no options"', () => {
      expect(configError(() => resolveGaugeOptions('orders', raw([])))).toContain('got []');
    });

    it('shows the bad value in the message', () => {
      expect(configError(() => resolveGaugeOptions('g', raw({ limit: '5' })))).toContain('"5"');
      expect(configError(() => resolveGaugeOptions('g', { limit: 1.5 }))).toContain('1.5');
    });
  });

  describe('priorityWaitMs', () => {
    it.each<[string, unknown, string]>([
      ['-1', -1, 'got -1'],
      ['-0.5', -0.5, 'got -0.5'],
      ['NaN', NaN, 'got NaN'],
      ['Infinity', Infinity, 'got Infinity'],
      ['-Infinity', -Infinity, 'got -Infinity'],
      ["above setTimeout's ceiling", MAX_TIMEOUT + 1, `got ${MAX_TIMEOUT + 1}`],
      ['a string "25"', '25', 'got "25"'],
      ['null', null, 'got null'],
      ['true', true, 'got true'],
      ['an object', { ms: 5 }, 'got {"ms":5}'],
    ])('rejects %s, naming the gauge, the option and the value', (_case, priorityWaitMs, got) => {
      const message = configError(() =>
        resolveGaugeOptions('orders', raw({ limit: 2, priorityWaitMs })),
      );
      expect(message).toBe(
        `Gauge "orders": option "priorityWaitMs" must be a number of milliseconds from 0 to ${MAX_TIMEOUT}, ${got}`,
      );
    });

    it.each([0, 25])('rejects %p together with a queue (a fail-fast option)', (priorityWaitMs) => {
      const message = configError(() =>
        resolveGaugeOptions('orders', {
          limit: 2,
          queue: { size: 5, timeoutMs: 100 },
          priorityWaitMs,
        }),
      );
      expect(message).toBe(
        `Gauge "orders": option "priorityWaitMs" is for a fail-fast gauge, but "queue.size" is 5 (a queue already serves higher levels first): remove "priorityWaitMs", or the queue (or set its size to 0) to fail fast; got ${priorityWaitMs}`,
      );
    });

    it.each([0, 25])(
      'accepts %p with a queue of size 0, which is a fail-fast gauge',
      (priorityWaitMs) => {
        const resolved = resolveGaugeOptions('orders', {
          limit: 2,
          queue: { size: 0, timeoutMs: 100 },
          priorityWaitMs,
        });
        expect(resolved).toEqual({
          ...resolveGaugeOptions('orders', { limit: 2 }),
          priorityWaitMs,
        });
      },
    );

    it('an out-of-range value with a queue is named for its range first', () => {
      const message = configError(() =>
        resolveGaugeOptions(
          'orders',
          raw({ queue: { size: 1, timeoutMs: 1 }, priorityWaitMs: -1 }),
        ),
      );
      expect(message).toContain('option "priorityWaitMs" must be a number of milliseconds');
      expect(message.endsWith('got -1')).toBe(true);
    });

    it.each([0, 0.5, 25, MAX_TIMEOUT])('accepts %p on a fail-fast gauge and keeps it', (ms) => {
      expect(resolveGaugeOptions('orders', { limit: 2, priorityWaitMs: ms })).toEqual({
        name: 'orders',
        limit: 2,
        queueSize: 0,
        queueTimeoutMs: 0,
        retryAfterSeconds: 1,
        priorityWaitMs: ms,
      });
    });

    it('absent or undefined: nothing resolved (the default follows the hold time)', () => {
      expect(resolveGaugeOptions('orders', { limit: 2 })).not.toHaveProperty('priorityWaitMs');
      expect(
        resolveGaugeOptions('orders', { limit: 2, priorityWaitMs: undefined }),
      ).not.toHaveProperty('priorityWaitMs');
    });
  });

  describe('gauge names', () => {
    it.each(['', '   ', 5, null, undefined])('rejects the name %p', (name) => {
      configError(() => resolveGaugeOptions(name as string));
      configError(() => assertGaugeName(name));
    });

    it('names the place the bad name came from', () => {
      expect(configError(() => assertGaugeName('', '@Limited() on C.m'))).toContain(
        '@Limited() on C.m',
      );
    });
  });

  describe('assertDefaultLimit', () => {
    it.each([0, -1, 1.5, NaN, Infinity, '10'])('rejects %p, naming defaultLimit', (value) => {
      const message = configError(() => assertDefaultLimit(value));
      expect(message).toContain('BackpressureModule');
      expect(message).toContain('"defaultLimit"');
    });

    it('accepts a positive integer', () => {
      expect(() => assertDefaultLimit(1)).not.toThrow();
      expect(() => assertDefaultLimit(500)).not.toThrow();
    });
  });
});
