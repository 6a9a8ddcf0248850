import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { flush } from '../../test/support/wait';
import { GaugeAbortedError, GaugeExhaustedError } from './gauge.errors';
import type { Release } from './gauge.interface';
import { PressureGauge } from './pressure-gauge';

/*
 * Waits that end for two reasons at (nearly) the same time: a grant and an abort in one tick, a
 * listener re-entering the gauge while a wait starts, close() or setLimit() with waiters. Every
 * promise settles, every slot comes back once, no timer is left behind, the counters add up.
 */
beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
});
afterEach(() => {
  jest.useRealTimers();
});

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
      if (error instanceof GaugeExhaustedError) seen.state = error.reason;
      else if (error instanceof GaugeAbortedError) seen.state = 'aborted';
      else seen.state = `error: ${String(error)}`;
    },
  );
  return seen;
}

/** A fail-fast gauge of `limit` that learnt 50 ms holds, every slot held by `critical` callers. */
function fullGrace(limit: number) {
  const g = new PressureGauge({ name: 'g', limit, priorityWaitMs: 10 });
  const warm = g.acquire({ priority: 'critical' }) as Release;
  jest.advanceTimersByTime(50);
  warm();
  const held: Release[] = [];
  for (let i = 0; i < limit; i++) held.push(g.acquire({ priority: 'critical' }) as Release);
  // A `low` caller refused: a level below the others fills the gauge, so they may wait briefly.
  expect(() => g.acquire({ priority: 'low' })).toThrow(GaugeExhaustedError);
  return { g, held };
}

function settledCount(g: PressureGauge): number {
  return g.admitted + g.rejected + g.timedOut + g.aborted;
}

