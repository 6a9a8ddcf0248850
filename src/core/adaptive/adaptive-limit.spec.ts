import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { percentileOf, simulate, type SimPhase } from '../../../test/support/capacity-sim';
import { flush } from '../../../test/support/wait';
import { GaugeConfigError } from '../gauge.errors';
import type { Outcome } from '../gauge-events';
import type { LimitPolicy, LimitPolicyFactory } from '../limit-policy';
import { PressureGauge } from '../pressure-gauge';
import { aimd } from './aimd.limit';
import { gradient2 } from './gradient2.limit';
import { vegas } from './vegas.limit';

const ALGORITHMS: [string, (options?: object) => LimitPolicyFactory][] = [
  ['gradient2', gradient2],
  ['vegas', vegas],
  ['aimd', aimd],
];

/** A synthetic clock and feed: `n` samples, one every `everyMs`, all with the same figures. */
class Feed {
  at = 0;
  constructor(readonly policy: LimitPolicy) {}

  send(
    n: number,
    { latencyMs, inFlight, outcome = 'succeeded', everyMs = 5 }: FeedSample,
  ): number[] {
    const limits: number[] = [];
    for (let i = 0; i < n; i++) {
      this.at += everyMs;
      const heldMs = typeof latencyMs === 'number' ? latencyMs : latencyMs(this.policy.limit);
      const held = inFlight ?? this.policy.limit; // busy unless told otherwise
      limits.push(this.policy.update({ heldMs, outcome, inFlight: held, at: this.at }));
    }
    return limits;
  }

  /** Runs the start-up probe to its end with no-load samples of `latencyMs`. */
  settle(latencyMs: number): void {
    this.send(1, { latencyMs }); // opens the first probe
    this.at += latencyMs; // later samples started after it
    this.send(40, { latencyMs, everyMs: 10 });
    expect(this.probing()).toBe(false);
  }

  probing(): boolean {
    return (this.policy as unknown as { probing: boolean }).probing;
  }
}

interface FeedSample {
  /** A latency, or one that depends on the limit (the queue a limit above capacity builds). */
  latencyMs: number | ((limit: number) => number);
  inFlight?: number;
  outcome?: Outcome;
  everyMs?: number;
}

function make(factory: LimitPolicyFactory): Feed {
  return new Feed(factory.create('test'));
}

