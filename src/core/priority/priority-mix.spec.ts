import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { GaugeExhaustedError } from '../gauge.errors';
import type { Release } from '../gauge.interface';
import { PressureGauge } from '../pressure-gauge';
import type { PriorityLevel } from './priority.level';
import { poisson, seeded as random } from '../../../test/support/random';

// A deterministic simulation of bench scenario 11 part 1 (fake clock, seeded arrivals): a
// fail-fast gauge of 10 slots in front of 50 ms work (capacity 200/s), `low` at 5× capacity and
// `critical` at 0.3×, Poisson arrivals, 1 ms steps. Measured after a warm-up.

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
});
afterEach(() => {
  jest.useRealTimers();
});

const LIMIT = 10;
const SERVICE_MS = 50;
const CAPACITY_PER_MS = LIMIT / SERVICE_MS;

interface Mix {
  criticalSuccess: number;
  criticalP99Ms: number;
  goodput: number;
}

async function simulate(
  options: { priorityWaitMs?: number },
  seed: number,
  hold: (next: () => number) => number = () => SERVICE_MS,
  measuredMs = 5000,
): Promise<Mix> {
  const g = new PressureGauge({ name: 'mix', limit: LIMIT, ...options });
  const next = random(seed);
  const warmMs = 3000;
  const endMs = warmMs + measuredMs;
  const flows: [PriorityLevel, number][] = [
    ['low', 5 * CAPACITY_PER_MS],
    ['critical', 0.3 * CAPACITY_PER_MS],
  ];
  let critical = 0;
  let criticalOk = 0;
  const criticalMs: number[] = [];
  let done = 0;
  const start = performance.now();
  const run = (release: Release, measured: boolean, level: PriorityLevel, since: number) => {
    setTimeout(() => {
      release();
      if (!measured) return;
      done++;
      if (level === 'critical') {
        criticalOk++;
        criticalMs.push(performance.now() - since);
      }
    }, hold(next));
  };
  for (let t = 0; t < endMs; t++) {
    const measured = t >= warmMs;
    for (const [level, perMs] of flows) {
      for (let n = poisson(next, perMs); n > 0; n--) {
        if (measured && level === 'critical') critical++;
        const since = performance.now();
        try {
          const slot = g.acquire({ priority: level });
          if (typeof slot === 'function') run(slot, measured, level, since);
          else
            slot.then(
              (release) => run(release, measured, level, since),
              () => undefined,
            );
        } catch (error) {
          if (!(error instanceof GaugeExhaustedError)) throw error;
        }
      }
    }
    jest.advanceTimersByTime(1);
    // hand-offs resolve promises: let their callbacks start the work in the same millisecond
    for (let i = 0; i < 3; i++) await Promise.resolve();
  }
  for (let t = 0; t < 1000; t++) {
    jest.advanceTimersByTime(1);
    for (let i = 0; i < 3; i++) await Promise.resolve();
  }
  expect(g.inFlight).toBe(0);
  expect(g.queued).toBe(0);
  expect(jest.getTimerCount()).toBe(0);
  criticalMs.sort((a, b) => a - b);

  expect(performance.now() - start).toBeGreaterThanOrEqual(endMs);
  return {
    criticalSuccess: criticalOk / critical,
    criticalP99Ms: criticalMs[Math.ceil(criticalMs.length * 0.99) - 1] ?? NaN,
    goodput: done / (measuredMs * CAPACITY_PER_MS),
  };
}

describe('the bench mix, simulated (low at 5×, critical at 0.3× capacity)', () => {
  it('with the brief wait: critical ≥ 0.99 within 1.5× the service time, goodput ≥ 0.97', async () => {
    // The reserve stays about 1 slot, but steady holds make their releases foreseeable: the kept
    // slot is lent to `low` while a held one is due within half the wait (goodput 0.989–0.992;
    // 0.905–0.923 with the slot kept idle).
    for (const seed of [1, 2, 3]) {
      const mix = await simulate({}, seed);
      expect(mix.criticalSuccess).toBeGreaterThanOrEqual(0.99);
      expect(mix.criticalP99Ms).toBeLessThanOrEqual(1.5 * SERVICE_MS);
      expect(mix.goodput).toBeGreaterThanOrEqual(0.97);
    }
  }, 30_000);

  it('with holds of 50 ± 10 ms: the spread narrows what is foretold, critical keeps ≥ 0.99 within 1.5×', async () => {
    const jittered = (next: () => number) => Math.round(SERVICE_MS - 10 + 20 * next());
    for (const seed of [1, 2, 3]) {
      const mix = await simulate({}, seed, jittered);
      expect(mix.criticalSuccess).toBeGreaterThanOrEqual(0.99);
      expect(mix.criticalP99Ms).toBeLessThanOrEqual(1.5 * SERVICE_MS);
      expect(mix.goodput).toBeGreaterThanOrEqual(0.9);
    }
  }, 30_000);

  it('with irregular (exponential) holds: waits run out more often, the reserve stays, critical ≥ 0.985', async () => {
    // Releases as irregular as a Poisson stream: the M/M/1 guess holds, and the measured misses
    // keep the reserve (no reserve at all: 0.973–0.976 on these seeds over 20 s).
    const exponential = (next: () => number) =>
      Math.max(1, Math.round(-Math.log(1 - next()) * SERVICE_MS));
    for (const seed of [1, 2, 3]) {
      const mix = await simulate({}, seed, exponential, 20_000);
      expect(mix.criticalSuccess).toBeGreaterThanOrEqual(0.985);
    }
  }, 60_000);

  it('without it (priorityWaitMs: 0): critical is kept ≥ 0.99 by a larger reserve, at ~0.6 goodput', async () => {
    const mix = await simulate({ priorityWaitMs: 0 }, 1);
    expect(mix.criticalSuccess).toBeGreaterThanOrEqual(0.98);
    expect(mix.criticalP99Ms).toBe(SERVICE_MS); // never waits
    expect(mix.goodput).toBeLessThan(0.75);
  }, 30_000);
});
