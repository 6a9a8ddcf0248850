import { overloadSweep, pointAt } from '../harness/overload';
import type { Aim, Scenario } from '../harness/scenario';
import { round, show } from '../harness/stats';

const STATIC = ['limit1', 'limit2', 'limit4'] as const;
const ADAPTIVE = ['gradient2', 'vegas', 'aimd'] as const;
const MODES = ['none', ...STATIC, ...ADAPTIVE] as const;

/**
 * Scenario 4: CPU-bound overload. The handler burns 5 ms of CPU on the event loop (200/s on one
 * core). A gauge cannot add CPU; what it can do is refuse the excess cheaply instead of letting
 * every request wait its turn on the event loop past its deadline. Issue 10: the adaptive limits
 * (defaults) in the same run, against the best of the static limits 1, 2 and 4.
 */
export const scenario: Scenario = {
  id: '4-cpu-overload',
  title: 'CPU-bound overload (handler burns 5 ms)',
  async run(ctx) {
    const settings = {
      modes: MODES,
      loads: ctx.quick ? [2] : [2, 5],
      capacityPerSecond: 200,
      seconds: ctx.quick ? 0.5 : 4,
      rampSeconds: ctx.quick ? 0.5 : 2,
      deadlineMs: 1000,
      cpuMsPerRequest: 5,
      reps: ctx.reps,
    };
    // BENCH_CPU_MODES=limit1,gradient2 runs a subset (for tuning; committed results run all).
    const picked = process.env.BENCH_CPU_MODES?.split(',');
    if (picked) settings.modes = MODES.filter((m) => picked.includes(m)) as unknown as typeof MODES;
    const data = await overloadSweep(ctx, { app: 'cpu', ...settings });
    if (picked) return { settings, data, aims: [] };
    const aims: Aim[] = [];
    for (const load of settings.loads) {
      for (const mode of MODES) {
        const p = pointAt(data, mode, load);
        aims.push({
          what: `${mode} at ${load}×: goodput`,
          target: '(no aim; reported)',
          value: `${show(p.goodput)}, p99 ${show(p.okP99Ms, 3, ' ms')}, peak in handler ${p.peakInHandler.max}`,
          met: true,
        });
      }
      const best = STATIC.reduce((a, b) =>
        pointAt(data, b, load).goodput.median > pointAt(data, a, load).goodput.median ? b : a,
      );
      const bestGoodput = pointAt(data, best, load).goodput.median;
      for (const mode of ADAPTIVE) {
        const p = pointAt(data, mode, load);
        const judged = mode !== 'aimd';
        aims.push(
          {
            what: `${mode} at ${load}×: goodput ÷ best static (${best}, ${round(bestGoodput)})`,
            target: judged ? '≥ 0.95' : '(reported)',
            value: String(round(p.goodput.median / bestGoodput)),
            met: !judged || p.goodput.median >= 0.95 * bestGoodput,
          },
          {
            what: `${mode} at ${load}×: p99 of 2xx`,
            target: judged ? '≤ 50 ms' : '(reported)',
            value: show(p.okP99Ms, 3, ' ms'),
            met: !judged || p.okP99Ms.median <= 50,
          },
        );
      }
    }
    return { settings, data, aims };
  },
};
