import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { GaugeExhaustedError, type Release } from '../../src';
import { fakeGauge } from './support/fake-backend';

/*
 * A SharedGauge's waits ending for two reasons at (nearly) the same time, on in-memory lease
 * scripts (no Redis): every promise settles, every slot comes back once, the counters add up.
 */
const cleanups: (() => void)[] = [];
afterEach(() => {
  jest.restoreAllMocks();
  for (const cleanup of cleanups.splice(0)) cleanup();
});
function setup(...args: Parameters<typeof fakeGauge>) {
  const made = fakeGauge(...args);
  cleanups.push(() => {
    made.gauge.close();
    made.health.close();
  });
  return made;
}

describe('a shared gauge failing open, its local slot freed as the waiter times out', () => {
  it('refuses the waiter whose deadline passed (timer not run yet) and keeps the slot free', async () => {
    const { gauge, health } = setup({
      limit: 1,
      queue: { size: 5, timeoutMs: 100 },
      whenStoreDown: { localLimit: 1 },
    });
    health.markUp();
    health.markDown('boom');
    const local = gauge.acquire() as Release; // the one local slot
    const waiting = Promise.resolve(gauge.acquire());
    waiting.catch(() => undefined);
    expect(gauge.queued).toBe(1);
    // The loop was busy past the waiter's deadline: its timer has not run yet.
    const now = performance.now();
    jest.spyOn(performance, 'now').mockReturnValue(now + 200);
    expect(() => local()).not.toThrow();
    jest.restoreAllMocks();
    await expect(waiting).rejects.toEqual(expect.objectContaining({ reason: 'timeout' }));
    await expect(waiting).rejects.toBeInstanceOf(GaugeExhaustedError);
    expect(gauge.queued).toBe(0);
    expect(gauge.inFlight).toBe(0);
    expect([gauge.admitted, gauge.timedOut, gauge.rejected, gauge.aborted]).toEqual([1, 1, 0, 0]);
    const again = gauge.acquire(); // the freed local slot is there for the next caller
    expect(typeof again).toBe('function');
    (again as Release)();
    expect(gauge.inFlight).toBe(0);
  });
});

describe('a shared gauge closed while an attempt is on the wire', () => {
  it('refuses the caller the store found full, instead of queueing it in a closed gauge', async () => {
    const { gauge, health, leases } = setup({ limit: 1, queue: { size: 5, timeoutMs: 60_000 } });
    health.markUp();
    leases.add('other-instance:1'); // the store is full
    const waiting = Promise.resolve(gauge.acquire()); // its attempt is on the wire
    waiting.catch(() => undefined);
    gauge.close();
    await expect(waiting).rejects.toThrow(/is closed/);
    expect(gauge.queued).toBe(0);
    leases.clear();
    gauge.wake(); // a release elsewhere: nothing may be served by a closed gauge
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(gauge.inFlight).toBe(0);
    expect(leases.size).toBe(0);
    expect(gauge.admitted + gauge.rejected + gauge.timedOut + gauge.aborted).toBe(1);
  });

  it('gives back a lease granted after close and refuses the caller as closed, not as aborted', async () => {
    const { gauge, health, leases } = setup({ limit: 1, queue: { size: 5, timeoutMs: 60_000 } });
    health.markUp();
    const waiting = Promise.resolve(gauge.acquire()); // its attempt is on the wire
    waiting.catch(() => undefined);
    gauge.close();
    await expect(waiting).rejects.toThrow(/is closed/);
    expect(leases.size).toBe(0);
    expect(gauge.inFlight).toBe(0);
    expect([gauge.admitted, gauge.rejected, gauge.aborted]).toEqual([0, 1, 0]);
  });
});
