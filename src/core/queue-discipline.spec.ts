import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { flush } from '../../test/support/wait';
import { GaugeConfigError, GaugeExhaustedError } from './gauge.errors';
import type { GaugeEvent } from './gauge-events';
import type { Release } from './gauge.interface';
import type { QueueOptions } from './queue-options';
import { PressureGauge } from './pressure-gauge';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
});
afterEach(() => {
  jest.useRealTimers();
});

const gauge = (queue: QueueOptions, limit = 1) => new PressureGauge({ name: 'd', limit, queue });

/** Queues `n` labelled waiters 1 ms apart; returns the order they are served in and their errors. */
function line(g: PressureGauge, labels: string[]) {
  const served: string[] = [];
  const refused: Record<string, string> = {};
  const releases: Release[] = [];
  for (const label of labels) {
    void (g.acquire() as Promise<Release>).then(
      (release) => {
        served.push(label);
        releases.push(release);
      },
      (error: unknown) => {
        refused[label] = error instanceof GaugeExhaustedError ? error.reason : String(error);
      },
    );
    jest.advanceTimersByTime(1);
  }
  return { served, refused, releases };
}

async function serveAll(releases: Release[], holder: Release, rounds: number) {
  holder();
  for (let i = 0; i < rounds; i++) {
    await flush();
    releases.shift()?.();
  }
  await flush();
}

/** Waiters by label: who was served (in order), who was refused and why. */
class Log {
  served: string[] = [];
  refused: Record<string, string> = {};
  private readonly releases = new Map<string, Release>();
  private readonly events: GaugeEvent[] = [];

  constructor(private readonly g: PressureGauge) {
    g.subscribe((event) => this.events.push(event));
  }

  join(label: string): void {
    const slot = this.g.acquire();
    if (typeof slot === 'function') {
      this.grant(label, slot);
      return;
    }
    void slot.then(
      (release) => this.grant(label, release),
      (error: unknown) => {
        this.refused[label] = error instanceof GaugeExhaustedError ? error.reason : String(error);
      },
    );
  }

  release(label: string): void {
    this.releases.get(label)?.();
  }

  timedOutReasons(): string[] {
    return this.events.flatMap((e) => (e.type === 'timed-out' ? [e.reason] : []));
  }

  private grant(label: string, release: Release): void {
    this.served.push(label);
    this.releases.set(label, release);
  }
}

