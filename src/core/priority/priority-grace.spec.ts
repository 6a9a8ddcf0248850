import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { flush } from '../../../test/support/wait';
import { GaugeAbortedError, GaugeExhaustedError } from '../gauge.errors';
import type { GaugeEvent } from '../gauge-events';
import type { Release } from '../gauge.interface';
import type { QueueOptions } from '../queue-options';
import { PressureGauge } from '../pressure-gauge';
import type { PriorityLevel } from './priority.level';

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

/** How a pending acquire settled: 'granted', a refusal reason, 'aborted', or 'pending'. */
function watch(slot: Release | Promise<Release>): { state: string; release?: Release } {
  const seen: { state: string; release?: Release } = { state: 'pending' };
  if (typeof slot === 'function') return { state: 'granted', release: slot };
  slot.then(
    (release) => {
      seen.state = 'granted';
      seen.release = release;
    },
    (error: unknown) => {
      if (error instanceof GaugeExhaustedError) {
        seen.state = `${error.reason}/${error.retryAfterSeconds}`;
      } else if (error instanceof GaugeAbortedError) seen.state = 'aborted';
      else throw error;
    },
  );
  return seen;
}

/**
 * A gauge of `limit` that has learnt 50 ms holds (so the default wait is 25 ms), every slot held
 * (returned, oldest first), and a `low` caller just refused: a level below the others fills it.
 */
function full(
  limit: number,
  options: { priorityWaitMs?: number; retryAfterSeconds?: number; queue?: QueueOptions } = {},
) {
  const g = new PressureGauge({ name: 'g', limit, ...options });
  const warm = g.acquire({ priority: 'critical' }) as Release;
  jest.advanceTimersByTime(50);
  warm();
  const held: Release[] = [];
  for (let i = 0; i < limit; i++) held.push(g.acquire({ priority: 'critical' }) as Release);
  expect(reasonOf(() => g.acquire({ priority: 'low' }))).toBe('full'); // low never waits
  return { g, held };
}

