import { overloadSweep } from '../harness/overload';
import type { Aim, Scenario } from '../harness/scenario';
import { show } from '../harness/stats';

const MODES = ['none', 'limit1', 'limit2', 'limit4'] as const;

/**
 * Scenario 4: CPU-bound overload. The handler burns 5 ms of CPU on the event loop (200/s on one
 * core). A gauge cannot add CPU; what it can do is refuse the excess cheaply instead of letting
 * every request wait its turn on the event loop past its deadline.
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
    const data = await overloadSweep(ctx, { app: 'cpu', ...settings });
    const aims: Aim[] = [];
    for (const load of settings.loads) {
      for (const mode of MODES) {
        const p = data[mode][load];
        aims.push({
          what: `${mode} at ${load}×: goodput`,
          target: '(no aim; reported)',
          value: show(p.goodput),
          met: true,
        });
      }
    }
    return { settings, data, aims };
  },
};
