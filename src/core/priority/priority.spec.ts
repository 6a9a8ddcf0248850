import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { flush } from '../../../test/support/wait';
import { GaugeExhaustedError } from '../gauge.errors';
import type { GaugeEvent } from '../gauge-events';
import type { Release } from '../gauge.interface';
import type { PriorityLevel } from './priority.level';
import { PressureGauge } from '../pressure-gauge';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
});
afterEach(() => {
  jest.useRealTimers();
});

function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof GaugeExhaustedError) return error.reason;
    throw error;
  }
  return 'granted';
}

describe('priorities in a queue', () => {
  it('serves higher levels first, by the discipline within a level', async () => {
    const g = new PressureGauge({ name: 'p', limit: 1, queue: { size: 10, timeoutMs: 1000 } });
    const holder = g.acquire() as Release;
    const served: string[] = [];
    const releases: Release[] = [];
    const join = (label: string, priority?: PriorityLevel) =>
      void (g.acquire(priority === undefined ? undefined : { priority }) as Promise<Release>).then(
        (release) => {
          served.push(label);
          releases.push(release);
        },
      );
    join('low1', 'low');
    join('n1');
    join('crit1', 'critical');
    join('high1', 'high');
    join('crit2', 'critical');
    join('low2', 'low');
    holder();
    for (let i = 0; i < 6; i++) {
      await flush();
      releases.shift()?.();
    }
    expect(served).toEqual(['crit1', 'crit2', 'high1', 'n1', 'low1', 'low2']);
  });

  it('a full queue makes room for a higher level by shedding the lowest waiter served last', async () => {
    const g = new PressureGauge({ name: 'p', limit: 1, queue: { size: 2, timeoutMs: 1000 } });
    const events: GaugeEvent[] = [];
    g.subscribe((event) => events.push(event));
    g.acquire() as Release;
    const outcomes: Record<string, string> = {};
    const join = (label: string, priority: PriorityLevel) => {
      try {
        void (g.acquire({ priority }) as Promise<Release>).then(
          () => (outcomes[label] = 'served'),
          (error: GaugeExhaustedError) => (outcomes[label] = error.reason),
        );
      } catch (error) {
        outcomes[label] = (error as GaugeExhaustedError).reason;
      }
    };
    join('low1', 'low');
    join('low2', 'low');
    join('crit', 'critical'); // sheds low2 (FIFO: the newest low is served last)
    join('low3', 'low'); // not higher than anyone: refused
    await flush();
    expect(outcomes).toEqual({ low2: 'shed-priority', low3: 'queue-full' });
    expect(g.queued).toBe(2);
    expect(g.rejected).toBe(2);
    expect(events.flatMap((e) => (e.type === 'rejected' ? [e.reason] : []))).toEqual([
      'shed-priority',
      'queue-full',
    ]);
  });

  it('an unknown level counts as normal', async () => {
    const g = new PressureGauge({ name: 'p', limit: 1, queue: { size: 10, timeoutMs: 1000 } });
    const holder = g.acquire() as Release;
    const served: string[] = [];
    void (g.acquire({ priority: 'urgent' as PriorityLevel }) as Promise<Release>).then(() =>
      served.push('odd'),
    );
    void (g.acquire({ priority: 'high' }) as Promise<Release>).then(() => served.push('high'));
    holder();
    await flush();
    expect(served).toEqual(['high']);
  });
});

describe('priorities on a fail-fast gauge', () => {
  it('until a priority is used, behaves exactly as before (no headroom)', () => {
    const g = new PressureGauge({ name: 'f', limit: 2 });
    g.acquire() as Release;
    g.acquire() as Release;
    expect(reasonOf(() => g.acquire())).toBe('full');
  });

  it('keeps a slot for critical while low is refused with shed-priority', () => {
    const g = new PressureGauge({ name: 'f', limit: 4 });
    const events: GaugeEvent[] = [];
    g.subscribe((event) => events.push(event));
    // critical seen once (no hold time yet: one slot kept)
    (g.acquire({ priority: 'critical' }) as Release)();
    const held: Release[] = [];
    for (let i = 0; i < 3; i++) held.push(g.acquire({ priority: 'low' }) as Release);
    expect(reasonOf(() => g.acquire({ priority: 'low' }))).toBe('shed-priority');
    expect(reasonOf(() => g.acquire())).toBe('shed-priority'); // normal too: below critical
    expect(g.tryAcquire()).toBeUndefined();
    expect(g.inFlight).toBe(3);
    const critical = g.acquire({ priority: 'critical' }) as Release;
    expect(typeof critical).toBe('function');
    expect(reasonOf(() => g.acquire({ priority: 'critical' }))).toBe('full');
    expect(events.flatMap((e) => (e.type === 'rejected' ? [e.reason] : []))).toEqual([
      'shed-priority',
      'shed-priority',
      'shed-priority',
      'full',
    ]);
    critical();
    for (const release of held) release();
    expect(g.inFlight).toBe(0);
  });

  it('a reserve sized to the load: more critical demand keeps more slots', () => {
    // no brief wait: the reserve alone keeps critical refusals under 1 % (priority-grace.spec.ts
    // shows the smaller reserve a wait allows)
    const g = new PressureGauge({ name: 'f', limit: 10, priorityWaitMs: 0 });
    const lowGets = () => {
      const held: Release[] = [];
      for (;;) {
        const slot = g.tryAcquire();
        if (slot === undefined) break;
        held.push(slot);
      }
      for (const release of held) release();
      return held.length;
    };
    // 50 ms holds; critical at 20/s (ρ = 0.1 → 2 slots) for 5 s
    for (let t = 0; t < 5000; t += 50) {
      (g.acquire({ priority: 'critical' }) as Release)();
      jest.advanceTimersByTime(50);
    }
    // the releases above held 0 ms; teach the hold time
    const slow = g.acquire({ priority: 'critical' }) as Release;
    jest.advanceTimersByTime(50);
    slow();
    const light = lowGets();
    // critical at 100/s (ρ = 0.5 → 7 slots) for 5 s
    const holding: Release[] = [];
    for (let t = 0; t < 5000; t += 10) {
      holding.push(g.acquire({ priority: 'critical' }) as Release);
      if (holding.length > 5) holding.shift()!(); // each held 50 ms
      jest.advanceTimersByTime(10);
    }
    for (const release of holding) release();
    const heavy = lowGets();
    expect(light).toBe(10 - 2);
    // ρ ≈ 0.45-0.5 → 6-7 slots kept
    expect(heavy).toBeGreaterThanOrEqual(3);
    expect(heavy).toBeLessThanOrEqual(4);
  });

  it('forgets critical once it stops: low gets every slot again', () => {
    const g = new PressureGauge({ name: 'f', limit: 3 });
    (g.acquire({ priority: 'critical' }) as Release)();
    jest.advanceTimersByTime(20_000);
    const held = [0, 1, 2].map(() => g.acquire({ priority: 'low' }) as Release);
    expect(held.every((r) => typeof r === 'function')).toBe(true);
  });
});