describe('brief wait of higher levels on a fail-fast gauge', () => {
  it('a critical caller finding the gauge full waits for the next freed slot, before anyone else', async () => {
    const { g, held } = full(4);
    const critical = watch(g.acquire({ priority: 'critical' }));
    expect(critical.state).toBe('pending');
    expect(g.queued).toBe(1);
    expect(reasonOf(() => g.acquire({ priority: 'low' }))).toBe('full'); // low never waits
    jest.advanceTimersByTime(10);
    held.shift()!();
    await flush();
    expect(critical.state).toBe('granted');
    expect(g.inFlight).toBe(4); // the freed slot went straight to critical
    expect(g.queued).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    critical.release!();
    for (const release of held) release();
    expect(g.inFlight).toBe(0);
  });

  it('reports the wait as admitted after waitedMs, after a queued event', async () => {
    const { g, held } = full(2);
    const events: GaugeEvent[] = [];
    g.subscribe((event) => events.push(event));
    watch(g.acquire({ priority: 'critical' }));
    jest.advanceTimersByTime(7);
    held.shift()!();
    await flush();
    expect(events.map((e) => e.type)).toEqual(['queued', 'released', 'admitted']);
    const admitted = events[2] as Extract<GaugeEvent, { type: 'admitted' }>;
    expect(admitted.waitedMs).toBe(7);
  });

  it('waits at most half the mean hold time, then is refused as full with the gauge’s Retry-After', async () => {
    const { g } = full(2);
    const events: GaugeEvent[] = [];
    g.subscribe((event) => events.push(event));
    const critical = watch(g.acquire({ priority: 'critical' }));
    jest.advanceTimersByTime(24);
    await flush();
    expect(critical.state).toBe('pending');
    jest.advanceTimersByTime(1);
    await flush();
    expect(critical.state).toBe('full/1');
    expect(g.rejected).toBeGreaterThanOrEqual(1);
    expect(g.timedOut).toBe(0); // a fail-fast refusal, not a queue timeout
    expect(events.at(-1)).toEqual({ type: 'rejected', gauge: 'g', reason: 'full' });
    expect(g.queued).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('a configured priorityWaitMs and retryAfterSeconds are used', async () => {
    const { g } = full(1, { priorityWaitMs: 5, retryAfterSeconds: 3 });
    const critical = watch(g.acquire({ priority: 'critical' }));
    jest.advanceTimersByTime(4);
    await flush();
    expect(critical.state).toBe('pending');
    jest.advanceTimersByTime(1);
    await flush();
    expect(critical.state).toBe('full/3');
  });

  it('a queue of size 0 is a fail-fast gauge: priorityWaitMs is accepted and applies', async () => {
    const { g, held } = full(1, { queue: { size: 0, timeoutMs: 1000 }, priorityWaitMs: 5 });
    const critical = watch(g.acquire({ priority: 'critical' }));
    jest.advanceTimersByTime(4);
    await flush();
    expect(critical.state).toBe('pending');
    jest.advanceTimersByTime(1);
    await flush();
    expect(critical.state).toBe('full/1'); // priorityWaitMs, not queue.timeoutMs, nor its Retry-After
    const next = watch(g.acquire({ priority: 'critical' }));
    held.shift()!();
    await flush();
    expect(next.state).toBe('granted');
    next.release!();
    expect(g.inFlight).toBe(0);
  });

  it('a level refused to keep room for higher ones waits too, and is refused shed-priority', async () => {
    const g = new PressureGauge({ name: 'g', limit: 3, priorityWaitMs: 10 });
    (g.acquire({ priority: 'critical' }) as Release)(); // 0 ms hold: no mean, 1 slot kept
    const lows = [
      g.acquire({ priority: 'low' }) as Release,
      g.acquire({ priority: 'low' }) as Release,
    ];
    expect(reasonOf(() => g.acquire({ priority: 'low' }))).toBe('shed-priority');
    const high = watch(g.acquire({ priority: 'high' })); // the free slot is critical's
    expect(high.state).toBe('pending');
    const critical = watch(g.acquire({ priority: 'critical' }));
    expect(critical.state).toBe('granted'); // takes the kept slot at once, past the waiting high
    critical.release!(); // frees it: high, waiting, gets it
    await flush();
    expect(high.state).toBe('granted');
    const high2 = watch(g.acquire({ priority: 'high' }));
    lows[0]!(); // the freed slot goes to the waiting high, not back to the pool
    await flush();
    expect(high2.state).toBe('granted');
    expect(g.inFlight).toBe(3);
    high.release!();
    const high3 = watch(g.acquire({ priority: 'high' }));
    jest.advanceTimersByTime(10);
    await flush();
    // one slot free all along, kept for critical: the reason says so
    expect(high3.state).toBe('shed-priority/1');
  });

  it('waits only above a level that fills the gauge: critical alone is refused at once', () => {
    const g = new PressureGauge({ name: 'g', limit: 1, priorityWaitMs: 20 });
    g.acquire({ priority: 'critical' }) as Release;
    expect(reasonOf(() => g.acquire({ priority: 'critical' }))).toBe('full');
    expect(g.queued).toBe(0);
  });

  it('priorityWaitMs: 0 never waits; tryAcquire never waits', () => {
    const { g } = full(2, { priorityWaitMs: 0 });
    expect(reasonOf(() => g.acquire({ priority: 'critical' }))).toBe('full');
    const { g: h } = full(2);
    expect(h.tryAcquire()).toBeUndefined();
    expect(h.queued).toBe(0);
  });

  it('few waiters: as many ahead as slots a full gauge frees within the wait, the next refused at once', () => {
    // 4 slots of 50 ms, 25 ms wait: 4 × 25 / 50 = 2 releases expected
    const { g } = full(4);
    const waiting = [
      watch(g.acquire({ priority: 'critical' })),
      watch(g.acquire({ priority: 'high' })),
    ];
    expect(waiting.map((w) => w.state)).toEqual(['pending', 'pending']);
    // Two would be served before another high caller: it is refused at once.
    expect(reasonOf(() => g.acquire({ priority: 'high' }))).toBe('full');
    // A critical caller is served before the high one: one ahead of it, so it waits.
    waiting.push(watch(g.acquire({ priority: 'critical' })));
    expect(waiting.map((w) => w.state)).toEqual(['pending', 'pending', 'pending']);
    expect(reasonOf(() => g.acquire({ priority: 'critical' }))).toBe('full');
    expect(g.queued).toBe(3);
    expect(jest.getTimerCount()).toBe(1); // one timer for the list, not one per waiter
  });

  it('serves the highest level first, then the oldest', async () => {
    const { g, held } = full(10);
    const order: string[] = [];
    const join = (label: string, priority: PriorityLevel) =>
      void (g.acquire({ priority }) as Promise<Release>).then(() => order.push(label));
    join('high1', 'high');
    join('crit1', 'critical');
    join('normal1', 'normal');
    join('crit2', 'critical');
    for (let i = 0; i < 4; i++) held.shift()!();
    await flush();
    expect(order).toEqual(['crit1', 'crit2', 'high1', 'normal1']);
  });

  it('an abort while waiting rejects with GaugeAbortedError and leaves nothing behind', async () => {
    const { g, held } = full(2);
    const controller = new AbortController();
    const critical = watch(g.acquire({ priority: 'critical', signal: controller.signal }));
    controller.abort();
    await flush();
    expect(critical.state).toBe('aborted');
    expect(g.aborted).toBe(1);
    expect(g.queued).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    held.shift()!();
    expect(g.inFlight).toBe(1); // nobody to hand the slot to: it is free
  });

  it('close() refuses waiters as full', async () => {
    const { g } = full(2);
    const critical = watch(g.acquire({ priority: 'critical' }));
    g.close();
    await flush();
    expect(critical.state).toBe('full/1');
    expect(jest.getTimerCount()).toBe(0);
  });

  it('a raised limit serves the waiters at once', async () => {
    const { g } = full(2);
    const critical = watch(g.acquire({ priority: 'critical' }));
    g.setLimit(3);
    await flush();
    expect(critical.state).toBe('granted');
    expect(g.inFlight).toBe(3);
  });

  it('a cut limit hands no freed slot to a waiter while over the limit', async () => {
    const { g, held } = full(3);
    const critical = watch(g.acquire({ priority: 'critical' }));
    g.setLimit(1);
    held.shift()!();
    await flush();
    expect(critical.state).toBe('pending');
    expect(g.inFlight).toBe(2);
    jest.advanceTimersByTime(25);
    await flush();
    expect(critical.state).toBe('full/1');
  });

  it('works with keys: a waiting key is counted and holds its slot once served', async () => {
    const g = new PressureGauge({ name: 'g', limit: 2, priorityWaitMs: 20 });
    const warm = g.acquire({ priority: 'critical', key: 'a' }) as Release;
    jest.advanceTimersByTime(50);
    warm();
    const held = [g.acquire({ priority: 'critical', key: 'b' }) as Release];
    held.push(g.acquire({ priority: 'critical', key: 'c' }) as Release);
    expect(reasonOf(() => g.acquire({ priority: 'low', key: 'd' }))).toBe('full');
    const critical = watch(g.acquire({ priority: 'critical', key: 'a' }));
    held.shift()!();
    await flush();
    expect(critical.state).toBe('granted');
    critical.release!();
    held.shift()!();
    expect(g.inFlight).toBe(0);
  });
});

describe('brief wait, a busy loop', () => {
  it('a waiter whose time ran out before its timer fired is refused at the hand-off, not served late', async () => {
    const { g, held } = full(1, { priorityWaitMs: 10 });
    const events: GaugeEvent[] = [];
    g.subscribe((event) => events.push(event));
    const waiting = watch(g.acquire({ priority: 'critical' }));
    expect(g.queued).toBe(1);
    // The loop is busy for 50 ms: the clock moves, the 10 ms timer has not run yet.
    const now = performance.now();
    const clock = jest.spyOn(performance, 'now').mockReturnValue(now + 50);
    held[0]!();
    clock.mockRestore();
    await flush();
    expect(waiting.state).toBe('full/1');
    expect(g.inFlight).toBe(0);
    expect(g.queued).toBe(0);
    expect(events.some((e) => e.type === 'admitted')).toBe(false);
    jest.advanceTimersByTime(20); // the late timer finds nobody
    expect(jest.getTimerCount()).toBe(0);
  });

  it('a raised limit that finds only waiters whose time ran out keeps the new slot free', async () => {
    const { g, held } = full(1, { priorityWaitMs: 10 });
    const waiting = watch(g.acquire({ priority: 'critical' }));
    const now = performance.now();
    const clock = jest.spyOn(performance, 'now').mockReturnValue(now + 50);
    g.setLimit(2);
    clock.mockRestore();
    await flush();
    expect(waiting.state).toBe('full/1');
    expect(g.inFlight).toBe(1); // only the slot still held: no slot counted for nobody
    held[0]!();
    expect(g.inFlight).toBe(0);
    const again = [g.acquire({ priority: 'critical' }), g.acquire({ priority: 'critical' })];
    expect(again.every((slot) => typeof slot === 'function')).toBe(true);
    for (const slot of again) (slot as Release)();
    expect(g.inFlight).toBe(0);
  });

  it('a listener told of an expiry that makes a caller wait keeps that caller on time', async () => {
    const { g } = full(1, { priorityWaitMs: 10 });
    const later: { state: string }[] = [];
    g.subscribe((event) => {
      if (event.type === 'rejected' && later.length === 0) {
        later.push(watch(g.acquire({ priority: 'critical' })));
      }
    });
    const first = watch(g.acquire({ priority: 'critical' }));
    jest.advanceTimersByTime(10);
    await flush();
    expect(first.state).toBe('full/1');
    expect(later).toHaveLength(1);
    expect(g.queued).toBe(1);
    jest.advanceTimersByTime(10);
    await flush();
    expect(later[0]!.state).toBe('full/1');
    expect(g.queued).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });
});
