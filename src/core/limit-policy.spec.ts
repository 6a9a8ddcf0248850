import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { flush } from '../../test/support/wait';
import { GaugeConfigError } from './gauge.errors';
import type { GaugeEvent, Outcome } from './gauge-events';
import type { Release } from './gauge.interface';
import type { LimitPolicy, LimitPolicyFactory, LimitSample } from './limit-policy';
import { classifyError } from './outcome';
import { PressureGauge } from './pressure-gauge';

/** A policy that records what it is fed and answers the limits the test scripts. */
class ScriptedPolicy implements LimitPolicy {
  readonly samples = true;
  readonly seen: LimitSample[] = [];
  next: number[] = [];
  constructor(public limit: number) {}
  update(sample: LimitSample): number {
    this.seen.push(sample);
    const limit = this.next.shift();
    if (limit !== undefined) this.limit = limit;
    return this.limit;
  }
}

function scripted(initial: number): { factory: LimitPolicyFactory; policy: () => ScriptedPolicy } {
  let made: ScriptedPolicy | undefined;
  return {
    factory: { policy: 'scripted', create: () => (made = new ScriptedPolicy(initial)) },
    policy: () => made!,
  };
}

function sync(slot: Release | Promise<Release>): Release {
  expect(typeof slot).toBe('function');
  return slot as Release;
}

describe('limit seam: setLimit on a fixed gauge', () => {
  it('a raise hands the new slots to waiters at once, oldest first', async () => {
    const g = new PressureGauge({ name: 'g', limit: 1, queue: { size: 5, timeoutMs: 60_000 } });
    const held = sync(g.acquire());
    const order: string[] = [];
    const a = (g.acquire() as Promise<Release>).then((r) => (order.push('a'), r));
    const b = (g.acquire() as Promise<Release>).then((r) => (order.push('b'), r));
    const c = (g.acquire() as Promise<Release>).then((r) => (order.push('c'), r));
    g.setLimit(3);
    await flush();
    expect(order).toEqual(['a', 'b']);
    expect({ limit: g.limit, inFlight: g.inFlight, queued: g.queued }).toEqual({
      limit: 3,
      inFlight: 3,
      queued: 1,
    });
    held();
    (await c)();
    (await a)();
    (await b)();
    expect({ inFlight: g.inFlight, queued: g.queued, admitted: g.admitted }).toEqual({
      inFlight: 0,
      queued: 0,
      admitted: 4,
    });
  });

  it('a cut never revokes held slots: they drain, and nobody is admitted above the new limit', () => {
    const g = new PressureGauge({ name: 'g', limit: 3 });
    const held = [sync(g.acquire()), sync(g.acquire()), sync(g.acquire())];
    g.setLimit(1);
    expect(g.inFlight).toBe(3);
    held[0]!();
    expect(() => g.acquire()).toThrow(/at its limit/);
    held[1]!();
    expect(() => g.acquire()).toThrow(/at its limit/);
    held[2]!();
    const next = sync(g.acquire());
    expect(g.inFlight).toBe(1);
    next();
  });

  it('a cut while callers wait serves them only once inFlight is under the new limit', async () => {
    const g = new PressureGauge({ name: 'g', limit: 2, queue: { size: 5, timeoutMs: 60_000 } });
    const held = [sync(g.acquire()), sync(g.acquire())];
    let served = false;
    const waiting = (g.acquire() as Promise<Release>).then((r) => ((served = true), r));
    g.setLimit(1);
    held[0]!();
    await flush();
    expect(served).toBe(false); // 1 still held = the new limit
    held[1]!();
    (await waiting)();
    expect(served).toBe(true);
    expect(g.inFlight).toBe(0);
  });

  it.each([
    0,
    -1,
    1.5,
    NaN,
    Infinity,
    '3' as unknown as number,
    Object.create(null) as number,
    Symbol('n') as unknown as number,
    { toString: () => 'x', valueOf: () => 3 } as unknown as number,
  ])('refuses %p', (bad) => {
    const g = new PressureGauge({ name: 'g', limit: 2 });
    expect(() => g.setLimit(bad)).toThrow(GaugeConfigError);
    expect(() => g.setLimit(bad)).toThrow(/Gauge "g": setLimit\(\)/);
    expect(g.limit).toBe(2);
  });

  it('is refused on a gauge whose limit a policy decides', () => {
    const g = new PressureGauge({ name: 'g', limit: scripted(4).factory });
    expect(() => g.setLimit(3)).toThrow(/limit policy decides/);
  });
});

