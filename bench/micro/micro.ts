import { bulkhead } from 'cockatiel';
import type { LimitPolicy, LimitPolicyFactory } from '../../src';
import { baseBuild, lib } from '../harness/lib';
import { rotated } from '../harness/scenario';
import { SEAM } from './seam-names';

/**
 * Scenario 5's measurements, run in a child process of their own (`node --expose-gc`) so the
 * runner's sockets and timers stay out of the way. Prints one JSON object: ns per operation.
 *
 * `--seams` runs only the seam group (scenario 8, issue 9): acquire()+release on gauges with a
 * fixed limit or a sampling policy, with and without a listener, next to the same loop on the
 * build named by BENCH_BASE_LIB (the gauge before the policy seam), and the clock reads a timed
 * slot pays for.
 */
type Bench = () => Promise<number>;
/** What the check that a policy learned reads of it (AdaptiveLimit's getters). */
type AdaptiveLike = LimitPolicy & { readonly baseline: number; readonly probing: boolean };
const noop = () => 1;

/** A policy that learns nothing but asks for samples, so the gauge times every slot for it. */
class ConstantSampling implements LimitPolicy {
  readonly samples = true;
  constructor(readonly limit: number) {}
  update(): number {
    return this.limit;
  }
}
const sampling: LimitPolicyFactory = {
  policy: 'bench-constant',
  create: () => new ConstantSampling(10),
};

/** The slice of the older build's gauge the loop touches (its `acquire` took a bare signal). */
interface BaseGauge {
  acquire(): unknown;
  readonly inFlight: number;
}

/**
 * acquire()+release, fail fast, limit 10, never full. Each loop is its own function literal, so
 * its call sites keep their own type feedback; the gauges share PressureGauge's code, as gauges
 * with different policies in one app do.
 */
function seamBenches(
  ops: number,
  events: { count: number },
): { benches: Record<string, Bench>; idle: () => boolean } {
  const base = baseBuild();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const baseLib = (base ? require(base.path) : lib) as {
    PressureGauge: new (options: { name: string; limit: number }) => BaseGauge;
  };
  const old = new baseLib.PressureGauge({ name: 'base', limit: 10 });
  const fixed = new lib.PressureGauge({ name: 'fixed', limit: 10 });
  const fixedHeard = new lib.PressureGauge({ name: 'fixed-heard', limit: 10 });
  const sampled = new lib.PressureGauge({ name: 'sampled', limit: sampling });
  const sampledHeard = new lib.PressureGauge({ name: 'sampled-heard', limit: sampling });
  fixedHeard.subscribe(() => {
    events.count++;
  });
  sampledHeard.subscribe(() => {
    events.count++;
  });
  const gauges = [old, fixed, fixedHeard, sampled, sampledHeard];
  const benches: Record<string, Bench> = {
    [SEAM.base]: async () => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ops; i++) (old.acquire() as () => void)();
      return perOp(t0, ops);
    },
    [SEAM.fixed]: async () => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ops; i++) (fixed.acquire() as () => void)();
      return perOp(t0, ops);
    },
    [SEAM.fixedListener]: async () => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ops; i++) (fixedHeard.acquire() as () => void)();
      return perOp(t0, ops);
    },
    [SEAM.sampling]: async () => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ops; i++) (sampled.acquire() as () => void)();
      return perOp(t0, ops);
    },
    [SEAM.samplingListener]: async () => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ops; i++) (sampledHeard.acquire() as () => void)();
      return perOp(t0, ops);
    },
    [SEAM.clock]: async () => {
      let sum = 0;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ops; i++) sum += performance.now();
      return keep(sum, perOp(t0, ops));
    },
    [SEAM.hrtime]: async () => {
      let sum = 0n;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ops; i++) sum += process.hrtime.bigint();
      return keep(Number(sum & 1n), perOp(t0, ops));
    },
    [SEAM.date]: async () => {
      let sum = 0;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ops; i++) sum += Date.now();
      return keep(sum, perOp(t0, ops));
    },
  };
  return { benches, idle: () => gauges.every((g) => g.inFlight === 0) };
}

