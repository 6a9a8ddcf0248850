import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { GaugeEvent } from './gauge-events';
import type { Release } from './gauge.interface';
import { GaugeOverdueError } from './hold-watch';
import { PressureGauge } from './pressure-gauge';

describe('maxHoldMs: work that never ends', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('an overdue slot raises one event and aborts its work signal, but is not taken back', async () => {
    const g = new PressureGauge({ name: 'g', limit: 1, maxHoldMs: 100 });
    const events: GaugeEvent[] = [];
    g.subscribe((event) => events.push(event));
    let seen: AbortSignal | undefined;
    let finish!: () => void;
    const work = g.process(
      (signal) =>
        new Promise<string>((resolve) => {
          seen = signal;
          finish = () => resolve('done');
        }),
    );
    jest.advanceTimersByTime(99);
    expect(seen!.aborted).toBe(false);
    jest.advanceTimersByTime(1);
    expect(seen!.aborted).toBe(true);
    expect(seen!.reason).toBeInstanceOf(GaugeOverdueError);
    expect(events.filter((e) => e.type === 'overdue')).toEqual([
      { type: 'overdue', gauge: 'g', heldMs: 100 },
    ]);
    expect(g.inFlight).toBe(1); // still held: the work may still run
    expect(() => g.acquire()).toThrow(/at its limit/);
    jest.advanceTimersByTime(1000);
    expect(events.filter((e) => e.type === 'overdue')).toHaveLength(1);
    finish();
    await expect(work).resolves.toBe('done');
    expect(g.inFlight).toBe(0);
  });

  it('a slot given back in time is never overdue, and leaves no timer', () => {
    const g = new PressureGauge({ name: 'g', limit: 2, maxHoldMs: 100 });
    const events: string[] = [];
    g.subscribe((event) => events.push(event.type));
    const a = g.acquire() as Release;
    jest.advanceTimersByTime(50);
    a();
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(100);
    expect(events).not.toContain('overdue');
  });

  it("the work signal also fires when the caller's signal does", async () => {
    const g = new PressureGauge({ name: 'g', limit: 1, maxHoldMs: 10_000 });
    const caller = new AbortController();
    let seen: AbortSignal | undefined;
    const work = g.process(
      (signal) =>
        new Promise<void>((resolve) => {
          seen = signal;
          signal.addEventListener('abort', () => resolve());
        }),
      { signal: caller.signal },
    );
    caller.abort(new Error('caller left'));
    await work;
    expect(seen!.reason).toEqual(new Error('caller left'));
    expect(g.inFlight).toBe(0);
  });

  it('work without a parameter is called with none; without maxHoldMs the caller signal is passed', async () => {
    const g = new PressureGauge({ name: 'g', limit: 1 });
    const args: unknown[][] = [];
    await g.process((...received: unknown[]) => void args.push(received));
    const caller = new AbortController();
    let seen: AbortSignal | undefined;
    await g.process((signal) => void (seen = signal), { signal: caller.signal });
    expect(args).toEqual([[]]);
    expect(seen).toBe(caller.signal);
  });

  it('rejects a bad maxHoldMs at construction, naming the gauge', () => {
    expect(() => new PressureGauge({ name: 'g', maxHoldMs: 0 })).toThrow(
      /Gauge "g": option "maxHoldMs"/,
    );
  });
});