describe('limit seam: a policy learns from each release', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('is fed held time, outcome and inFlight; its answer applies at once', async () => {
    const { factory, policy } = scripted(2);
    const g = new PressureGauge({
      name: 'g',
      limit: factory,
      queue: { size: 5, timeoutMs: 60_000 },
    });
    expect(g.limit).toBe(2);
    const a = sync(g.acquire());
    const b = sync(g.acquire());
    let servedC = false;
    const c = (g.acquire() as Promise<Release>).then((r) => ((servedC = true), r));
    jest.advanceTimersByTime(40);
    policy().next = [1];
    a('dropped');
    expect(policy().seen).toEqual([{ heldMs: 40, outcome: 'dropped', inFlight: 2, at: 40 }]);
    expect(g.limit).toBe(1);
    await Promise.resolve();
    expect(servedC).toBe(false); // b still holds the only slot of the new limit
    policy().next = [3];
    jest.advanceTimersByTime(10);
    b();
    expect(policy().seen[1]).toEqual({ heldMs: 50, outcome: 'succeeded', inFlight: 1, at: 50 });
    (await c)('ignored');
    expect(policy().seen[2]!.outcome).toBe('ignored');
    expect(g.limit).toBe(3);
    expect(g.inFlight).toBe(0);
  });

  it('process() reports an error by the gauge classification (a bug is failed, a 4xx ignored)', async () => {
    const { factory, policy } = scripted(2);
    const g = new PressureGauge({ name: 'g', limit: factory });
    await expect(g.process(() => Promise.reject(new Error('bug')))).rejects.toThrow('bug');
    const clientError = Object.assign(new Error('bad'), { status: 400 });
    await expect(g.process(() => Promise.reject(clientError))).rejects.toBe(clientError);
    await g.process(() => 'ok');
    expect(policy().seen.map((s) => s.outcome)).toEqual(['failed', 'ignored', 'succeeded']);
  });

  it('a per-gauge classify overrides the default', async () => {
    const { factory, policy } = scripted(2);
    const g = new PressureGauge({ name: 'g', limit: factory, classify: () => 'dropped' });
    await expect(g.process(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(policy().seen.map((s) => s.outcome)).toEqual(['dropped']);
  });

  it('bad policy options fail where the gauge is built, naming it', () => {
    const failing: LimitPolicyFactory = {
      policy: 'broken',
      create: (where) => {
        throw new GaugeConfigError(`${where}: option "max" must be >= min`);
      },
    };
    expect(() => new PressureGauge({ name: 'db', limit: failing })).toThrow(
      /Gauge "db": option "limit" \(broken\): option "max"/,
    );
  });
});

describe('events: one source of figures', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('reports every decision once, and the counters agree with the events', async () => {
    const g = new PressureGauge({ name: 'g', limit: 1, queue: { size: 1, timeoutMs: 100 } });
    const events: GaugeEvent[] = [];
    const stop = g.subscribe((event) => events.push(event));
    const a = sync(g.acquire());
    const waiter = g.acquire() as Promise<Release>;
    expect(() => g.acquire()).toThrow(/queue is full/);
    jest.advanceTimersByTime(30);
    a();
    const b = await waiter;
    jest.advanceTimersByTime(5);
    b('failed');
    const timingOut = g.acquire();
    expect(typeof timingOut).toBe('function');
    (timingOut as Release)();
    sync(g.acquire()); // held: the next waits and times out
    const late = (g.acquire() as Promise<Release>).catch((e: unknown) => e);
    jest.advanceTimersByTime(100);
    await late;
    const aborting = new AbortController();
    const gone = (g.acquire({ signal: aborting.signal }) as Promise<Release>).catch(() => 'gone');
    aborting.abort();
    await gone;
    g.setLimit(2);
    stop();
    sync(g.acquire()); // after unsubscribing: counted, not reported
    expect(events.map((e) => e.type)).toEqual([
      'admitted',
      'queued',
      'rejected',
      'released',
      'admitted',
      'released',
      'admitted',
      'released',
      'admitted',
      'queued',
      'timed-out',
      'queued',
      'aborted',
      'limit-changed',
    ]);
    expect(events[3]).toEqual({ type: 'released', gauge: 'g', heldMs: 30, outcome: 'succeeded' });
    expect(events[4]).toEqual({ type: 'admitted', gauge: 'g', waitedMs: 30 });
    expect(events[5]).toMatchObject({ heldMs: 5, outcome: 'failed' });
    expect(events[13]).toEqual({ type: 'limit-changed', gauge: 'g', from: 1, to: 2 });
    const count = (type: GaugeEvent['type']) => events.filter((e) => e.type === type).length;
    expect({ admitted: g.admitted, rejected: g.rejected, timedOut: g.timedOut }).toEqual({
      admitted: count('admitted') + 1,
      rejected: count('rejected'),
      timedOut: count('timed-out'),
    });
    expect(g.aborted).toBe(count('aborted'));
  });

  it("a listener that throws becomes a warning, never the caller's error", () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const g = new PressureGauge({ name: 'g', limit: 1 });
    g.subscribe(() => {
      throw new Error('listener bug');
    });
    const release = sync(g.acquire());
    expect(() => release()).not.toThrow();
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('listener bug'), expect.any(String));
    warn.mockRestore();
  });
});

describe('classifyError', () => {
  const cases: Array<[string, unknown, Outcome]> = [
    ['a plain Error (a bug)', new Error('x'), 'failed'],
    ['a 500', Object.assign(new Error(), { getStatus: () => 500 }), 'failed'],
    ['a 400', Object.assign(new Error(), { getStatus: () => 400 }), 'ignored'],
    ['a 404 statusCode', { statusCode: 404 }, 'ignored'],
    ['a 429 from a dependency', { status: 429 }, 'dropped'],
    ['a 503', { status: 503 }, 'dropped'],
    ['a 504', { status: 504 }, 'dropped'],
    ['an rxjs TimeoutError', Object.assign(new Error(), { name: 'TimeoutError' }), 'dropped'],
    ['an AbortError', Object.assign(new Error(), { name: 'AbortError' }), 'dropped'],
    ['a thrown string', 'oops', 'failed'],
    ['undefined', undefined, 'failed'],
  ];
  it.each(cases)('%s → %s', (_what, error, outcome) => {
    expect(classifyError(error)).toBe(outcome);
  });
});