describe.each(ALGORITHMS)('%s: follows latency', (_name, factory) => {
  it('measures the no-load latency first, at the lowest limit, then restores it', () => {
    const feed = make(factory({ initial: 40, min: 2 }));
    expect(feed.policy.limit).toBe(40);
    feed.send(1, { latencyMs: 50 });
    expect(feed.probing()).toBe(true);
    expect(feed.policy.limit).toBe(2);
    // Work that started before the probe is not a no-load sample, however many come back.
    feed.send(100, { latencyMs: 500, everyMs: 1 });
    expect(feed.probing()).toBe(true);
    feed.at += 50;
    feed.send(20, { latencyMs: 50, everyMs: 20 });
    expect(feed.probing()).toBe(false);
    expect((feed.policy as unknown as { baseline: number }).baseline).toBe(50);
    expect(feed.policy.limit).toBe(40);
  });

  it('measures again every probeIntervalMs, at a quarter of the limit it learned', () => {
    const feed = make(factory({ initial: 40, max: 40, probeIntervalMs: 2000 }));
    feed.settle(50);
    const learned = feed.policy.limit;
    let probedAt = Number.NaN;
    for (let i = 0; i < 400 && Number.isNaN(probedAt); i++) {
      feed.send(1, { latencyMs: 50, everyMs: 10 });
      if (feed.probing()) probedAt = feed.at;
    }
    expect(probedAt).toBeGreaterThan(1800);
    expect(probedAt).toBeLessThan(3000);
    expect(feed.policy.limit).toBe(Math.floor(learned / 4));
  });

  it('comes down when latency rises with the limit, and goes back up on recovery', () => {
    const feed = make(factory({ initial: 20, max: 100 }));
    feed.settle(50);
    // A dependency serving `capacity` at once: above it, calls queue and latency grows.
    const queueing = (capacity: number) => (limit: number) => 50 * Math.max(1, limit / capacity);
    const shrunk = feed.send(2000, { latencyMs: queueing(4), everyMs: 10 });
    const low = Math.max(...shrunk.slice(-500));
    expect(low).toBeLessThanOrEqual(10);
    expect(low).toBeGreaterThanOrEqual(4);
    const grown = feed.send(2000, { latencyMs: queueing(40), everyMs: 10 });
    expect(Math.min(...grown.slice(-500))).toBeGreaterThanOrEqual(40);
  });

  it('stays an integer within [min, max] whatever it is fed', () => {
    const feed = make(factory({ initial: 5, min: 3, max: 9 }));
    let rng = 11;
    for (let i = 0; i < 20_000; i++) {
      rng = (rng * 1103515245 + 12345) % 2 ** 31;
      const latencyMs = 1 + (rng % 1000);
      const outcomes: Outcome[] = ['succeeded', 'succeeded', 'dropped', 'failed', 'ignored'];
      const [limit] = feed.send(1, {
        latencyMs,
        inFlight: 1 + (rng % 12),
        outcome: outcomes[rng % 5] as Outcome,
        everyMs: rng % 7,
      });
      expect(Number.isInteger(limit)).toBe(true);
      expect(limit).toBeGreaterThanOrEqual(3);
      expect(limit).toBeLessThanOrEqual(9);
    }
  });

  it('does not grow while the gauge is under-used (fast samples from few slots)', () => {
    const feed = make(factory({ initial: 20, max: 1000 }));
    feed.settle(50);
    const idle = { latencyMs: 50, inFlight: 3, everyMs: 10 };
    feed.send(100, idle); // closes the window the busy settling samples opened
    const before = feed.policy.limit;
    const limits = feed.send(5000, idle);
    expect(Math.max(...limits)).toBeLessThanOrEqual(before);
  });

  it('learns nothing from ignored work (client errors, streams)', () => {
    const feed = make(factory({ initial: 20 }));
    feed.settle(50);
    const before = feed.policy.limit;
    const limits = feed.send(2000, { latencyMs: 10_000, outcome: 'ignored' });
    expect(new Set(limits)).toEqual(new Set([before]));
  });

  it('a server bug (failed work, slow or fast) neither pushes the limit down nor up', () => {
    const feed = make(factory({ initial: 20 }));
    feed.settle(50);
    const before = feed.policy.limit;
    const slowBug = feed.send(2000, { latencyMs: 5000, outcome: 'failed' });
    const fastBug = feed.send(2000, { latencyMs: 1, outcome: 'failed' });
    expect(new Set([...slowBug, ...fastBug])).toEqual(new Set([before]));
  });

  it('drops are an overload signal: the limit comes down', () => {
    const feed = make(factory({ initial: 20 }));
    feed.settle(50);
    const before = feed.policy.limit;
    const limits = feed.send(300, { latencyMs: 50, outcome: 'dropped', everyMs: 10 });
    expect(Math.min(...limits)).toBeLessThan(before);
  });
});

describe.each(ALGORITHMS)(
  '%s: under a capacity shift (simulated, deterministic)',
  (name, factory) => {
    // A dependency that serves C at once, 50 ms each, C = 10 → 4 → 20, offered 300/s throughout.
    const phases: SimPhase[] = [10, 4, 20].map((capacity) => ({
      ms: 8000,
      capacity,
      ratePerSecond: 300,
      serviceMs: 50,
    }));
    const buckets = simulate(factory().create(name), phases, { bucketMs: 500, seed: 7 });

    it.each([0, 1, 2])(
      'phase %i: goodput ≥ 0.9 of what can be served, p99 ≤ 3× the service time',
      (p) => {
        const phase = phases[p] as SimPhase;
        const settled = buckets.filter((b) => b.at >= p * 8000 + 3000 && b.at < (p + 1) * 8000);
        const perSecond = settled.reduce((sum, b) => sum + b.served, 0) / (settled.length * 0.5);
        const servable = Math.min(phase.ratePerSecond, (phase.capacity * 1000) / phase.serviceMs);
        expect(perSecond / servable).toBeGreaterThanOrEqual(0.9);
        expect(
          percentileOf(
            settled.flatMap((b) => b.latencies),
            0.99,
          ),
        ).toBeLessThanOrEqual(150);
      },
    );

    it('the baseline does not drift up under ten minutes of sustained overload', () => {
      const policy = factory({ probeIntervalMs: 30_000 }).create(name);
      const overload: SimPhase = { ms: 600_000, capacity: 4, ratePerSecond: 600, serviceMs: 50 };
      const late = simulate(policy, [overload], { bucketMs: 10_000, seed: 3 }).slice(-6);
      expect((policy as unknown as { baseline: number }).baseline).toBeLessThan(60);
      // Still adapted to C = 4, not grown away from it.
      for (const bucket of late) expect(bucket.limit).toBeLessThanOrEqual(12);
      expect(
        percentileOf(
          late.flatMap((b) => b.latencies),
          0.99,
        ),
      ).toBeLessThanOrEqual(200);
    });
  },
);

