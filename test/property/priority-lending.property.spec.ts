import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';
import {
  GaugeAbortedError,
  GaugeExhaustedError,
  PressureGauge,
  type PriorityLevel,
  type Release,
} from '../../src';
import { ReleaseForecast } from '../../src/core/priority/release-forecast';
import { flush } from '../support/wait';

// A fail-fast gauge with priorities lends the slots it keeps for higher levels while a held slot
// is due back (steady holds). Random steady-ish holds, levels, arrival bursts and aborts, on the
// fake clock: after every millisecond the limit holds and the counters add up; at the end every
// call settled once, nothing is held or waiting, no timer is left — and lending did happen.

const levelArb = fc.constantFrom<PriorityLevel>('critical', 'high', 'normal', 'low');
const configArb = fc.record({
  limit: fc.integer({ min: 1, max: 10 }),
  holdMs: fc.integer({ min: 5, max: 60 }),
  jitterMs: fc.integer({ min: 0, max: 4 }),
  priorityWaitMs: fc.constantFrom<number | undefined>(undefined, 0, 5, 40),
  ms: fc.integer({ min: 200, max: 1500 }),
  seed: fc.integer(),
});
type Config = typeof configArb extends fc.Arbitrary<infer C> ? C : never;

interface Call {
  settled: number;
  held: boolean;
}

async function run(config: Config, burst: PriorityLevel[][]): Promise<void> {
  const g = new PressureGauge({
    name: 'lend',
    limit: config.limit,
    priorityWaitMs: config.priorityWaitMs,
  });
  let state = config.seed | 0;
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) | 0;
    return ((state >>> 8) & 0xffff) / 0x10000;
  };
  const calls: Call[] = [];
  let releases = 0;
  const hold = (c: Call, release: Release) => {
    c.settled++;
    c.held = true;
    setTimeout(
      () => {
        c.held = false;
        releases++;
        release();
        release(); // idempotent
      },
      config.holdMs + Math.round(config.jitterMs * next()),
    );
  };
  const refuse = (c: Call, error: unknown) => {
    c.settled++;
    if (!(error instanceof GaugeExhaustedError || error instanceof GaugeAbortedError)) throw error;
  };
  for (let t = 0; t < config.ms; t++) {
    for (const level of burst[t % burst.length] ?? []) {
      const c: Call = { settled: 0, held: false };
      calls.push(c);
      const controller = next() < 0.1 ? new AbortController() : undefined;
      try {
        const slot = g.acquire({ priority: level, signal: controller?.signal });
        if (typeof slot === 'function') hold(c, slot);
        else {
          slot.then(
            (release) => hold(c, release),
            (error: unknown) => refuse(c, error),
          );
          if (controller !== undefined) setTimeout(() => controller.abort(), 1);
        }
      } catch (error) {
        refuse(c, error);
      }
    }
    jest.advanceTimersByTime(1);
    await flush();
    expect(g.inFlight).toBeLessThanOrEqual(config.limit);
    expect(g.inFlight).toBe(calls.filter((c) => c.held).length);
    expect(g.admitted).toBe(g.inFlight + releases);
    expect(g.admitted + g.rejected + g.timedOut + g.aborted + g.queued).toBe(calls.length);
  }
  // Wind down: a release hands its slot to a brief waiter, whose work then starts its own hold.
  for (let round = 0; round < 20 && (g.inFlight > 0 || g.queued > 0); round++) {
    jest.advanceTimersByTime(100);
    await flush();
  }
  expect(g.inFlight).toBe(0);
  expect(g.queued).toBe(0);
  for (const c of calls) expect(c.settled).toBe(1);
  expect(jest.getTimerCount()).toBe(0);
}

describe('lending the kept slots (property)', () => {
  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  });
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('the limit holds, counters add up, every call settles once, nothing leaks', async () => {
    const due = jest.spyOn(ReleaseForecast.prototype, 'due');
    await fc.assert(
      fc.asyncProperty(
        configArb,
        // per millisecond, a burst of arrivals (cycled): mostly lower levels, some higher
        fc.array(fc.array(levelArb, { maxLength: 3 }), { minLength: 1, maxLength: 40 }),
        (config, burst) => run(config, burst),
      ),
      { numRuns: 60 },
    );
    const lent = due.mock.results.filter(
      (r) => r.type === 'return' && (r.value as number) > 0,
    ).length;
    // The property explored lending, not only the kept reserve.
    expect(lent).toBeGreaterThan(0);
  }, 120_000);
});