/** Uses a loop's result so the compiler cannot drop the loop; returns the timing. */
function keep(value: number, ns: number): number {
  if (value === -1) console.error(value);
  return ns;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const onlySeams = process.argv.includes('--seams');
  const reps = Number(process.argv.find((a) => a.startsWith('--reps='))?.slice(7) ?? 5);
  const syncOps = quick ? 100_000 : 3_000_000;
  const asyncOps = quick ? 20_000 : 300_000;
  const waiters = quick ? 10_000 : 100_000;
  const { default: pLimit } = await import('p-limit');

  const gauge = new lib.PressureGauge({ name: 'micro', limit: 10 });
  // Issue 10: adaptive gauges (defaults, max ample so the loop never refuses). Every
  // acquire()+release reads the clock twice and feeds the policy one sample. Each policy is kept
  // (`learning`) to check after the run that it learned: a gauge that skipped its samples would
  // look fast and learn nothing.
  const policies: Record<string, AdaptiveLike> = {};
  const learning = (name: string, factory: LimitPolicyFactory): LimitPolicyFactory => ({
    policy: factory.policy,
    create: (where) => (policies[name] = factory.create(where) as AdaptiveLike),
  });
  const adaptive = {
    gradient2: new lib.PressureGauge({
      name: 'gradient2',
      limit: learning('gradient2', lib.gradient2({ max: 1000 })),
    }),
    vegas: new lib.PressureGauge({
      name: 'vegas',
      limit: learning('vegas', lib.vegas({ max: 1000 })),
    }),
    aimd: new lib.PressureGauge({ name: 'aimd', limit: learning('aimd', lib.aimd({ max: 1000 })) }),
  };
  const initialLimits = Object.values(adaptive).map((g) => g.limit);
  // One sample each: the first starts the baseline probe, so the limit must drop to `min`.
  for (const g of Object.values(adaptive)) (g.acquire() as () => void)();
  if (Object.values(adaptive).some((g, i) => g.limit >= initialLimits[i]!))
    throw new Error('micro: an adaptive gauge did not start probing at its first sample');
  // The same loops on the build named by BENCH_BASE_LIB (before a change), side by side.
  const base = baseBuild();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const baseLib = (base ? require(base.path) : lib) as typeof lib;
  const baseAdaptive = new baseLib.PressureGauge({
    name: 'base-gradient2',
    limit: baseLib.gradient2({ max: 1000 }),
  });
  const ranked = new lib.PressureGauge({ name: 'ranked', limit: 10 });
  const baseRanked = new baseLib.PressureGauge({ name: 'base-ranked', limit: 10 });
  const baseFixed = new baseLib.PressureGauge({ name: 'base-fixed', limit: 10 });
  const high = { priority: 'high' } as const;
  const limit10 = pLimit(10);
  const bulkhead10 = bulkhead(10, 0);

  const uncontended: Record<string, Bench> = {
    'gauge tryAcquire()+release': async () => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < syncOps; i++) gauge.tryAcquire()!();
      return perOp(t0, syncOps);
    },
    'gauge acquire()+release (fail fast)': async () => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < syncOps; i++) (gauge.acquire() as () => void)();
      return perOp(t0, syncOps);
    },
    'adaptive gradient2: acquire()+release+sample': async () => {
      const g = adaptive.gradient2;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < syncOps; i++) (g.acquire() as () => void)();
      return perOp(t0, syncOps);
    },
    'base build: adaptive gradient2: acquire()+release+sample': async () => {
      const g = baseAdaptive;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < syncOps; i++) (g.acquire() as () => void)();
      return perOp(t0, syncOps);
    },
    'base build: gauge acquire()+release (fail fast)': async () => {
      const g = baseFixed;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < syncOps; i++) (g.acquire() as () => void)();
      return perOp(t0, syncOps);
    },
    'gauge acquire({ priority })+release (fail fast)': async () => {
      const g = ranked;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < syncOps; i++) (g.acquire(high) as () => void)();
      return perOp(t0, syncOps);
    },
    'base build: gauge acquire({ priority })+release (fail fast)': async () => {
      const g = baseRanked;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < syncOps; i++) (g.acquire(high) as () => void)();
      return perOp(t0, syncOps);
    },
    'adaptive vegas: acquire()+release+sample': async () => {
      const g = adaptive.vegas;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < syncOps; i++) (g.acquire() as () => void)();
      return perOp(t0, syncOps);
    },
    'adaptive aimd: acquire()+release+sample': async () => {
      const g = adaptive.aimd;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < syncOps; i++) (g.acquire() as () => void)();
      return perOp(t0, syncOps);
    },
    'clock: performance.now() × 2': async () => {
      let sum = 0;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < syncOps; i++) sum += performance.now() - performance.now();
      return keep(sum, perOp(t0, syncOps));
    },
    'await Promise.resolve(fn()) (floor)': async () => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < asyncOps; i++) await Promise.resolve(noop());
      return perOp(t0, asyncOps);
    },
    'await gauge.process(fn)': async () => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < asyncOps; i++) await gauge.process(noop);
      return perOp(t0, asyncOps);
    },
    'await pLimit(10)(fn)': async () => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < asyncOps; i++) await limit10(noop);
      return perOp(t0, asyncOps);
    },
    'await cockatiel bulkhead(10).execute(fn)': async () => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < asyncOps; i++) await bulkhead10.execute(noop);
      return perOp(t0, asyncOps);
    },
  };

  /** Holds the only slot, queues `waiters` calls behind it, then times the drain once it is let go. */
  const drain = async (
    make: () => {
      hold: (fn: () => Promise<void>) => unknown;
      run: (fn: () => number) => Promise<unknown>;
    },
  ) => {
    const { hold, run } = make();
    let letGo!: () => void;
    hold(() => new Promise<void>((resolve) => (letGo = resolve)));
    await null;
    const queued: Promise<unknown>[] = new Array(waiters);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < waiters; i++) queued[i] = run(noop);
    const t1 = process.hrtime.bigint();
    letGo();
    await Promise.all(queued);
    return {
      enqueueNs: Number(t1 - t0) / waiters,
      drainNs: Number(process.hrtime.bigint() - t1) / waiters,
    };
  };
  const drains = {
    gauge: () => {
      const g = new lib.PressureGauge({
        name: 'drain',
        limit: 1,
        queue: { size: waiters, timeoutMs: 600_000 },
      });
      return {
        hold: (fn: () => Promise<void>) => g.process(fn),
        run: (fn: () => number) => g.process(fn),
      };
    },
    'p-limit': () => {
      const l = pLimit(1);
      return { hold: (fn: () => Promise<void>) => l(fn), run: (fn: () => number) => l(fn) };
    },
    'cockatiel bulkhead': () => {
      const b = bulkhead(1, waiters);
      return {
        hold: (fn: () => Promise<void>) => b.execute(fn),
        run: (fn: () => number) => b.execute(fn),
      };
    },
  };

  const events = { count: 0 };
  const { benches: seams, idle: seamsIdle } = seamBenches(syncOps, events);
  const seamEntries = Object.entries(seams);

  const out: Record<string, number[]> = {};
  const record = (key: string, value: number) => (out[key] ??= []).push(value);
  for (let rep = -1; rep < reps; rep++) {
    // rep -1 warms the JIT and is thrown away; then every bench runs once per rep, interleaved.
    // The seam group starts one further along each rep, so no variant always runs first.
    for (const [name, bench] of rotated(seamEntries, Math.max(rep, 0))) {
      global.gc?.();
      const ns = await bench();
      if (rep >= 0) record(name, ns);
    }
    if (onlySeams) continue;
    for (const [name, bench] of Object.entries(uncontended)) {
      global.gc?.();
      const ns = await bench();
      if (rep >= 0) record(name, ns);
    }
    for (const [name, make] of Object.entries(drains)) {
      global.gc?.();
      const { enqueueNs, drainNs } = await drain(make);
      if (rep >= 0) {
        record(`${name}: enqueue, per waiter`, enqueueNs);
        record(`${name}: drain, per waiter`, drainNs);
      }
    }
  }
  // The adaptive gauges run only in the full micro bench (not with --seams).
  if (!onlySeams) {
    if (Object.values(adaptive).some((g) => g.inFlight !== 0 || g.limit < 10))
      throw new Error('micro: an adaptive gauge not idle (or refusing) after the run');
    // Learned: each probe ended with a measured baseline and the limit back up from `min`.
    for (const [name, policy] of Object.entries(policies)) {
      if (!Number.isFinite(policy.baseline) || policy.probing)
        throw new Error(`micro: ${name} learned nothing (baseline ${policy.baseline})`);
    }
  }
  if (gauge.inFlight !== 0 || gauge.queued !== 0 || !seamsIdle())
    throw new Error('micro: gauge not idle after the run');
  if (events.count !== 2 * 2 * syncOps * (reps + 1))
    throw new Error(`micro: listeners heard ${events.count} events`);
  const baseLabel = base?.label ?? 'current build (BENCH_BASE_LIB unset)';
  process.stdout.write(
    JSON.stringify({
      settings: { syncOps, asyncOps, waiters, reps, base: baseLabel },
      learned: Object.fromEntries(
        Object.entries(policies).map(([name, p]) => [name, { baselineMs: p.baseline }]),
      ),
      nsPerOp: out,
    }),
  );
}

function perOp(t0: bigint, ops: number): number {
  return Number(process.hrtime.bigint() - t0) / ops;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