/** Counts the probes a policy starts (the limit cut to a quarter to measure the baseline). */
function countProbes(policy: LimitPolicy): { readonly count: number } {
  const seen = { count: 0 };
  const probing = () => (policy as unknown as { probing: boolean }).probing;
  const update = policy.update.bind(policy);
  let was = probing();
  policy.update = (sample) => {
    const limit = update(sample);
    if (probing() && !was) seen.count++;
    was = probing();
    return limit;
  };
  return seen;
}

describe.each(ALGORITHMS)(
  '%s: tuned against the capacity-shift bench (issue 10)',
  (name, factory) => {
    const shift: SimPhase[] = [10, 4, 20].map((capacity) => ({
      ms: 8000,
      capacity,
      ratePerSecond: 300,
      serviceMs: 50,
    }));

    it('settles a few slots above the capacity when overloaded, not at 1.4-2 × it', () => {
      const buckets = simulate(factory().create(name), shift.slice(0, 2), {
        bucketMs: 100,
        seed: 7,
      });
      // With the defaults before the tuning: 16 and 7-8 (gradient2), 14 and 7-8 (vegas), 21 and
      // 8-9 (aimd). This simulation (Poisson arrivals, ±10 % service time) is harsher than the
      // bench, which settles at 13 and 6 (docs/benchmarks.md §9).
      for (const [p, capacity, most] of [
        [0, 10, name === 'aimd' ? 17 : 14],
        [1, 4, 7],
      ] as const) {
        const settled = buckets
          .filter((b) => b.at >= p * 8000 + 4000 && b.at < (p + 1) * 8000)
          .map((b) => b.limit);
        const median = percentileOf(settled, 0.5);
        expect(median).toBeGreaterThanOrEqual(capacity);
        expect(median).toBeLessThanOrEqual(most);
      }
    });

    it('below capacity, stops growing a quarter above the peak in-flight (not twice it)', () => {
      // Offered 300/s to a pool of 20 × 50 ms (400/s): about 15 in flight, never a queue.
      const light: SimPhase = { ms: 20_000, capacity: 20, ratePerSecond: 300, serviceMs: 50 };
      const buckets = simulate(factory({ initial: 10 }).create(name), [light], { bucketMs: 1000 });
      const late = buckets.slice(-10);
      const peak = Math.max(...buckets.map((b) => b.maxInFlight));
      for (const bucket of late)
        expect(bucket.limit).toBeLessThanOrEqual(Math.ceil(peak / 0.8) + 3);
    });

    it.each([400, 1000])(
      'work served one at a time (CPU-bound: 5 ms on the event loop), %i/s offered: a limit of 1-3',
      (ratePerSecond) => {
        const cpu: SimPhase = { ms: 20_000, capacity: 1, ratePerSecond, serviceMs: 5 };
        const late = simulate(factory().create(name), [cpu], { bucketMs: 1000, seed: 3 }).slice(5);
        for (const bucket of late) expect(bucket.limit).toBeLessThanOrEqual(3);
        expect(late.reduce((n, b) => n + b.served, 0) / late.length).toBeGreaterThan(0.9 * 200);
        expect(
          percentileOf(
            late.flatMap((b) => b.latencies),
            0.99,
          ),
        ).toBeLessThanOrEqual(20);
      },
    );

    it('a capacity cut costs no early probe: only the start-up probe in 24 s', () => {
      const policy = factory().create(name);
      const probes = countProbes(policy);
      simulate(policy, shift, { bucketMs: 500, seed: 7 });
      expect(probes.count).toBe(1);
    });

    it('work that itself got slower is re-measured early, not sat on at the lowest limit', () => {
      const feed = make(factory({ initial: 20, max: 100 }));
      feed.settle(50);
      const probes = countProbes(feed.policy);
      // Ten times slower at any limit: no capacity cut explains it.
      feed.send(400, { latencyMs: 500, everyMs: 10 });
      expect(probes.count).toBe(1);
      expect((feed.policy as unknown as { baseline: number }).baseline).toBe(500);
    });
  },
);

