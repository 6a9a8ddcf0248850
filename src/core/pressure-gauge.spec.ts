import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Deferred } from '../../test/support/deferred';
import { flush } from '../../test/support/wait';
import { GaugeAbortedError, GaugeConfigError, GaugeExhaustedError } from './gauge.errors';
import type { Release } from './gauge.interface';
import type { GaugeOptions } from './gauge-options';
import { PressureGauge } from './pressure-gauge';

/** Records how a promise settled, so a test can look without awaiting it. */
function watch<T>(promise: Promise<T>) {
  const state: { status: 'pending' | 'fulfilled' | 'rejected'; value?: T; error?: unknown } = {
    status: 'pending',
  };
  promise.then(
    (value) => Object.assign(state, { status: 'fulfilled', value }),
    (error: unknown) => Object.assign(state, { status: 'rejected', error }),
  );
  return state;
}

function syncRelease(slot: Release | Promise<Release>): Release {
  expect(typeof slot).toBe('function');
  return slot as Release;
}

function waiting(slot: Release | Promise<Release>): Promise<Release> {
  expect(slot).toBeInstanceOf(Promise);
  return slot as Promise<Release>;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

const stats = (g: PressureGauge) => ({
  inFlight: g.inFlight,
  queued: g.queued,
  admitted: g.admitted,
  rejected: g.rejected,
  timedOut: g.timedOut,
  aborted: g.aborted,
});

const queued = (limit: number, size: number, timeoutMs = 1000, extra: GaugeOptions = {}) =>
  new PressureGauge({ name: 'q', limit, queue: { size, timeoutMs }, ...extra });

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
});
afterEach(() => {
  jest.useRealTimers();
});

describe('PressureGauge construction', () => {
  it('validates raw options and names the gauge', () => {
    expect(() => new PressureGauge({ name: 'g', limit: 0 })).toThrow(GaugeConfigError);
    expect(() => new PressureGauge({ name: 'g', limit: 0 })).toThrow('Gauge "g"');
  });

  it('rejects an unknown option given to the constructor (typo "limt")', () => {
    const typo = { name: 'g', limt: 5 } as unknown as GaugeOptions & { name: string };
    expect(() => new PressureGauge(typo)).toThrow('unknown option "limt"');
  });

  it('takes resolved options as they are', () => {
    const g = new PressureGauge({
      name: 'r',
      limit: 3,
      queueSize: 2,
      queueTimeoutMs: 50,
      retryAfterSeconds: 9,
    });
    expect([g.name, g.limit, g.retryAfterSeconds, g.mayWait]).toEqual(['r', 3, 9, true]);
  });

  it('defaults: limit 10, fail fast, Retry-After 1, all counters 0', () => {
    const g = new PressureGauge({ name: 'd' });
    expect([g.limit, g.mayWait, g.retryAfterSeconds]).toEqual([10, false, 1]);
    expect(stats(g)).toEqual({
      inFlight: 0,
      queued: 0,
      admitted: 0,
      rejected: 0,
      timedOut: 0,
      aborted: 0,
    });
  });
});

