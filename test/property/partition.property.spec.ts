import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';
import {
  GaugeAbortedError,
  GaugeExhaustedError,
  PressureGauge,
  type PriorityLevel,
  type QueueDiscipline,
  type LoopReading,
  type LoopSampler,
  type Release,
} from '../../src';
import { flush } from '../support/wait';

// Random keyed arrivals (random keys from a small and a large pool, no key, priorities, signals),
// releases, aborts, time steps, limit changes and event-loop readings against a partitioned gauge,
// fail-fast (with each kind of brief wait) or queued. After every step: the gauge limit and each
// key's limit hold (after a cut, what is over them only drains), the counters add up, and the live-key table
// holds exactly the keys that hold or wait. At the end, after releasing everything and passing
// every deadline, every call settled once, nothing is held, queued or tracked, and no timer is left.

type Op =
  | {
      op: 'acquire';
      key: string | undefined;
      priority: PriorityLevel | undefined;
      signal: boolean;
    }
  | { op: 'release'; pick: number }
  | { op: 'abort'; pick: number }
  | { op: 'advance'; ms: number }
  | { op: 'setLimit'; limit: number }
  | { op: 'loop'; delayMs: number };

const keyArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('a', 'b', 'c') },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 50 }).map((n) => `k${n}`) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('acquire' as const),
      key: keyArb,
      priority: fc.constantFrom<PriorityLevel | undefined>(undefined, undefined, 'critical', 'low'),
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
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('setLimit' as const),
      limit: fc.integer({ min: 1, max: 6 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('loop' as const),
      delayMs: fc.constantFrom(0, 0.5, 3, 40),
    }),
  },
);
const configArb = fc.record({
  limit: fc.integer({ min: 1, max: 6 }),
  perKey: fc.option(fc.oneof(fc.integer({ min: 1, max: 3 }), fc.constantFrom(0.3, 0.5)), {
    nil: undefined,
  }),
  maxKeys: fc.integer({ min: 1, max: 8 }),
  size: fc.integer({ min: 0, max: 5 }),
  timeoutMs: fc.integer({ min: 1, max: 100 }),
  discipline: fc.constantFrom<QueueDiscipline>('fifo', 'lifo', 'codel'),
  // fail fast only: the brief wait (default, none, or a fixed one)
  priorityWaitMs: fc.constantFrom<number | undefined>(undefined, 0, 5, 40),
  eventLoop: fc.boolean(),
});
type Config = typeof configArb extends fc.Arbitrary<infer C> ? C : never;

interface Call {
  key: string | undefined;
  state: 'waiting' | 'held' | 'refused' | 'released';
  settled: number;
  release?: Release;
  controller?: AbortController;
}

/** Event-loop readings the test makes up (fake timers would not move the real sampler). */
class FakeLoop implements LoopSampler {
  private watcher: ((reading: LoopReading) => void) | undefined;
  get watchers(): number {
    return this.watcher === undefined ? 0 : 1;
  }
  watch(watcher: (reading: LoopReading) => void): () => void {
    this.watcher = watcher;
    return () => (this.watcher = undefined);
  }
  read(delayMs: number): void {
    this.watcher?.({ delayMs, utilization: 0 });
  }
}

interface Table {
  size: number;
  tracked: number;
}