describe('gradient2 and vegas: a start far above capacity comes down within 2 s', () => {
  it.each([
    ['gradient2', gradient2],
    ['vegas', vegas],
  ] as const)('%s: initial 20, one server of 5 ms (CPU-bound), 400/s', (name, factory) => {
    const cpu: SimPhase = { ms: 4000, capacity: 1, ratePerSecond: 400, serviceMs: 5 };
    const buckets = simulate(factory().create(name), [cpu], { bucketMs: 250, seed: 3 });
    // Vegas stepped down one slot a window before: 20 → 4 took 4 s, the bench's whole ramp.
    for (const bucket of buckets.filter((b) => b.at >= 2000))
      expect(bucket.limit).toBeLessThanOrEqual(4);
  });
});

describe('the growth guard (Netflix concurrency-limits #134)', () => {
  it.each(ALGORITHMS)(
    '%s: no growth unless 80 %% of the slots were held at once',
    (_n, factory) => {
      const feed = make(factory({ initial: 20, max: 1000 }));
      feed.settle(50);
      feed.send(100, { latencyMs: 50, inFlight: 1 }); // closes the busy settling window
      const before = feed.policy.limit;
      const under = Math.ceil(before * 0.8) - 1;
      // Fewer than 80 % held at once: fast samples, yet the limit may not grow on them.
      expect(Math.max(...feed.send(2000, { latencyMs: 50, inFlight: under }))).toBe(before);
      // 80 %: it may.
      const busy = Math.ceil(before * 0.8);
      expect(Math.max(...feed.send(200, { latencyMs: 50, inFlight: busy }))).toBeGreaterThan(
        before,
      );
    },
  );
});

describe('gradient2 and vegas: steady load gives a steady limit', () => {
  it.each([
    ['gradient2', gradient2],
    ['vegas', vegas],
  ] as const)('%s: within ±20 %% of its median once settled', (name, factory) => {
    const steady: SimPhase = { ms: 30_000, capacity: 10, ratePerSecond: 300, serviceMs: 50 };
    const limits = simulate(factory().create(name), [steady], { bucketMs: 250, seed: 5 })
      .filter((b) => b.at >= 5000)
      .map((b) => b.limit)
      .sort((a, b) => a - b);
    const median = limits[limits.length >> 1] as number;
    expect(limits[0]).toBeGreaterThanOrEqual(median * 0.8);
    expect(limits.at(-1)).toBeLessThanOrEqual(median * 1.2);
  });
});

