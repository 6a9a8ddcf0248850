import { openLoop, type OpenLoopResult } from '../harness/open-loop';
import { interleaved, type Aim, type Scenario } from '../harness/scenario';
import { ServerProcess } from '../harness/server-process';
import { percentile, round, show, spread } from '../harness/stats';

const VARIANTS = ['none', 'limit4', 'eventLoop'] as const;
type Variant = (typeof VARIANTS)[number];
/** Scenario 4's handler: 5 ms of CPU, so one core serves 200/s. */
const CAPACITY = 200;
/** Critical traffic, as a share of capacity, next to the normal flood. */
const CRITICAL_SHARE = 0.1;

interface Run {
  criticalSuccess: number;
  criticalP99Ms: number;
  normalGoodput: number;
  totalGoodput: number;
  serverLoopP99Ms: number;
}

/**
 * Scenario 10 (issue 11, part 4): the process itself is the bottleneck. Scenario 4's CPU-bound
 * handler on two routes of one gauge; open-loop `normal` traffic at 2× and 5× what the process
 * serves, plus `critical` traffic at 0.1×, 1 s client deadline. Variants, one fresh server per
 * point, interleaved and rotated: no gauge, a fail-fast limit of 4 (scenario 4's best static,
 * with priority headroom), and `eventLoop: true` on a gauge too wide to fill (only event-loop
 * pressure sheds). Judged: critical success and p99, the goodput kept.
 */
export const scenario: Scenario = {
  id: '10-process-pressure',
  title: 'Event-loop pressure: critical traffic in a CPU-saturated process (5 ms handler)',
  async run(ctx) {
    const settings = {
      variants: VARIANTS,
      loads: ctx.quick ? [2] : [2, 5],
      capacityPerSecond: CAPACITY,
      criticalPerSecond: CRITICAL_SHARE * CAPACITY,
      seconds: ctx.quick ? 0.5 : 4,
      rampSeconds: ctx.quick ? 0.5 : 2,
      deadlineMs: 1000,
      reps: ctx.reps,
    };
    const data: Record<string, Record<string, unknown>> = {};
    const aims: Aim[] = [];
    for (const load of settings.loads) {
      const point = async (variant: Variant, rep: number): Promise<Run> => {
        const server = await ServerProcess.start({ app: 'pressure', variant });
        try {
          const total = settings.rampSeconds + settings.seconds;
          const offer = (path: string, rate: number) =>
            openLoop({
              url: server.url + path,
              rate,
              count: Math.round(rate * total),
              deadlineMs: settings.deadlineMs,
              maxSockets: 2500,
              rampSeconds: settings.rampSeconds,
            });
          // Warm-up at half capacity (JIT, connections), then the server back to idle.
          await openLoop({
            url: server.url,
            rate: CAPACITY / 2,
            count: Math.round((CAPACITY / 2) * (ctx.quick ? 0.2 : 1)),
            deadlineMs: settings.deadlineMs,
            maxSockets: 2500,
            keepLatencies: false,
          });
          await server.settle();
          const [normal, critical] = await Promise.all([
            offer('/', load * CAPACITY),
            offer('/critical', settings.criticalPerSecond),
          ]);
          const stats = await server.stats(false, true);
          const run: Run = {
            criticalSuccess: critical.okInDeadline / Math.max(1, critical.outcomes),
            criticalP99Ms: percentile(critical.okLatenciesMs, 99),
            normalGoodput: rate(normal) / CAPACITY,
            totalGoodput: (rate(normal) + rate(critical)) / CAPACITY,
            serverLoopP99Ms: stats.loopDelayP99Ms,
          };
          ctx.log(
            `  rep ${rep + 1} ${variant} ${load}x: critical ok ${round(run.criticalSuccess)}, p99 ${round(run.criticalP99Ms, 1)} ms; goodput normal ${round(run.normalGoodput)}, total ${round(run.totalGoodput)}`,
          );
          return run;
        } finally {
          await server.stop();
        }
      };
      const runs = await interleaved(ctx.reps, VARIANTS, point, true);
      for (const variant of VARIANTS) {
        const rs = runs.get(variant) ?? [];
        const of = (pick: (r: Run) => number) => spread(rs.map((r) => round(pick(r), 4)));
        const figures = {
          criticalSuccess: of((r) => r.criticalSuccess),
          criticalP99Ms: of((r) => r.criticalP99Ms),
          normalGoodput: of((r) => r.normalGoodput),
          totalGoodput: of((r) => r.totalGoodput),
          serverLoopP99Ms: of((r) => r.serverLoopP99Ms),
        };
        (data[variant] ??= {})[load] = figures;
        const judged = variant === 'eventLoop';
        aims.push(
          {
            what: `${variant} at ${load}×: critical p99 of 2xx`,
            target: judged ? '≤ 50 ms' : '(reported)',
            value: show(figures.criticalP99Ms, 3, ' ms'),
            met: !judged || figures.criticalP99Ms.median <= 50,
          },
          {
            what: `${variant} at ${load}×: critical success (2xx within 1 s)`,
            target: judged ? '≥ 0.99' : '(reported)',
            value: show(figures.criticalSuccess),
            met: !judged || figures.criticalSuccess.median >= 0.99,
          },
          {
            what: `${variant} at ${load}×: goodput (normal + critical) ÷ capacity`,
            target: '(reported)',
            value: show(figures.totalGoodput),
            met: true,
          },
        );
      }
    }
    return { settings, data, aims };
  },
};

/** 2xx within the deadline per second, in the measured window. */
function rate(result: OpenLoopResult): number {
  return result.okInDeadline / result.seconds;
}
