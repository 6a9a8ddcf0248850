import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { GaugeEvent } from './gauge-events';
import type { Release } from './gauge.interface';
import type { LimitPolicy, LimitPolicyFactory, LimitSample } from './limit-policy';
import { PressureGauge } from './pressure-gauge';

/** A policy that keeps every sample it is fed and never moves the limit. */
class Recording implements LimitPolicy {
  readonly samples = true;
  readonly seen: LimitSample[] = [];
  constructor(readonly limit: number) {}
  update(sample: LimitSample): number {
    this.seen.push({ ...sample });
    return this.limit;
  }
}

function recording(limit: number): { factory: LimitPolicyFactory; policy: () => Recording } {
  let made: Recording | undefined;
  return {
    factory: { policy: 'recording', create: () => (made = new Recording(limit)) },
    policy: () => made!,
  };
}

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
});
afterEach(() => {
  jest.useRealTimers();
});

describe('PressureGauge fast path: what a slot measures is decided once and stays right', () => {
  it('a slot granted before a listener subscribed is counted, not reported half', () => {
    const gauge = new PressureGauge({ name: 'g', limit: 2 });
    const events: GaugeEvent[] = [];
    const before = gauge.acquire() as Release;
    const unsubscribe = gauge.subscribe((e) => events.push(e));
    const after = gauge.acquire() as Release;
    jest.advanceTimersByTime(7);
    before();
    after();
    expect(events.map((e) => e.type)).toEqual(['admitted', 'released']);
    expect(events[1]).toMatchObject({ type: 'released', heldMs: 7, outcome: 'succeeded' });
    unsubscribe();
    // Unsubscribed: no clock, no event, still counted and released once.
    (gauge.acquire() as Release)();
    expect(events).toHaveLength(2);
    expect(gauge.inFlight).toBe(0);
    expect(gauge.admitted).toBe(3);
  });

  it('every slot of a sampling policy is a sample, whoever listens', () => {
    const { factory, policy } = recording(3);
    const gauge = new PressureGauge({ name: 'g', limit: factory });
    const a = gauge.acquire() as Release;
    jest.advanceTimersByTime(4);
    a('dropped');
    a('succeeded'); // a second call is a no-op
    const b = gauge.tryAcquire()!;
    jest.advanceTimersByTime(2);
    b();
    expect(
      policy().seen.map(({ heldMs, outcome, inFlight }) => [heldMs, outcome, inFlight]),
    ).toEqual([
      [4, 'dropped', 1],
      [2, 'succeeded', 1],
    ]);
    expect(gauge.inFlight).toBe(0);
  });

  it('a hand-off starts the next holder at the release, with one clock reading', () => {
    const { factory, policy } = recording(1);
    const gauge = new PressureGauge({
      name: 'g',
      limit: factory,
      queue: { size: 1, timeoutMs: 1000 },
    });
    const first = gauge.acquire() as Release;
    const next = gauge.acquire() as Promise<Release>;
    jest.advanceTimersByTime(5);
    const now = jest.spyOn(performance, 'now');
    first();
    expect(now).toHaveBeenCalledTimes(1); // the release's reading is the waiter's start
    now.mockRestore();
    return next.then((release) => {
      jest.advanceTimersByTime(3);
      release();
      expect(policy().seen.map((s) => s.heldMs)).toEqual([5, 3]);
      expect(gauge.inFlight).toBe(0);
    });
  });

  it('the first priority call leaves the plain path: room is kept for higher levels after it', () => {
    const gauge = new PressureGauge({ name: 'g', limit: 2 });
    (gauge.acquire() as Release)(); // plain
    const held = gauge.acquire({ priority: 'critical' }) as Release;
    // One slot free; a critical arrival was just seen, so a plain (normal) call is shed.
    expect(() => gauge.acquire()).toThrow(expect.objectContaining({ reason: 'shed-priority' }));
    held();
    expect(gauge.inFlight).toBe(0);
  });

  it('constant events are shared frozen objects; figures still count each', () => {
    const gauge = new PressureGauge({ name: 'g', limit: 1 });
    const events: GaugeEvent[] = [];
    gauge.subscribe((e) => events.push(e));
    const release = gauge.acquire() as Release;
    expect(() => gauge.acquire()).toThrow();
    expect(() => gauge.acquire()).toThrow();
    release();
    (gauge.acquire() as Release)();
    const rejected = events.filter((e) => e.type === 'rejected');
    const admitted = events.filter((e) => e.type === 'admitted');
    expect(rejected).toHaveLength(2);
    expect(rejected[0]).toBe(rejected[1]);
    expect(Object.isFrozen(rejected[0])).toBe(true);
    expect(admitted[0]).toBe(admitted[1]);
    expect(admitted[0]).toEqual({ type: 'admitted', gauge: 'g', waitedMs: 0 });
    expect(gauge.rejected).toBe(2);
    expect(gauge.admitted).toBe(2);
  });
});