describe('PressureGauge fail fast', () => {
  it('hands out at most `limit` slots, synchronously, and counts exactly', () => {
    const g = new PressureGauge({ name: 'ff', limit: 2 });
    const a = syncRelease(g.acquire());
    const b = syncRelease(g.acquire());
    expect(stats(g)).toMatchObject({ inFlight: 2, queued: 0, admitted: 2, rejected: 0 });

    const error = thrown(() => g.acquire());
    expect(error).toBeInstanceOf(GaugeExhaustedError);
    expect(error).toMatchObject({ gauge: 'ff', reason: 'full', retryAfterSeconds: 1 });
    expect(stats(g)).toMatchObject({ inFlight: 2, admitted: 2, rejected: 1 });

    a();
    expect(g.inFlight).toBe(1);
    const c = syncRelease(g.acquire());
    expect(stats(g)).toMatchObject({ inFlight: 2, admitted: 3, rejected: 1 });
    b();
    c();
    expect(stats(g)).toEqual({
      inFlight: 0,
      queued: 0,
      admitted: 3,
      rejected: 1,
      timedOut: 0,
      aborted: 0,
    });
    expect(jest.getTimerCount()).toBe(0);
  });

  it('puts its own retryAfterSeconds on the error', () => {
    const g = new PressureGauge({ name: 'ff', limit: 1, retryAfterSeconds: 7 });
    void g.acquire();
    expect(thrown(() => g.acquire())).toMatchObject({ reason: 'full', retryAfterSeconds: 7 });
  });

  it('process() rejects (never throws) when full, and does not run fn', async () => {
    const g = new PressureGauge({ name: 'ff', limit: 1 });
    void g.acquire();
    const fn = jest.fn(() => 'ran');
    let result!: Promise<string>;
    expect(() => (result = g.process(fn))).not.toThrow();
    await expect(result).rejects.toMatchObject({ name: 'GaugeExhaustedError', reason: 'full' });
    expect(fn).not.toHaveBeenCalled();
    expect(stats(g)).toMatchObject({ inFlight: 1, admitted: 1, rejected: 1 });
  });

  it('tryAcquire returns a release when free and undefined (a rejection) when full', () => {
    const g = new PressureGauge({ name: 'ff', limit: 1 });
    const release = g.tryAcquire();
    expect(typeof release).toBe('function');
    expect(g.tryAcquire()).toBeUndefined();
    expect(stats(g)).toMatchObject({ inFlight: 1, admitted: 1, rejected: 1 });
    release!();
    expect(g.inFlight).toBe(0);
  });

  it('release is idempotent: a second call frees nothing', () => {
    const g = new PressureGauge({ name: 'ff', limit: 2 });
    const a = syncRelease(g.acquire());
    syncRelease(g.acquire());
    a();
    a();
    expect(g.inFlight).toBe(1);
    syncRelease(g.acquire());
    expect(() => g.acquire()).toThrow(GaugeExhaustedError);
    a();
    expect(g.inFlight).toBe(2);
  });
});

