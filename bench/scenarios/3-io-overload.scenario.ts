import { overloadSweep, pointAt } from '../harness/overload';
import type { Aim, Scenario } from '../harness/scenario';
import { required, show } from '../harness/stats';

const MODES = ['control', 'failfast', 'queue'] as const;
const SERVICE_MS = 50;

/**
 * Scenario 3: I/O overload. A handler awaits a dependency that serves 10 calls at a time in 50 ms
 * (200/s). Offered 1×–10× that at a fixed arrival rate with a 1 s client deadline: without a limiter
 * the dependency's queue grows until every answer comes too late; with a gauge of 10 the excess is
 * refused at once and the dependency keeps serving on time.
 */
export const scenario: Scenario = {
  id: '3-io-overload',
  title: 'I/O-bound overload (gauge of 10, dependency 10 × 50 ms)',
  async run(ctx) {
    const settings = {
      modes: MODES,
      loads: ctx.quick ? [1, 10] : [1, 2, 5, 10],
      capacityPerSecond: 200,
      seconds: ctx.quick ? 0.5 : 4,
      rampSeconds: ctx.quick ? 0.5 : 2,
      deadlineMs: 1000,
      gauge: { limit: 10, queue: { size: 20, timeoutMs: 100 } },
      dependency: { width: 10, serviceMs: SERVICE_MS },
      reps: ctx.reps,
    };
    const data = await overloadSweep(ctx, { app: 'io', ...settings });
    const top = String(settings.loads[settings.loads.length - 1]);
    const failfast = pointAt(data, 'failfast', top);
    const aims: Aim[] = [
      {
        what: `fail fast at ${top}×: goodput`,
        target: '≥ 0.95',
        value: show(failfast.goodput),
        met: failfast.goodput.median >= 0.95,
      },
      {
        what: `fail fast at ${top}×: p99 of 2xx`,
        target: `≤ ${1.2 * SERVICE_MS} ms (1.2 × service time)`,
        value: show(failfast.okP99Ms, 3, ' ms'),
        met: failfast.okP99Ms.median <= 1.2 * SERVICE_MS,
      },
      {
        what: `queue at ${top}×: goodput`,
        target: '(no aim)',
        value: show(pointAt(data, 'queue', top).goodput),
        met: true,
      },
      {
        what: `control at ${top}×: goodput`,
        target: '(collapse expected)',
        value: show(pointAt(data, 'control', top).goodput),
        met: true,
      },
    ];
    for (const mode of ['failfast', 'queue'] as const) {
      const points = Object.values(required(data, mode));
      const peak = Math.max(...points.map((p) => p.peakInHandler.max));
      const leftover = Math.max(
        ...points.map((p) => Math.max(p.inFlightAfter.max, p.queuedAfter.max)),
      );
      aims.push(
        {
          what: `${mode}: peak handlers in flight, all points`,
          target: '≤ 10',
          value: String(peak),
          met: peak <= 10,
        },
        {
          what: `${mode}: inFlight / queued after each point`,
          target: '0',
          value: String(leftover),
          met: leftover === 0,
        },
      );
    }
    return { settings, data, aims };
  },
};
