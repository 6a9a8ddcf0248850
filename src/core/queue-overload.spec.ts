import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { GaugeExhaustedError } from './gauge.errors';
import type { Release } from './gauge.interface';
import { PressureGauge } from './pressure-gauge';
import type { QueueDiscipline } from './queue-discipline';
import { poisson, seeded as random } from '../../test/support/random';

// Issue 11's queue benchmark as a deterministic simulation on Jest's fake clock: a gauge of 10
// slots, 50 ms of work per call (10 × 50 ms = 200/s of capacity), a queue of 100 with a 1 s
// timeout, and arrivals at 10× capacity (2000/s, Poisson, seeded). No real time passes.

const LIMIT = 10;
const SERVICE_MS = 50;
const CAPACITY_PER_MS = LIMIT / SERVICE_MS;
const ARRIVALS_PER_MS = 10 * CAPACITY_PER_MS;
const WARM_UP_MS = 1000;
const MEASURED_MS = 2000;
/** The client's deadline: a success is a call that completed within it. */
const DEADLINE_MS = 1000;

interface Result {
  goodput: number;
  p99: number;
  refusals: Record<string, number>;
}

async function simulate(discipline: QueueDiscipline, seed = 11): Promise<Result> {
  const g = new PressureGauge({
    name: 'sim',
    limit: LIMIT,
    queue: { size: 100, timeoutMs: 1000, discipline },
  });
  const next = random(seed);
  const latencies: number[] = [];
  const refusals: Record<string, number> = {};
  let good = 0;
  const start = performance.now();
  const measured = (at: number) => at >= WARM_UP_MS && at < WARM_UP_MS + MEASURED_MS;
  const work = (arrived: number, release: Release) => {
    setTimeout(() => {
      const done = performance.now() - start;
      release();
      const latency = done - arrived;
      if (measured(done) && latency <= DEADLINE_MS) {
        good++;
        latencies.push(latency);
      }
    }, SERVICE_MS);
  };
  for (let ms = 0; ms < WARM_UP_MS + MEASURED_MS; ms++) {
    for (let n = poisson(next, ARRIVALS_PER_MS); n > 0; n--) {
      const arrived = performance.now();
      const refuse = (error: unknown) => {
        const reason = error instanceof GaugeExhaustedError ? error.reason : String(error);
        if (measured(performance.now() - start)) refusals[reason] = (refusals[reason] ?? 0) + 1;
      };
      try {
        const slot = g.acquire();
        if (typeof slot === 'function') work(arrived - start, slot);
        else slot.then((release) => work(arrived - start, release), refuse);
      } catch (error) {
        refuse(error);
      }
    }
    await jest.advanceTimersByTimeAsync(1);
  }
  g.close();
  await jest.advanceTimersByTimeAsync(SERVICE_MS + 1);
  latencies.sort((a, b) => a - b);
  return {
    goodput: good / (MEASURED_MS * CAPACITY_PER_MS),
    p99: latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? NaN,
    refusals,
  };
}

describe('queue disciplines at 10× overload (simulated: 10 slots × 50 ms, queue of 100)', () => {
  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('codel keeps goodput at capacity with p99 of successes within 75 ms; fifo is much later', async () => {
    const codel = await simulate('codel');
    const fifo = await simulate('fifo');
    const lifo = await simulate('lifo');
    expect(codel.goodput).toBeGreaterThanOrEqual(0.95);
    expect(codel.p99).toBeLessThanOrEqual(75);
    expect(codel.refusals['shed-delay']).toBeGreaterThan(0);
    expect(fifo.goodput).toBeGreaterThanOrEqual(0.95); // FIFO keeps the slots busy, but late
    expect(fifo.p99).toBeGreaterThan(2 * codel.p99);
    expect(fifo.refusals['shed-delay']).toBeUndefined();
    expect(lifo.goodput).toBeGreaterThanOrEqual(0.95);
  });
});
