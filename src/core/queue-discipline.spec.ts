import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { flush } from '../../test/support/wait';
import { GaugeConfigError, GaugeExhaustedError } from './gauge.errors';
import type { GaugeEvent } from './gauge-events';
import type { Release } from './gauge.interface';
import type { QueueOptions } from './gauge-options';
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

  it('codel, once standing, serves the newest and sheds waiters past twice the target', async () => {
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
    expect(log.refused).toEqual({ b: 'shed-delay' }); // waited 199 ms > 10 ms
    expect(log.served).toEqual(['a', 'd']); // the newest, not c
    jest.advanceTimersByTime(1);
    log.release('d');
    await flush();
    expect(log.served).toEqual(['a', 'd', 'c']);
    expect(log.timedOutReasons()).toEqual(['shed-delay']);
    log.release('c');
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
    jest.advanceTimersByTime(8); // t = 18
    log.join('c');
    jest.advanceTimersByTime(1);
    log.join('d');
    jest.advanceTimersByTime(1); // t = 20: standing
    log.release('a');
    await flush();
    expect(log.served).toEqual(['a', 'd']);
    expect(log.refused).toEqual({ b: 'shed-delay' });
    log.join('e');
    log.join('f'); // c, e, f: full
    log.join('g'); // standing: the oldest (c) makes room
    await flush();
    expect(log.refused).toEqual({ b: 'shed-delay', c: 'shed-delay' });
    expect(g.queued).toBe(3);
    expect(g.timedOut).toBe(2);
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