describe('brief waits (fail fast, priorities), two endings at once', () => {
  it('a listener that frees a slot as a caller starts waiting serves it and leaves no timer', async () => {
    const { g, held } = fullGrace(1);
    g.subscribe((event) => {
      if (event.type === 'queued') held.shift()?.();
    });
    const waiting = watch(g.acquire({ priority: 'critical' }));
    await flush();
    expect(waiting.state).toBe('granted');
    expect(g.queued).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    waiting.release!();
    expect(g.inFlight).toBe(0);
  });

  it('abort in the same tick as the grant: the caller keeps the slot, released once', async () => {
    const { g, held } = fullGrace(1);
    const abort = new AbortController();
    const waiting = watch(g.acquire({ priority: 'critical', signal: abort.signal }));
    held[0]!();
    abort.abort(); // the client leaves before the grant's `.then` ran
    await flush();
    expect(waiting.state).toBe('granted');
    expect(g.aborted).toBe(0);
    waiting.release!();
    waiting.release!();
    expect(g.inFlight).toBe(0);
  });

  it('abort then release in the same tick: the waiter is refused, the slot goes back', async () => {
    const { g, held } = fullGrace(1);
    const abort = new AbortController();
    const waiting = watch(g.acquire({ priority: 'critical', signal: abort.signal }));
    abort.abort();
    held[0]!();
    await flush();
    expect(waiting.state).toBe('aborted');
    expect([g.inFlight, g.queued, g.aborted]).toEqual([0, 0, 1]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('a cut and a raise of the limit while a caller waits briefly: no slot counted for nobody', async () => {
    const { g, held } = fullGrace(2);
    const waiting = watch(g.acquire({ priority: 'critical' }));
    expect(g.queued).toBe(1);
    g.setLimit(1);
    held[0]!(); // over the new limit: the slot is not handed over
    await flush();
    expect([waiting.state, g.inFlight]).toEqual(['pending', 1]);
    g.setLimit(3); // free slots: the waiter is served at once
    await flush();
    expect(waiting.state).toBe('granted');
    expect([g.inFlight, g.queued]).toEqual([2, 0]);
    held[1]!();
    waiting.release!();
    expect(g.inFlight).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('close() with brief waiters, a listener re-entering acquire: all refused, nothing waits', async () => {
    const { g, held } = fullGrace(1);
    let reentered = 0;
    const waiting = watch(g.acquire({ priority: 'critical' }));
    g.subscribe((event) => {
      if (event.type === 'rejected' && reentered++ < 3) watch(g.acquire({ priority: 'critical' }));
    });
    const before = settledCount(g);
    g.close();
    await flush();
    expect(waiting.state).toBe('full');
    expect(g.queued).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    held[0]!();
    expect(g.inFlight).toBe(0);
    expect(settledCount(g)).toBe(before + 4); // the waiter, and three refused at once
  });
});

describe('queue waits, two endings at once', () => {
  it('a listener that releases on the admission of a waiter frees exactly one slot', async () => {
    const g = new PressureGauge({ name: 'q', limit: 1, queue: { size: 5, timeoutMs: 100 } });
    const first = g.acquire() as Release;
    const waiting = [watch(g.acquire()), watch(g.acquire())];
    let again = true;
    g.subscribe((event) => {
      if (event.type === 'admitted' && again) {
        again = false;
        first(); // the same slot, released again while it is being handed over
      }
    });
    first();
    await flush();
    expect(waiting.map((w) => w.state)).toEqual(['granted', 'pending']);
    expect([g.inFlight, g.queued]).toEqual([1, 1]);
    waiting[0]!.release!();
    await flush();
    waiting[1]!.release!();
    expect([g.inFlight, g.queued]).toEqual([0, 0]);
  });

  it('a waiter timing out at the very instant of a hand-off is refused; the slot stays free', async () => {
    const g = new PressureGauge({ name: 'q', limit: 1, queue: { size: 5, timeoutMs: 100 } });
    const first = g.acquire() as Release;
    const waiting = watch(g.acquire());
    const now = performance.now();
    const clock = jest.spyOn(performance, 'now').mockReturnValue(now + 100); // its deadline exactly
    first();
    clock.mockRestore();
    await flush();
    expect(waiting.state).toBe('timeout');
    expect([g.inFlight, g.queued, g.timedOut]).toEqual([0, 0, 1]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('close() while a listener re-enters acquire on each refusal: nobody is left waiting', async () => {
    const g = new PressureGauge({ name: 'q', limit: 1, queue: { size: 5, timeoutMs: 100 } });
    const held = g.acquire() as Release;
    const waiting = [watch(g.acquire()), watch(g.acquire())];
    let reentered = 0;
    g.subscribe((event) => {
      if (event.type === 'rejected' && reentered++ < 3) watch(g.acquire());
    });
    g.close();
    await flush();
    expect(waiting.map((w) => w.state)).toEqual(['queue-full', 'queue-full']);
    expect(g.queued).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    held();
    expect(g.inFlight).toBe(0);
  });

  it('a listener told of an abort that re-enters acquire takes the freed place; one abort counted', async () => {
    const g = new PressureGauge({ name: 'q', limit: 1, queue: { size: 1, timeoutMs: 1000 } });
    const held = g.acquire() as Release;
    const abort = new AbortController();
    const first = watch(g.acquire({ signal: abort.signal }));
    g.subscribe((event) => {
      if (event.type === 'aborted') void Promise.resolve(g.acquire()).catch(() => undefined);
    });
    abort.abort();
    await flush();
    expect(first.state).toBe('aborted');
    expect(g.aborted).toBe(1);
    expect(g.queued).toBe(1); // the listener's caller took the freed place
    held();
    await flush();
    expect([g.inFlight, g.queued]).toEqual([1, 0]);
  });
});

describe('a signal aborted while its caller joins the queue', () => {
  it('a listener told of the waiter shed for it aborts the newcomer: refused at once, not left waiting', async () => {
    const g = new PressureGauge({ name: 'q', limit: 1, queue: { size: 1, timeoutMs: 1000 } });
    const held = g.acquire() as Release;
    const low = watch(g.acquire({ priority: 'low' }));
    const abort = new AbortController();
    g.subscribe((event) => {
      if (event.type === 'rejected') abort.abort(); // the newcomer's client leaves meanwhile
    });
    const high = watch(g.acquire({ priority: 'high', signal: abort.signal }));
    await flush();
    expect(low.state).toBe('shed-priority');
    expect(high.state).toBe('aborted');
    expect([g.queued, g.aborted]).toEqual([0, 1]);
    held();
    expect(g.inFlight).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('the same for a keyed caller: refused at once, and its key is forgotten', async () => {
    const g = new PressureGauge({ name: 'q', limit: 1, queue: { size: 1, timeoutMs: 1000 } });
    const held = g.acquire({ key: 'h' }) as Release;
    const low = watch(g.acquire({ priority: 'low', key: 'l' }));
    const abort = new AbortController();
    g.subscribe((event) => {
      if (event.type === 'rejected') abort.abort();
    });
    const high = watch(g.acquire({ priority: 'high', key: 'k', signal: abort.signal }));
    await flush();
    expect([low.state, high.state]).toEqual(['shed-priority', 'aborted']);
    held();
    expect([g.inFlight, g.queued]).toEqual([0, 0]);
    const keys = (g as unknown as { partitions?: { size: number } }).partitions;
    expect(keys?.size).toBe(0);
  });
});
