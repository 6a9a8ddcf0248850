import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { flush } from '../../../test/support/wait';
import { GaugeExhaustedError } from '../gauge.errors';
import type { Release } from '../gauge.interface';
import { PressureGauge } from '../pressure-gauge';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
});
afterEach(() => {
  jest.useRealTimers();
});

/** How an acquire settled: 'granted', a refusal reason, or 'pending' (a brief wait). */
function watch(acquire: () => Release | Promise<Release>): { state: string } {
  const seen = { state: 'pending' };
  let slot: Release | Promise<Release>;
  try {
    slot = acquire();
  } catch (error) {
    if (error instanceof GaugeExhaustedError) return { state: error.reason };
    throw error;
  }
  if (typeof slot === 'function') return { state: 'granted' };
  slot.then(
    () => (seen.state = 'granted'),
    (error: unknown) => {
      if (!(error instanceof GaugeExhaustedError)) throw error;
      seen.state = error.reason;
    },
  );
  return seen;
}

/**
 * A gauge that has learnt steady 100 ms holds from `low` callers only (mean 100, spread ≈ 4.9,
 * under the 10 ms window of `priorityWaitMs: 20`), so nothing is kept until a higher level calls.
 */
function steady(limit: number): PressureGauge {
  const g = new PressureGauge({ name: 'g', limit, priorityWaitMs: 20 });
  for (let i = 0; i < 60; i++) {
    const release = g.acquire({ priority: 'low' }) as Release;
    jest.advanceTimersByTime(100);
    release();
  }
  return g;
}

describe('lending the kept slot (ReleaseForecast)', () => {
  it('lends it while a held slot is due back on time (control)', () => {
    const g = steady(4);
    g.acquire({ priority: 'low' }) as Release;
    g.acquire({ priority: 'low' }) as Release;
    jest.advanceTimersByTime(96); // the oldest is due by 104.9 (100 + 4.9), within the 10 ms window
    g.acquire({ priority: 'critical' }) as Release;
    expect(watch(() => g.acquire({ priority: 'low' })).state).toBe('granted');
  });

  it('does not count a slot long overdue as due: the kept slot stays for critical', async () => {
    const g = steady(4);
    // Two slots whose work hangs (an upstream stalls): held far past 100 ± 4.9 ms.
    g.acquire({ priority: 'low' }) as Release;
    g.acquire({ priority: 'low' }) as Release;
    jest.advanceTimersByTime(150);
    g.acquire({ priority: 'critical' }) as Release; // critical is calling: one slot is kept for it
    const low = watch(() => g.acquire({ priority: 'low' }));
    jest.advanceTimersByTime(5);
    const critical = watch(() => g.acquire({ priority: 'critical' }));
    jest.advanceTimersByTime(20);
    await flush();
    // e1e0fd9: the stalled slots are "due" forever, the kept slot goes to low, and critical
    // waits 20 ms for a release that does not come, then is refused `full`.
    expect(low.state).toBe('shed-priority');
    expect(critical.state).toBe('granted');
  });

  it('does not lend a free slot to a lower level while a higher level waits briefly for one', async () => {
    const g = steady(5);
    const held = [0, 1, 2].map(() => g.acquire({ priority: 'low' }) as Release);
    held.push(g.acquire({ priority: 'critical' }) as Release);
    jest.advanceTimersByTime(90);
    // One slot free, kept for critical, no release due yet: high waits briefly (up to 20 ms).
    const high = watch(() => g.acquire({ priority: 'high' }));
    expect(high.state).toBe('pending');
    jest.advanceTimersByTime(10);
    // The held slots are now due: e1e0fd9 lends the free slot to low, ahead of the waiting high.
    const low = watch(() => g.acquire({ priority: 'low' }));
    expect(low.state).not.toBe('granted');
    jest.advanceTimersByTime(4);
    held.shift()!(); // the first due release goes to the waiting high
    await flush();
    expect(high.state).toBe('granted');
    for (const release of held) release();
  });
});
