import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';
import {
  GaugeAbortedError,
  GaugeExhaustedError,
  PressureGauge,
  type PriorityLevel,
  type QueueDiscipline,
  type Release,
} from '../../src';

// Random arrivals (with priorities and signals), aborts and time steps against a queued gauge of
// each discipline, every holder releasing after its own random hold (a timer, so releases and
// queue deadlines fall due at the same instants, in any order). Checked: no waiter is ever served
// at or past its own deadline; a refusal says why (timeout only once the deadline came, shed-delay
// only under codel); and at the end every call settled once, nothing is held or queued and no
// timer is left.

type Op =
  | { op: 'acquire'; priority: PriorityLevel | undefined; signal: boolean; holdMs: number }
  | { op: 'abort'; pick: number }
  | { op: 'advance'; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('acquire' as const),
      priority: fc.constantFrom<PriorityLevel | undefined>(undefined, undefined, 'high', 'low'),
      signal: fc.boolean(),
      holdMs: fc.integer({ min: 0, max: 40 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('abort' as const), pick: fc.nat() }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('advance' as const),
      ms: fc.integer({ min: 0, max: 30 }),
    }),
  },
);
const configArb = fc.record({
  limit: fc.integer({ min: 1, max: 3 }),
  size: fc.integer({ min: 1, max: 8 }),
  timeoutMs: fc.integer({ min: 1, max: 60 }),
  discipline: fc.constantFrom<QueueDiscipline>('fifo', 'lifo', 'codel'),
  targetMs: fc.integer({ min: 1, max: 10 }),
  intervalMs: fc.integer({ min: 1, max: 50 }),
});

interface Call {
  arrived: number;
  settled: number;
  state: 'waiting' | 'held' | 'done';
  controller?: AbortController;
}

async function run(config: typeof configArb extends fc.Arbitrary<infer C> ? C : never, ops: Op[]) {
  const { limit, size, timeoutMs, discipline } = config;
  const queue =
    discipline === 'codel'
      ? { size, timeoutMs, discipline, targetMs: config.targetMs, intervalMs: config.intervalMs }
      : { size, timeoutMs, discipline };
  const g = new PressureGauge({ name: 'q', limit, queue });
  const calls: Call[] = [];
  const late: string[] = [];
  const grant = (c: Call, release: Release, holdMs: number) => {
    c.settled++;
    c.state = 'held';
    const waited = performance.now() - c.arrived;
    if (waited >= timeoutMs) late.push(`served after ${waited} ms (timeout ${timeoutMs} ms)`);
    setTimeout(() => {
      c.state = 'done';
      release();
    }, holdMs);
  };
  const refuse = (c: Call, error: unknown) => {
    c.settled++;
    c.state = 'done';
    const waited = performance.now() - c.arrived;
    if (error instanceof GaugeExhaustedError) {
      if (error.reason === 'timeout') expect(waited).toBeGreaterThanOrEqual(timeoutMs);
      if (error.reason === 'shed-delay') expect(discipline).toBe('codel');
      expect(error.retryAfterSeconds).toBe(g.retryAfterSeconds);
    } else if (!(error instanceof GaugeAbortedError)) throw error;
  };
  for (const step of ops) {
    if (step.op === 'acquire') {
      const c: Call = { arrived: performance.now(), settled: 0, state: 'waiting' };
      calls.push(c);
      if (step.signal) c.controller = new AbortController();
      try {
        const slot = g.acquire({ priority: step.priority, signal: c.controller?.signal });
        if (typeof slot === 'function') grant(c, slot, step.holdMs);
        else
          slot.then(
            (release) => grant(c, release, step.holdMs),
            (error: unknown) => refuse(c, error),
          );
      } catch (error) {
        refuse(c, error);
      }
      await Promise.resolve();
    } else if (step.op === 'abort') {
      const waiting = calls.filter((c) => c.state === 'waiting' && c.controller);
      waiting[step.pick % Math.max(1, waiting.length)]?.controller?.abort();
      await jest.advanceTimersByTimeAsync(0);
    } else {
      // Async: each timer's promise callbacks run before the next timer, at its instant.
      await jest.advanceTimersByTimeAsync(step.ms);
    }
    expect(g.inFlight).toBeLessThanOrEqual(limit);
    expect(g.queued).toBeLessThanOrEqual(size);
  }
  await jest.advanceTimersByTimeAsync((calls.length + 1) * (timeoutMs + 40));
  expect(late).toEqual([]);
  expect(g.inFlight).toBe(0);
  expect(g.queued).toBe(0);
  for (const c of calls) expect(c.settled).toBe(1);
  expect(g.admitted + g.rejected + g.timedOut + g.aborted).toBe(calls.length);
  expect(jest.getTimerCount()).toBe(0);
}

describe('queue deadlines (property)', () => {
  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('in every discipline, nobody is served past its deadline, refusals say why, nothing leaks', async () => {
    await fc.assert(
      fc.asyncProperty(configArb, fc.array(opArb, { maxLength: 60 }), (config, ops) =>
        run(config, ops),
      ),
      { numRuns: 300 },
    );
  });

  it('a waiter whose deadline falls due as a slot frees, before its timer fires, is not served', async () => {
    for (const discipline of ['fifo', 'lifo', 'codel'] as const) {
      const g = new PressureGauge({
        name: 'q',
        limit: 1,
        queue: { size: 2, timeoutMs: 100, discipline },
      });
      const holder = g.acquire() as Release;
      setTimeout(holder, 100); // armed before the queue's deadline timer: fires first at t = 100
      const outcome = (g.acquire() as Promise<Release>).then(
        () => 'served',
        (error: unknown) => (error instanceof GaugeExhaustedError ? error.reason : 'other'),
      );
      await jest.advanceTimersByTimeAsync(100);
      expect(await outcome).toBe('timeout');
      expect(g.inFlight).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
    }
  });
});
