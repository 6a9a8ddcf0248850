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
import { flush } from '../support/wait';

// Random arrivals (with random priorities and signals), releases, aborts and time steps against
// a gauge of each discipline, fail-fast or queued. After every step: the limit and the queue size
// hold, and the counters add up; at the end, after releasing everything and passing every
// deadline, every call has settled exactly once, nothing is held or queued and no timer is left.

type Op =
  | { op: 'acquire'; priority: PriorityLevel | undefined; signal: boolean }
  | { op: 'release'; pick: number }
  | { op: 'abort'; pick: number }
  | { op: 'advance'; ms: number };

const priorityArb = fc.constantFrom<PriorityLevel | undefined>(
  undefined,
  'critical',
  'high',
  'normal',
  'low',
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('acquire' as const),
      priority: priorityArb,
      signal: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('release' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('abort' as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('advance' as const),
      ms: fc.integer({ min: 0, max: 60 }),
    }),
  },
);
const configArb = fc.record({
  limit: fc.integer({ min: 1, max: 4 }),
  size: fc.integer({ min: 0, max: 5 }),
  timeoutMs: fc.integer({ min: 1, max: 100 }),
  discipline: fc.constantFrom<QueueDiscipline>('fifo', 'lifo', 'codel'),
  targetMs: fc.integer({ min: 1, max: 10 }),
  intervalMs: fc.integer({ min: 1, max: 50 }),
  // fail fast only: the brief wait of higher levels (default, none, or a fixed one)
  priorityWaitMs: fc.constantFrom<number | undefined>(undefined, 0, 5, 40),
});

interface Call {
  state: 'waiting' | 'held' | 'refused' | 'released';
  settled: number;
  release?: Release;
  controller?: AbortController;
}

async function run(config: typeof configArb extends fc.Arbitrary<infer C> ? C : never, ops: Op[]) {
  const { limit, size, timeoutMs, discipline } = config;
  const queue =
    size === 0
      ? undefined
      : discipline === 'codel'
        ? { size, timeoutMs, discipline, targetMs: config.targetMs, intervalMs: config.intervalMs }
        : { size, timeoutMs, discipline };
  const g = new PressureGauge({
    name: 'p',
    limit,
    ...(queue === undefined ? { priorityWaitMs: config.priorityWaitMs } : { queue }),
  });
  const calls: Call[] = [];
  let released = 0;
  const check = () => {
    expect(g.inFlight).toBeLessThanOrEqual(limit);
    // fail fast: only higher levels' brief waiters, at most one per slot a full gauge frees in time
    if (size > 0) expect(g.queued).toBeLessThanOrEqual(size);
    const held = calls.filter((c) => c.state === 'held').length;
    expect(g.inFlight).toBe(held);
    expect(g.admitted).toBe(held + released);
    expect(g.queued).toBe(calls.filter((c) => c.state === 'waiting').length);
    expect(g.admitted + g.rejected + g.timedOut + g.aborted + g.queued).toBe(calls.length);
  };
  const grant = (c: Call, release: Release) => {
    c.settled++;
    c.state = 'held';
    c.release = release;
  };
  const refuse = (c: Call, error: unknown) => {
    c.settled++;
    c.state = 'refused';
    if (!(error instanceof GaugeExhaustedError || error instanceof GaugeAbortedError)) throw error;
  };
  for (const step of ops) {
    switch (step.op) {
      case 'acquire': {
        const c: Call = { state: 'waiting', settled: 0 };
        calls.push(c);
        if (step.signal) c.controller = new AbortController();
        try {
          const slot = g.acquire({ priority: step.priority, signal: c.controller?.signal });
          if (typeof slot === 'function') grant(c, slot);
          else
            slot.then(
              (release) => grant(c, release),
              (error: unknown) => refuse(c, error),
            );
        } catch (error) {
          refuse(c, error);
        }
        break;
      }
      case 'release': {
        const held = calls.filter((c) => c.state === 'held');
        const c = held[step.pick % Math.max(1, held.length)];
        if (c?.release) {
          c.state = 'released';
          released++;
          c.release();
          c.release(); // idempotent
        }
        break;
      }
      case 'abort': {
        const waiting = calls.filter((c) => c.state === 'waiting' && c.controller);
        waiting[step.pick % Math.max(1, waiting.length)]?.controller?.abort();
        break;
      }
      case 'advance':
        jest.advanceTimersByTime(step.ms);
        break;
    }
    await flush();
    check();
  }
  // Wind down: release everything held, let every deadline pass.
  for (let round = 0; round < calls.length + 2; round++) {
    for (const c of calls) {
      if (c.state === 'held') {
        c.state = 'released';
        released++;
        c.release?.();
      }
    }
    // a brief wait lasts at most half the mean hold (< 60 ops × 60 ms) or 40 ms
    jest.advanceTimersByTime(size === 0 ? 2000 : timeoutMs + 1);
    await flush();
  }
  check();
  expect(g.inFlight).toBe(0);
  expect(g.queued).toBe(0);
  for (const c of calls) expect(c.settled).toBe(1);
  expect(jest.getTimerCount()).toBe(0);
}

describe('priorities and disciplines (property)', () => {
  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('the limit and queue size hold, counters add up, every call settles once, nothing leaks', async () => {
    await fc.assert(
      fc.asyncProperty(configArb, fc.array(opArb, { maxLength: 60 }), (config, ops) =>
        run(config, ops),
      ),
      { numRuns: 300 },
    );
  });

  it('in a queue, no waiter is served while a higher level waits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<QueueDiscipline>('fifo', 'lifo', 'codel'),
        fc.array(priorityArb, { minLength: 1, maxLength: 12 }),
        async (discipline, levels) => {
          const g = new PressureGauge({
            name: 'p',
            limit: 1,
            queue: { size: 20, timeoutMs: 10_000, discipline },
          });
          const holder = g.acquire() as Release;
          const rank = (p: PriorityLevel | undefined) =>
            ['critical', 'high', 'normal', 'low'].indexOf(p ?? 'normal');
          const served: number[] = [];
          const releases: Release[] = [];
          for (const level of levels) {
            void (g.acquire({ priority: level }) as Promise<Release>).then((release) => {
              served.push(rank(level));
              releases.push(release);
            });
          }
          holder();
          for (let i = 0; i < levels.length; i++) {
            await flush();
            releases.shift()?.();
          }
          await flush();
          expect(served).toEqual([...levels.map(rank)].sort((a, b) => a - b));
        },
      ),
      { numRuns: 200 },
    );
  });
});