describe('PressureGauge.process releases however fn ends', () => {
  const boom = new Error('boom');
  const cases: Array<[string, () => unknown, 'fulfilled' | 'rejected']> = [
    ['a sync value', () => 42, 'fulfilled'],
    [
      'a sync throw',
      () => {
        throw boom;
      },
      'rejected',
    ],
    ['an async value', () => Promise.resolve(42), 'fulfilled'],
    ['an async rejection', () => Promise.reject(boom), 'rejected'],
    ['a thenable value', () => ({ then: (ok: (v: number) => void) => ok(42) }), 'fulfilled'],
  ];

  it.each(cases)('%s', async (_name, fn, outcome) => {
    const g = new PressureGauge({ name: 'p', limit: 1 });
    const result = watch(g.process(fn));
    await flush();
    expect(result.status).toBe(outcome);
    if (outcome === 'fulfilled') expect(result.value).toBe(42);
    else expect(result.error).toBe(boom);
    expect(stats(g)).toMatchObject({ inFlight: 0, admitted: 1 });
  });

  it('holds the slot until async work settles', async () => {
    const g = new PressureGauge({ name: 'p', limit: 1 });
    const work = new Deferred<string>();
    const result = watch(g.process(() => work.promise));
    await flush();
    expect(g.inFlight).toBe(1);
    expect(result.status).toBe('pending');
    work.resolve('done');
    await flush();
    expect(result).toMatchObject({ status: 'fulfilled', value: 'done' });
    expect(g.inFlight).toBe(0);
  });

  it('runs fn only once a queued slot is handed over, then passes it on', async () => {
    const g = queued(1, 2);
    const first = new Deferred();
    const order: string[] = [];
    const a = watch(g.process(() => first.promise.then(() => order.push('a'))));
    const b = watch(g.process(() => order.push('b')));
    const c = watch(g.process(async () => order.push('c')));
    await flush();
    expect(order).toEqual([]);
    expect(stats(g)).toMatchObject({ inFlight: 1, queued: 2, admitted: 1 });
    first.resolve();
    await flush();
    expect(order).toEqual(['a', 'b', 'c']);
    expect([a.status, b.status, c.status]).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    expect(stats(g)).toMatchObject({ inFlight: 0, queued: 0, admitted: 3 });
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('PressureGauge queue', () => {
  it('is declared able to wait', () => {
    expect(queued(1, 1).mayWait).toBe(true);
  });

  it('hands freed slots to waiters in FIFO order', async () => {
    const g = queued(1, 3);
    const a = syncRelease(g.acquire());
    const order: string[] = [];
    const held = new Map<string, Release>();
    for (const id of ['b', 'c', 'd']) {
      void waiting(g.acquire()).then((release) => {
        order.push(id);
        held.set(id, release);
      });
    }
    expect(stats(g)).toMatchObject({ inFlight: 1, queued: 3, admitted: 1 });
    a();
    await flush();
    expect(order).toEqual(['b']);
    held.get('b')!();
    await flush();
    held.get('c')!();
    await flush();
    expect(order).toEqual(['b', 'c', 'd']);
    expect(stats(g)).toMatchObject({ inFlight: 1, queued: 0, admitted: 4 });
    held.get('d')!();
    expect(g.inFlight).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('hands the slot over directly: a newcomer in the same tick cannot barge', async () => {
    const g = queued(1, 2);
    const a = syncRelease(g.acquire());
    const b = watch(waiting(g.acquire()));
    a();
    // The slot is already b's, although b's promise callbacks have not run yet.
    expect(stats(g)).toMatchObject({ inFlight: 1, queued: 0, admitted: 2 });
    expect(g.tryAcquire()).toBeUndefined();
    const newcomer = watch(waiting(g.acquire()));
    expect(stats(g)).toMatchObject({ inFlight: 1, queued: 1, rejected: 1 });
    await flush();
    expect(b.status).toBe('fulfilled');
    expect(newcomer.status).toBe('pending');
    b.value!();
    await flush();
    expect(newcomer.status).toBe('fulfilled');
  });

  it('a release called twice hands only one slot to the queue', async () => {
    const g = queued(1, 2);
    const a = syncRelease(g.acquire());
    const b = watch(waiting(g.acquire()));
    const c = watch(waiting(g.acquire()));
    a();
    a();
    await flush();
    expect([b.status, c.status]).toEqual(['fulfilled', 'pending']);
    expect(stats(g)).toMatchObject({ inFlight: 1, queued: 1 });
    b.value!();
    b.value!();
    await flush();
    expect(c.status).toBe('fulfilled');
    c.value!();
    c.value!();
    expect(g.inFlight).toBe(0);
    a();
    b.value!();
    expect(g.inFlight).toBe(0);
  });

  it('rejects at once when the queue is full: reason queue-full', () => {
    const g = queued(1, 2, 2500);
    void g.acquire();
    void g.acquire();
    void g.acquire();
    const error = thrown(() => g.acquire());
    expect(error).toBeInstanceOf(GaugeExhaustedError);
    expect(error).toMatchObject({ gauge: 'q', reason: 'queue-full', retryAfterSeconds: 3 });
    expect(stats(g)).toMatchObject({ inFlight: 1, queued: 2, admitted: 1, rejected: 1 });
  });

  it('rejects a waiter at its timeout: reason timeout, counted, no timer left', async () => {
    const g = queued(1, 1, 100);
    void g.acquire();
    const b = watch(waiting(g.acquire()));
    jest.advanceTimersByTime(99);
    await flush();
    expect(b.status).toBe('pending');
    jest.advanceTimersByTime(1);
    await flush();
    expect(b.status).toBe('rejected');
    expect(b.error).toBeInstanceOf(GaugeExhaustedError);
    expect(b.error).toMatchObject({ gauge: 'q', reason: 'timeout', retryAfterSeconds: 1 });
    expect(stats(g)).toMatchObject({ inFlight: 1, queued: 0, timedOut: 1, rejected: 0 });
    expect(jest.getTimerCount()).toBe(0);
  });

  it('never hands a slot to a waiter that timed out: it goes to the next one', async () => {
    const g = queued(1, 2, 100);
    const a = syncRelease(g.acquire());
    const b = watch(waiting(g.acquire()));
    jest.advanceTimersByTime(50);
    const c = watch(waiting(g.acquire()));
    jest.advanceTimersByTime(50);
    a();
    await flush();
    expect(b.status).toBe('rejected');
    expect(c.status).toBe('fulfilled');
    expect(stats(g)).toMatchObject({ inFlight: 1, queued: 0, admitted: 2, timedOut: 1 });
  });

  it('a slot freed after every waiter timed out goes back to the pool', async () => {
    const g = queued(1, 2, 100);
    const a = syncRelease(g.acquire());
    const b = watch(waiting(g.acquire()));
    jest.advanceTimersByTime(100);
    a();
    await flush();
    expect(b.status).toBe('rejected');
    expect(g.inFlight).toBe(0);
    expect(typeof g.tryAcquire()).toBe('function');
  });

  it('keeps one timer for many waiters and none once they leave', async () => {
    const g = queued(1, 20, 100);
    const a = syncRelease(g.acquire());
    const waiters = Array.from({ length: 20 }, () => watch(waiting(g.acquire())));
    expect(jest.getTimerCount()).toBe(1);
    a();
    await flush();
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(100);
    await flush();
    expect(waiters.filter((w) => w.status === 'rejected')).toHaveLength(19);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('leaves no timer when the queue drains by hand-off', async () => {
    const g = queued(1, 2, 100);
    const a = syncRelease(g.acquire());
    const b = watch(waiting(g.acquire()));
    expect(jest.getTimerCount()).toBe(1);
    a();
    expect(jest.getTimerCount()).toBe(0);
    await flush();
    b.value!();
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('PressureGauge abort', () => {
  it('an already-aborted signal is refused before queueing, even with a free slot', async () => {
    const g = queued(1, 2);
    const signal = AbortSignal.abort();
    const error = thrown(() => g.acquire({ signal: signal }));
    expect(error).toBeInstanceOf(GaugeAbortedError);
    expect(error).toMatchObject({ gauge: 'q' });
    const fn = jest.fn();
    await expect(g.process(fn, { signal: signal })).rejects.toBeInstanceOf(GaugeAbortedError);
    expect(fn).not.toHaveBeenCalled();
    expect(stats(g)).toMatchObject({ inFlight: 0, queued: 0, admitted: 0, aborted: 2 });
    expect(jest.getTimerCount()).toBe(0);
  });

  it('abort while waiting removes the waiter from the middle; the rest keep FIFO order', async () => {
    const g = queued(1, 3);
    const a = syncRelease(g.acquire());
    const controller = new AbortController();
    const order: string[] = [];
    const b = watch(waiting(g.acquire()).then((r) => (order.push('b'), r)));
    const c = watch(waiting(g.acquire({ signal: controller.signal })));
    const d = watch(waiting(g.acquire()).then((r) => (order.push('d'), r)));
    controller.abort();
    expect(stats(g)).toMatchObject({ inFlight: 1, queued: 2, aborted: 1 });
    await flush();
    expect(c.status).toBe('rejected');
    expect(c.error).toBeInstanceOf(GaugeAbortedError);
    a();
    await flush();
    b.value!();
    await flush();
    expect(order).toEqual(['b', 'd']);
    expect(c.status).toBe('rejected');
    d.value!();
    expect(stats(g)).toEqual({
      inFlight: 0,
      queued: 0,
      admitted: 3,
      rejected: 0,
      timedOut: 0,
      aborted: 1,
    });
    expect(jest.getTimerCount()).toBe(0);
  });

  it('an aborted waiter is never handed a slot: with none left, it returns to the pool', async () => {
    const g = queued(1, 1);
    const a = syncRelease(g.acquire());
    const controller = new AbortController();
    const b = watch(waiting(g.acquire({ signal: controller.signal })));
    controller.abort();
    expect(jest.getTimerCount()).toBe(0);
    a();
    await flush();
    expect(b.status).toBe('rejected');
    expect(stats(g)).toMatchObject({ inFlight: 0, queued: 0, admitted: 1, aborted: 1 });
  });

  it('process() aborted while queued rejects and never runs fn', async () => {
    const g = queued(1, 1);
    void g.acquire();
    const controller = new AbortController();
    const fn = jest.fn();
    const result = watch(g.process(fn, { signal: controller.signal }));
    controller.abort();
    await flush();
    expect(result.error).toBeInstanceOf(GaugeAbortedError);
    expect(fn).not.toHaveBeenCalled();
  });

  it('abort after the grant is a no-op: the caller keeps its slot', async () => {
    const g = queued(1, 1);
    const a = syncRelease(g.acquire());
    const controller = new AbortController();
    const b = watch(waiting(g.acquire({ signal: controller.signal })));
    a();
    controller.abort(); // granted, even if the promise callbacks have not run yet
    await flush();
    expect(b.status).toBe('fulfilled');
    expect(stats(g)).toMatchObject({ inFlight: 1, aborted: 0 });
    expect(g.tryAcquire()).toBeUndefined();
    b.value!();
    expect(g.inFlight).toBe(0);
  });

  it('abort of a signal given to an immediate grant is a no-op', () => {
    const g = queued(1, 1);
    const controller = new AbortController();
    const release = syncRelease(g.acquire({ signal: controller.signal }));
    controller.abort();
    expect(stats(g)).toMatchObject({ inFlight: 1, aborted: 0 });
    release();
    expect(g.inFlight).toBe(0);
  });

  it('abort after a timeout changes nothing', async () => {
    const g = queued(1, 1, 100);
    void g.acquire();
    const controller = new AbortController();
    const b = watch(waiting(g.acquire({ signal: controller.signal })));
    jest.advanceTimersByTime(100);
    controller.abort();
    await flush();
    expect(b.error).toMatchObject({ reason: 'timeout' });
    expect(stats(g)).toMatchObject({ timedOut: 1, aborted: 0 });
  });

  it.each(['hand-off', 'timeout', 'abort', 'close'] as const)(
    'detaches its abort listener once settled by %s',
    async (how) => {
      const g = queued(1, 1, 100);
      const a = syncRelease(g.acquire());
      const controller = new AbortController();
      const add = jest.spyOn(controller.signal, 'addEventListener');
      const remove = jest.spyOn(controller.signal, 'removeEventListener');
      const b = watch(waiting(g.acquire({ signal: controller.signal })));
      expect(add).toHaveBeenCalledTimes(1);
      if (how === 'hand-off') a();
      if (how === 'timeout') jest.advanceTimersByTime(100);
      if (how === 'abort') controller.abort();
      if (how === 'close') g.close();
      await flush();
      expect(b.status).not.toBe('pending');
      // Either removed explicitly, or registered `once` and consumed by the abort itself.
      if (how !== 'abort') expect(remove).toHaveBeenCalledWith('abort', add.mock.calls[0]![1]);
    },
  );
});

describe('PressureGauge.close', () => {
  it('rejects every waiter, leaves no timer, and lets holders release', async () => {
    const g = queued(1, 3, 100);
    const a = syncRelease(g.acquire());
    const waiters = [0, 1, 2].map(() => watch(waiting(g.acquire())));
    g.close();
    await flush();
    for (const w of waiters) {
      expect(w.status).toBe('rejected');
      expect(w.error).toBeInstanceOf(GaugeExhaustedError);
      expect(w.error).toMatchObject({ gauge: 'q', reason: 'queue-full' });
    }
    expect(stats(g)).toMatchObject({ inFlight: 1, queued: 0, rejected: 3, timedOut: 0 });
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(1000);
    expect(g.timedOut).toBe(0);
    a();
    expect(g.inFlight).toBe(0);
  });

  it('refuses every later caller, although slots are free', async () => {
    const g = queued(2, 3, 100);
    g.close();
    expect(g.tryAcquire()).toBeUndefined();
    expect(() => g.acquire()).toThrow(expect.objectContaining({ reason: 'full' }));
    await expect(g.process(() => 'never')).rejects.toMatchObject({ reason: 'full' });
    expect(stats(g)).toMatchObject({ inFlight: 0, queued: 0, admitted: 0, rejected: 3 });
    expect(jest.getTimerCount()).toBe(0);
  });
});