async function run(config: Config, ops: Op[]) {
  const { limit, perKey, maxKeys, size, timeoutMs, discipline } = config;
  const loop = new FakeLoop();
  const g = new PressureGauge({
    name: 'p',
    limit,
    partition: { maxKeys, ...(perKey === undefined ? {} : { limit: perKey }) },
    ...(size === 0
      ? { priorityWaitMs: config.priorityWaitMs }
      : { queue: { size, timeoutMs, discipline } }),
    ...(config.eventLoop ? { eventLoop: { sampler: loop } } : {}),
  });
  const table = (g as unknown as { partitions: Table }).partitions;
  const keyCapAt = (gaugeLimit: number) =>
    perKey === undefined ? Infinity : perKey >= 1 ? perKey : Math.ceil(gaugeLimit * perKey);
  const calls: Call[] = [];
  let released = 0;
  // A cut limit lets held slots drain: nothing may be granted while at or over the new limit.
  let inFlightBefore = 0;
  let heldBefore = new Map<string | undefined, number>();
  let mostLimit = limit;
  const check = () => {
    expect(g.inFlight).toBeLessThanOrEqual(Math.max(g.limit, inFlightBefore));
    inFlightBefore = g.inFlight;
    // Queued: at most the queue size; fail fast, brief waiters only, bounded by the releases the
    // gauge gives during the wait (a fixed priorityWaitMs may exceed the mean hold time).
    if (size > 0) expect(g.queued).toBeLessThanOrEqual(size);
    // Each level's newcomer waits only while fewer than the limit would be served before it.
    else if (config.priorityWaitMs === undefined)
      expect(g.queued).toBeLessThanOrEqual(4 * mostLimit);
    const held = calls.filter((c) => c.state === 'held');
    const waiting = calls.filter((c) => c.state === 'waiting');
    expect(g.inFlight).toBe(held.length);
    expect(g.admitted).toBe(held.length + released);
    expect(g.queued).toBe(waiting.length);
    expect(g.admitted + g.rejected + g.timedOut + g.aborted + g.queued).toBe(calls.length);
    // Each key's limit holds (a key tracked one by one; overflow partitions share theirs); after a
    // cut of a fractional cap, a key over the new cap only drains.
    const live = new Set<string | undefined>();
    const perKeyHeld = new Map<string | undefined, number>();
    for (const c of held) perKeyHeld.set(c.key, (perKeyHeld.get(c.key) ?? 0) + 1);
    for (const c of [...held, ...waiting]) live.add(c.key);
    for (const [key, count] of perKeyHeld) {
      if (key === undefined) continue; // calls without a key share one partition: no cap
      expect(count).toBeLessThanOrEqual(Math.max(keyCapAt(g.limit), heldBefore.get(key) ?? 0));
    }
    heldBefore = perKeyHeld;
    // Tracked: only keys that hold or wait, never more than maxKeys.
    expect(table.tracked).toBeLessThanOrEqual(maxKeys);
    expect(table.tracked).toBeLessThanOrEqual(live.size);
    expect(table.size).toBeLessThanOrEqual(live.size);
    if (live.size > 0) expect(table.size).toBeGreaterThan(0);
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
        const c: Call = { key: step.key, state: 'waiting', settled: 0 };
        calls.push(c);
        if (step.signal) c.controller = new AbortController();
        try {
          const slot = g.acquire({
            key: step.key,
            priority: step.priority,
            signal: c.controller?.signal,
          });
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
      case 'setLimit':
        mostLimit = Math.max(mostLimit, step.limit);
        g.setLimit(step.limit);
        break;
      case 'loop':
        loop.read(step.delayMs);
        break;
    }
    await flush();
    check();
  }
  for (let round = 0; round < calls.length + 2; round++) {
    for (const c of calls) {
      if (c.state === 'held') {
        c.state = 'released';
        released++;
        c.release?.();
      }
    }
    // A fail-fast gauge's brief waits last up to half the mean hold time (holds here: < 4 s).
    jest.advanceTimersByTime(size === 0 ? 4000 : timeoutMs + 1);
    await flush();
  }
  check();
  g.close();
  expect(jest.getTimerCount()).toBe(0);
  expect(loop.watchers).toBe(0);
  expect(g.inFlight).toBe(0);
  expect(g.queued).toBe(0);
  expect(table.size).toBe(0);
  expect(table.tracked).toBe(0);
  for (const c of calls) expect(c.settled).toBe(1);
  expect(jest.getTimerCount()).toBe(0);
}

describe('per-key fairness (property)', () => {
  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('gauge and key limits hold, counters add up, every call settles once, no key or timer leaks', async () => {
    await fc.assert(
      fc.asyncProperty(configArb, fc.array(opArb, { maxLength: 60 }), (config, ops) =>
        run(config, ops),
      ),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 300) },
    );
  });

  it('in a queue, no waiter beyond its key share is served while one within its share waits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { minLength: 1, maxLength: 12 }),
        async (keys) => {
          const g = new PressureGauge({
            name: 'p',
            limit: 1,
            queue: { size: 20, timeoutMs: 10_000 },
          });
          const holder = g.acquire({ key: 'holder' }) as Release;
          // Whether each waiter was within its key's share when it joined, by arrival.
          const demand = new Map<string, number>();
          const within: boolean[] = [];
          const served: number[] = [];
          const releases: Release[] = [];
          keys.forEach((key, i) => {
            const live = new Set([...demand.keys(), 'holder', key]).size;
            const share = Math.max(1, Math.ceil(1 / Math.max(2, live)));
            within.push((demand.get(key) ?? 0) < share);
            demand.set(key, (demand.get(key) ?? 0) + 1);
            void (g.acquire({ key }) as Promise<Release>).then((release) => {
              served.push(i);
              releases.push(release);
            });
          });
          holder();
          for (let i = 0; i < keys.length; i++) {
            await flush();
            releases.shift()?.();
          }
          await flush();
          expect(served).toHaveLength(keys.length);
          const order = served.map((i) => within[i]);
          // Every waiter within its share comes before every waiter beyond it, arrival order within each.
          expect(order).toEqual([...order].sort((x, y) => Number(y) - Number(x)));
          expect(served.filter((i) => within[i])).toEqual(
            served.filter((i) => within[i]).sort((x, y) => x - y),
          );
          expect(g.inFlight).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});
