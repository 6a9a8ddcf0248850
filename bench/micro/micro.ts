import { bulkhead } from 'cockatiel';
import { lib } from '../harness/lib';

/**
 * Scenario 5's measurements, run in a child process of their own (`node --expose-gc`) so the
 * runner's sockets and timers stay out of the way. Prints one JSON object: ns per operation.
 */
type Bench = () => Promise<number>;
const noop = () => 1;

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const reps = Number(process.argv.find((a) => a.startsWith('--reps='))?.slice(7) ?? 5);
  const syncOps = quick ? 100_000 : 3_000_000;
  const asyncOps = quick ? 20_000 : 300_000;
  const waiters = quick ? 10_000 : 100_000;
  const { default: pLimit } = await import('p-limit');

  const gauge = new lib.PressureGauge({ name: 'micro', limit: 10 });
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

  const out: Record<string, number[]> = {};
  const record = (key: string, value: number) => (out[key] ??= []).push(value);
  for (let rep = -1; rep < reps; rep++) {
    // rep -1 warms the JIT and is thrown away; then every bench runs once per rep, interleaved.
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
  if (gauge.inFlight !== 0 || gauge.queued !== 0)
    throw new Error('micro: gauge not idle after the run');
  process.stdout.write(
    JSON.stringify({ settings: { syncOps, asyncOps, waiters, reps }, nsPerOp: out }),
  );
}

function perOp(t0: bigint, ops: number): number {
  return Number(process.hrtime.bigint() - t0) / ops;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