describe('queue discipline', () => {
  it('fifo (default) serves the oldest first', async () => {
    const g = gauge({ size: 10, timeoutMs: 1000 });
    const holder = g.acquire() as Release;
    const { served, releases } = line(g, ['a', 'b', 'c']);
    await serveAll(releases, holder, 3);
    expect(served).toEqual(['a', 'b', 'c']);
  });

  it('lifo serves the newest first', async () => {
    const g = gauge({ size: 10, timeoutMs: 1000, discipline: 'lifo' });
    const holder = g.acquire() as Release;
    const { served, releases } = line(g, ['a', 'b', 'c']);
    await serveAll(releases, holder, 3);
    expect(served).toEqual(['c', 'b', 'a']);
  });

  it('lifo keeps the single deadline timer: the oldest still times out first', async () => {
    const g = gauge({ size: 10, timeoutMs: 100, discipline: 'lifo' });
    g.acquire() as Release;
    const { refused } = line(g, ['a', 'b']);
    jest.advanceTimersByTime(98);
    await flush();
    expect(refused).toEqual({ a: 'timeout' });
    jest.advanceTimersByTime(1);
    await flush();
    expect(refused).toEqual({ a: 'timeout', b: 'timeout' });
    expect(g.queued).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('codel is FIFO while the queue is not standing', async () => {
    const g = gauge({ size: 10, timeoutMs: 1000, discipline: 'codel' });
    const holder = g.acquire() as Release;
    const { served, releases } = line(g, ['a', 'b', 'c']);
    await serveAll(releases, holder, 3);
    expect(served).toEqual(['a', 'b', 'c']);
  });

  it('codel, once standing, serves the newest; stale waiters are shed as newer ones join, never at a hand-off', async () => {
    const g = gauge({ size: 100, timeoutMs: 10_000, discipline: 'codel' }); // target 5, interval 100
    const log = new Log(g);
    const holder = g.acquire() as Release;
    log.join('a');
    jest.advanceTimersByTime(1);
    log.join('b');
    jest.advanceTimersByTime(99); // t = 100
    holder(); // the first hand-off opens an interval: FIFO
    await flush();
    expect(log.served).toEqual(['a']);
    jest.advanceTimersByTime(95); // t = 195
    log.join('c');
    jest.advanceTimersByTime(1);
    log.join('d');
    jest.advanceTimersByTime(4); // t = 200: the interval's shortest wait was 100 ms > 5 ms
    log.release('a');
    await flush();
    expect(log.served).toEqual(['a', 'd']); // the newest, not b or c
    expect(log.refused).toEqual({}); // b is stale, but nobody is shed at a hand-off
    jest.advanceTimersByTime(1); // t = 201
    log.join('e'); // a newer waiter: b (waited 200 ms > 10 ms) is shed, c (6 ms) stays
    await flush();
    expect(log.refused).toEqual({ b: 'shed-delay' });
    log.release('d');
    await flush();
    expect(log.served).toEqual(['a', 'd', 'e']);
    jest.advanceTimersByTime(1); // t = 202
    log.release('e'); // c is late (7 ms) but the only waiter: served, no slot left idle
    await flush();
    expect(log.served).toEqual(['a', 'd', 'e', 'c']);
    expect(log.timedOutReasons()).toEqual(['shed-delay']);
    expect(g.queued).toBe(0);
    // The queue emptied, but that does not end the spell: still LIFO.
    jest.advanceTimersByTime(50); // t = 252
    log.join('p');
    jest.advanceTimersByTime(1);
    log.join('q');
    log.release('c');
    await flush();
    expect(log.served).toEqual(['a', 'd', 'e', 'c', 'q']);
    log.release('q'); // p waited 1 ms: on time
    await flush();
    expect(log.served).toEqual(['a', 'd', 'e', 'c', 'q', 'p']);
    // A whole interval since the last late waiter (c, at 202): FIFO again.
    jest.advanceTimersByTime(50); // t = 303
    log.join('x');
    jest.advanceTimersByTime(1);
    log.join('y');
    log.release('p');
    await flush();
    expect(log.served.slice(-1)).toEqual(['x']);
    log.release('x');
    await flush();
    log.release('y');
    expect(g.inFlight).toBe(0);
  });

  it('codel sees a backlog at a lower level even while a higher level is served at once', async () => {
    const g = gauge({ size: 100, timeoutMs: 10_000, discipline: 'codel' }); // target 5, interval 100
    let holder = g.acquire() as Release;
    const refused: string[] = [];
    const lows: Promise<unknown>[] = [];
    const low = () =>
      lows.push(
        (g.acquire({ priority: 'low' }) as Promise<Release>).then(
          (release) => release,
          (error: unknown) => refused.push((error as GaugeExhaustedError).reason),
        ),
      );
    for (let i = 0; i < 20; i++) low();
    // Every 20 ms a fresh `high` caller arrives and gets the freed slot at once (it waited 0 ms).
    for (let t = 0; t < 400; t += 20) {
      jest.advanceTimersByTime(20);
      const high = g.acquire({ priority: 'high' }) as Promise<Release>;
      holder();
      holder = await high;
    }
    // The lows have waited 400 ms: the queue is standing, and a newcomer sheds the stale ones.
    low();
    await flush();
    expect(refused.length).toBeGreaterThan(0);
    expect(new Set(refused)).toEqual(new Set(['shed-delay']));
    holder();
    g.close(); // the rest are refused; whoever got the slot gives it back
    for (const settled of await Promise.all(lows)) if (typeof settled === 'function') settled();
    expect(g.inFlight).toBe(0);
  });

  it('codel, standing, makes room for a newcomer by shedding the oldest when the queue is full', async () => {
    const g = gauge({
      size: 3,
      timeoutMs: 10_000,
      discipline: 'codel',
      targetMs: 1,
      intervalMs: 10,
    });
    const log = new Log(g);
    const holder = g.acquire() as Release;
    log.join('a');
    jest.advanceTimersByTime(1);
    log.join('b');
    jest.advanceTimersByTime(9); // t = 10
    holder();
    await flush();
    jest.advanceTimersByTime(9); // t = 19
    log.join('c'); // not standing yet: nobody shed on joining
    log.join('d');
    jest.advanceTimersByTime(1); // t = 20: standing
    log.release('a');
    await flush();
    expect(log.served).toEqual(['a', 'd']);
    expect(log.refused).toEqual({});
    log.join('e'); // b waited 19 ms > 2 ms: shed; c (1 ms) stays
    log.join('f'); // c, e, f: full
    log.join('g'); // standing: the oldest (c) makes room
    await flush();
    expect(log.refused).toEqual({ b: 'shed-delay', c: 'shed-delay' });
    expect(g.queued).toBe(3);
    expect(g.timedOut).toBe(2);
  });

  it('a shed waiter is refused shed-delay, a timed-out one timeout, both with the Retry-After', async () => {
    const g = new PressureGauge({
      name: 'd',
      limit: 1,
      retryAfterSeconds: 7,
      queue: { size: 10, timeoutMs: 30, discipline: 'codel', targetMs: 1, intervalMs: 5 },
    });
    const errors: Record<string, GaugeExhaustedError> = {};
    const join = (label: string) =>
      void (g.acquire() as Promise<Release>).then(
        (release) => release,
        (error: unknown) => {
          if (error instanceof GaugeExhaustedError) errors[label] = error;
        },
      );
    const holder = g.acquire() as Release;
    join('a');
    jest.advanceTimersByTime(1);
    join('b');
    jest.advanceTimersByTime(5); // t = 6
    holder(); // FIFO: a; the interval [6, 11) opens
    await flush();
    jest.advanceTimersByTime(14); // t = 20
    join('c');
    jest.advanceTimersByTime(13); // t = 33: b (deadline 31) timed out
    await flush();
    expect(errors.b?.reason).toBe('timeout');
    expect(errors.b?.retryAfterSeconds).toBe(7);
    join('d');
    g.setLimit(2); // a hand-off at t = 33: standing (the shortest wait, c's, was 13 ms > 1 ms)
    await flush();
    jest.advanceTimersByTime(3);
    join('e'); // c waited 16 ms > 2 ms: shed
    await flush();
    expect(errors.c?.reason).toBe('shed-delay');
    expect(errors.c?.retryAfterSeconds).toBe(7);
    g.close();
  });

  it('a queue of size 0 with codel still fails fast', () => {
    const g = gauge({ size: 0, timeoutMs: 10, discipline: 'codel' });
    g.acquire() as Release;
    expect(() => g.acquire()).toThrow(GaugeExhaustedError);
  });

  it('bad discipline settings fail at construction, naming gauge, option and value', () => {
    expect(() => gauge({ size: 1, timeoutMs: 1, discipline: 'random' as never })).toThrow(
      new GaugeConfigError(
        `Gauge "d": option "queue.discipline" must be one of 'fifo', 'lifo', 'codel', got "random"`,
      ),
    );
    expect(() => gauge({ size: 1, timeoutMs: 1, targetMs: 5 })).toThrow(
      /option "queue.targetMs" is for discipline 'codel' only/,
    );
    expect(() => gauge({ size: 1, timeoutMs: 1, discipline: 'lifo', intervalMs: 5 })).toThrow(
      /option "queue.intervalMs" is for discipline 'codel' only, but the discipline is "lifo"/,
    );
    expect(() => gauge({ size: 1, timeoutMs: 1, discipline: 'codel', targetMs: -1 })).toThrow(
      /option "queue.targetMs" must be a number/,
    );
    expect(() => gauge({ size: 1, timeoutMs: 1, discipline: 'codel', intervalMs: NaN })).toThrow(
      /option "queue.intervalMs" must be a number/,
    );
  });
});