describe('adaptive options are checked when the gauge is built', () => {
  it.each([
    [gradient2, { min: 0 }, /option "min" must be an integer from 1/],
    [gradient2, { min: 10, max: 5 }, /option "max" must be an integer from 10/],
    [gradient2, { initial: 500 }, /option "initial" must be an integer from 1 to 200, got 500/],
    [gradient2, { tolerance: 0.5 }, /option "tolerance" must be a number from 1 to 100, got 0.5/],
    [gradient2, { smoothing: 2 }, /option "smoothing"/],
    [gradient2, { queueSize: -1 }, /option "queueSize"/],
    [gradient2, { window: { minMs: -1 } }, /option "window.minMs"/],
    [gradient2, { window: { percentile: 1.5 } }, /option "window.percentile"/],
    [gradient2, { window: 5 }, /option "window" must be/],
    [gradient2, { windw: {} }, /unknown option "windw" \(known: initial, min, max, window/],
    [vegas, { beta: 1, alpha: 3 }, /option "beta" must be a number from 3/],
    [vegas, { tolerance: 2 }, /unknown option "tolerance"/],
    [aimd, { backoffRatio: 1 }, /option "backoffRatio"/],
    [aimd, { timeoutMs: 0 }, /option "timeoutMs"/],
    [aimd, { probeIntervalMs: Number.NaN }, /option "probeIntervalMs".*got NaN/],
    [aimd, 'fast' as unknown as object, /options must be an object, got "fast"/],
  ] as [(o: object) => LimitPolicyFactory, object, RegExp][])(
    '%p %p',
    (factory, options, message) => {
      const build = () => factory(options).create('Gauge "db": option "limit"');
      expect(build).toThrow(GaugeConfigError);
      expect(build).toThrow(/^Gauge "db": option "limit": /);
      expect(build).toThrow(message);
    },
  );

  it('the initial limit defaults to 20, moved into [min, max]', () => {
    expect(gradient2().create('x').limit).toBe(20);
    expect(vegas({ max: 8 }).create('x').limit).toBe(8);
    expect(aimd({ min: 30 }).create('x').limit).toBe(30);
  });

  it('each gauge gets its own policy state from one factory', () => {
    const factory = vegas({ initial: 10 });
    expect(factory.create('a')).not.toBe(factory.create('b'));
  });
});

describe('a PressureGauge with an adaptive limit', () => {
  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  /** Holds `n` slots for `ms` of fake time, then gives them back. */
  async function round(gauge: PressureGauge, n: number, ms: number): Promise<void> {
    const slots = Array.from({ length: n }, () => gauge.acquire());
    const held = await Promise.all(slots);
    jest.advanceTimersByTime(ms);
    for (const release of held) release();
    await flush();
  }

  it('reads the policy limit, reports each change as an event, and serves waiters on a raise', async () => {
    const gauge = new PressureGauge({
      name: 'db',
      limit: vegas({ initial: 8, window: { minMs: 0, minSamples: 4 } }),
      queue: { size: 100, timeoutMs: 60_000 },
    });
    const changes: [number, number][] = [];
    gauge.subscribe((e) => {
      if (e.type === 'limit-changed') changes.push([e.from, e.to]);
    });
    expect(gauge.limit).toBe(8);
    await round(gauge, 8, 50); // opens the start-up probe: at the lowest limit
    expect(gauge.limit).toBe(1);
    for (let i = 0; i < 5; i++) await round(gauge, 1, 50); // the probe measures 50 ms
    expect(gauge.limit).toBe(8);
    // Latency that grows with the slots held: the limit comes down.
    for (let i = 0; i < 30; i++) await round(gauge, gauge.limit, 25 * gauge.limit);
    expect(gauge.limit).toBeLessThan(8);
    // Callers waiting while the limit rises are served at once.
    const low = gauge.limit;
    const held = await Promise.all(Array.from({ length: low }, () => gauge.acquire()));
    const waiter = gauge.acquire();
    expect(gauge.queued).toBe(1);
    jest.advanceTimersByTime(50);
    for (const release of held) release(); // fast again: vegas grows
    await flush();
    (await waiter)();
    expect(changes.length).toBeGreaterThan(2);
    for (const [from, to] of changes) expect(from).not.toBe(to);
    expect(changes.at(-1)?.[1]).toBe(gauge.limit);
    expect([gauge.inFlight, gauge.queued]).toEqual([0, 0]);
  });

  it('setLimit is refused: the policy decides', () => {
    const gauge = new PressureGauge({ name: 'db', limit: gradient2() });
    expect(() => gauge.setLimit(5)).toThrow(/limit policy decides/);
  });

  it('a bad option fails when the gauge is built, naming the gauge and the option', () => {
    expect(() => new PressureGauge({ name: 'db', limit: aimd({ backoffRatio: 2 }) })).toThrow(
      /^Gauge "db": option "limit" \(aimd\): option "backoffRatio" must be a number from 0.5 to 0.999, got 2$/,
    );
  });
});
