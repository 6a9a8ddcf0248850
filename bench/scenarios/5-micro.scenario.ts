import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Aim, Scenario } from '../harness/scenario';
import { required, round, show, spread, type Spread } from '../harness/stats';

/**
 * Scenario 5: the core alone, no HTTP: uncontended acquire/release and `process()` in ns/op next to
 * p-limit and cockatiel's bulkhead, and 100k queued waiters drained through one slot; issue 10:
 * acquire()+release on adaptive gauges (each a sample for the policy) and two clock reads.
 */
export const scenario: Scenario = {
  id: '5-micro',
  title: 'Core micro-benchmark',
  async run(ctx) {
    const args = [
      join(__dirname, '..', 'micro', 'micro.js'),
      `--reps=${Math.max(ctx.reps, ctx.quick ? 1 : 5)}`,
    ];
    if (ctx.quick) args.push('--quick');
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', ...args], {
      env: { ...process.env, NODE_ENV: 'production' },
      maxBuffer: 16 * 2 ** 20,
    });
    const raw = JSON.parse(stdout) as {
      settings: Record<string, unknown>;
      nsPerOp: Record<string, number[]>;
    };
    const nsPerOp: Record<string, Spread> = {};
    for (const [name, runs] of Object.entries(raw.nsPerOp)) {
      nsPerOp[name] = spread(runs);
      ctx.log(`  ${name}: ${show(nsPerOp[name], 3, ' ns')}`);
    }
    const tryAcquire = required(nsPerOp, 'gauge tryAcquire()+release');
    const drained = required(nsPerOp, 'gauge: drain, per waiter');
    const fixed = required(nsPerOp, 'gauge acquire()+release (fail fast)');
    const aims: Aim[] = [
      ...(['gradient2', 'vegas', 'aimd'] as const).map((name) => {
        const ns = required(nsPerOp, `adaptive ${name}: acquire()+release+sample`);
        return {
          what: `adaptive ${name}: acquire()+release+sample (fixed limit: ${round(fixed.median)} ns)`,
          target: '≤ 150 ns',
          value: show(ns, 3, ' ns'),
          met: ns.median <= 150,
        };
      }),
      {
        what: 'uncontended tryAcquire()+release',
        target: '≤ 100 ns',
        value: show(tryAcquire, 3, ' ns'),
        met: tryAcquire.median <= 100,
      },
      {
        what: 'drained waiter (100k queued)',
        target: '≤ 1 µs',
        value: show(drained, 3, ' ns'),
        met: drained.median <= 1000,
      },
    ];
    return { settings: raw.settings, data: { nsPerOp }, aims };
  },
};
