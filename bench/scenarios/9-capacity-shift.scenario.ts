import os from 'node:os';
import { openLoop } from '../harness/open-loop';
import { interleaved, sleep, type Aim, type Scenario } from '../harness/scenario';
import { ServerProcess } from '../harness/server-process';
import { percentile, round, show, spread, type Spread } from '../harness/stats';

const VARIANTS = ['none', 'static10', 'oracle', 'gradient2', 'vegas', 'aimd'] as const;
type Variant = (typeof VARIANTS)[number];
/** The dependency's width in each phase: 10 → 4 → 20 calls at once, 50 ms each. */
const WIDTHS = [10, 4, 20] as const;
const SERVICE_MS = 50;
/** Offered load: 1.5 × the first phase's capacity (10 / 50 ms = 200/s), constant, open loop. */
const OFFERED = (1.5 * WIDTHS[0] * 1000) / SERVICE_MS;

/** One bucket of one run: what ended in it. */
interface Bucket {
  ok: number;
  refused: number;
  timedOut: number;
  okLatencies: number[];
}

/** One run of one variant: its time series and the per-phase figures the goals are judged on. */
interface Run {
  goodput: number[];
  p99: number[];
  limit: number[];
  phases: Array<{ goodput: number; p99Ms: number; limitMedian: number; limitDeviation: number }>;
}

/**
 * Scenario 9 (issue 10): capacity shift. The endpoint awaits a dependency serving at most C calls
 * at once (the rest wait inside it, as a pool's callers do), 50 ms each; C goes 10 → 4 → 20 in
 * phases of 8 s under a constant open-loop load of 300/s (1.5 × the first phase's capacity), 1 s
 * client deadline. Variants, one fresh server per run, interleaved and rotated round by round:
 * no limit, a fixed 10, the per-phase oracle (a fixed limit set to C at each shift) and the three
 * adaptive policies with their defaults. Recorded per 500 ms bucket: goodput (2xx within the
 * deadline, by the time they ended), p99 of those successes, and the gauge's limit (its stats
 * polled every 100 ms). Each phase is judged after a 3 s settling window; the limit's stability
 * from 5 s after the shift to the phase's end.
 */
export const scenario: Scenario = {
  id: '9-capacity-shift',
  title: 'Adaptive limits under a capacity shift (dependency 10 → 4 → 20 × 50 ms, 300/s offered)',
  async run(ctx) {
    const settings = {
      variants: VARIANTS,
      widths: WIDTHS,
      serviceMs: SERVICE_MS,
      offeredPerSecond: OFFERED,
      phaseSeconds: ctx.quick ? 1.5 : 8,
      bucketMs: 500,
      settleSeconds: ctx.quick ? 0.5 : 3,
      stableAfterSeconds: ctx.quick ? 0.5 : 5,
      pollMs: 100,
      deadlineMs: 1000,
      warm: { perSecond: 100, seconds: ctx.quick ? 0.3 : 1 },
      reps: ctx.reps,
      loadAverageStart: os.loadavg().map((l) => round(l, 3)),
    };
    const phaseMs = settings.phaseSeconds * 1000;
    const totalMs = phaseMs * WIDTHS.length;
    const buckets = Math.ceil(totalMs / settings.bucketMs);

    const once = async (variant: Variant, rep: number): Promise<Run> => {
      const server = await ServerProcess.start({ app: 'shift', variant });
      try {
        const warm = settings.warm;
        await openLoop({
          url: server.url,
          rate: warm.perSecond,
          count: Math.round(warm.perSecond * warm.seconds),
          deadlineMs: settings.deadlineMs,
          maxSockets: 2500,
          keepLatencies: false,
        });
        await server.settle();
        return await measure(server);
      } finally {
        await server.stop();
        ctx.log(`  rep ${rep + 1} ${variant} done`);
      }
    };

    const measure = async (server: ServerProcess): Promise<Run> => {
      const series: Bucket[] = Array.from({ length: buckets }, () => ({
        ok: 0,
        refused: 0,
        timedOut: 0,
        okLatencies: [],
      }));
      const polls: Array<{ t: number; limit: number }> = [];
      const timers: NodeJS.Timeout[] = [];
      let t0 = 0;
      let polling = true;
      const poll = async () => {
        while (polling) {
          const stats = await server.stats();
          if (stats.gauge) polls.push({ t: performance.now() - t0, limit: stats.gauge.limit });
          await sleep(settings.pollMs);
        }
      };
      let poller: Promise<void> = Promise.resolve();
      await openLoop({
        url: server.url,
        rate: OFFERED,
        count: Math.round((OFFERED * totalMs) / 1000),
        deadlineMs: settings.deadlineMs,
        maxSockets: 2500,
        keepLatencies: false,
        onStart: (start) => {
          t0 = start;
          WIDTHS.forEach((width, phase) => {
            if (phase === 0) return;
            const delay = Math.max(0, t0 + phase * phaseMs - performance.now());
            timers.push(setTimeout(() => void server.control('width', width), delay));
          });
          poller = poll();
        },
        onOutcome: (sentAt, endedAt, status) => {
          const bucket = series[Math.floor(endedAt / settings.bucketMs)];
          if (bucket === undefined) return; // the drain after the last send
          if (status === 'timeout' || status === 'error') bucket.timedOut++;
          else if (status === 429) bucket.refused++;
          else if (status >= 200 && status < 300 && endedAt - sentAt <= settings.deadlineMs) {
            bucket.ok++;
            bucket.okLatencies.push(endedAt - sentAt);
          }
        },
      });
      polling = false;
      await poller;
      for (const timer of timers) clearTimeout(timer);

      const perSecond = 1000 / settings.bucketMs;
      const bucketLimit = (b: number) => {
        const from = b * settings.bucketMs;
        const inBucket = polls.filter((p) => p.t >= from && p.t < from + settings.bucketMs);
        return inBucket.length
          ? percentile(
              inBucket.map((p) => p.limit),
              50,
            )
          : NaN;
      };
      const phases = WIDTHS.map((_, phase) => {
        const start = phase * phaseMs;
        const end = start + phaseMs;
        const first = (start + settings.settleSeconds * 1000) / settings.bucketMs;
        const judged = series.slice(first, end / settings.bucketMs);
        const ok = judged.reduce((n, b) => n + b.ok, 0);
        const stable = polls
          // Up to a poll before the next shift: a poll answered just after it may show its limit.
          .filter(
            (p) =>
              p.t >= start + settings.stableAfterSeconds * 1000 && p.t < end - 2 * settings.pollMs,
          )
          .map((p) => p.limit);
        const limitMedian = percentile(stable, 50);
        const limitDeviation = stable.length
          ? Math.max(...stable.map((l) => Math.abs(l - limitMedian) / limitMedian))
          : NaN;
        return {
          goodput: ok / ((judged.length * settings.bucketMs) / 1000),
          p99Ms: percentile(
            judged.flatMap((b) => b.okLatencies),
            99,
          ),
          limitMedian,
          limitDeviation,
        };
      });
      return {
        goodput: series.map((b) => b.ok * perSecond),
        p99: series.map((b) => percentile(b.okLatencies, 99)),
        limit: series.map((_, b) => bucketLimit(b)),
        phases,
      };
    };

    // BENCH_SHIFT_VARIANTS=gradient2,vegas runs a subset (for tuning; committed results run all).
    const picked = process.env.BENCH_SHIFT_VARIANTS?.split(',');
    const variants = VARIANTS.filter((v) => !picked || picked.includes(v));
    const runs = await interleaved(ctx.reps, variants, once, true);
    const data: Record<string, unknown> = {};
    const aims: Aim[] = [];
    const across = (values: number[]) => {
      const finite = values.filter((v) => Number.isFinite(v));
      const s = spread(finite.map((v) => round(v, 4)));
      return { median: s.median, min: s.min, max: s.max, runs: values.map((v) => round(v, 4)) };
    };
    for (const variant of variants) {
      const rs = runs.get(variant)!;
      const bucketsOf = (pick: (r: Run) => number[]) =>
        // A missing bucket counts as not measured (NaN, dropped from the spread, null in JSON).
        Array.from({ length: buckets }, (_, b) => across(rs.map((r) => pick(r)[b] ?? NaN)));
      const phases = WIDTHS.map((width, phase) => {
        const capacity = (width * 1000) / SERVICE_MS;
        const of = (pick: (p: Run['phases'][number]) => number): Spread =>
          across(rs.map((r) => pick(r.phases[phase]!))); // a run has one entry per phase
        return {
          width,
          capacityPerSecond: capacity,
          goodputTarget: 0.9 * Math.min(OFFERED, capacity),
          goodput: of((p) => p.goodput),
          p99Ms: of((p) => p.p99Ms),
          limitMedian: of((p) => p.limitMedian),
          limitDeviation: of((p) => p.limitDeviation),
        };
      });
      data[variant] = {
        phases,
        series: {
          goodput: bucketsOf((r) => r.goodput),
          p99Ms: bucketsOf((r) => r.p99),
          limit: bucketsOf((r) => r.limit),
        },
      };
      phases.forEach((p, i) => {
        const label = `${variant}, phase ${i + 1} (C = ${p.width})`;
        ctx.log(
          `  ${label}: goodput ${show(p.goodput)}/s [target ${p.goodputTarget}], p99 ${show(p.p99Ms, 3, ' ms')}, limit ${show(p.limitMedian)} ±${show(p.limitDeviation, 2)}`,
        );
        if (variant === 'gradient2' || variant === 'vegas' || variant === 'aimd') {
          const judged = variant !== 'aimd';
          aims.push(
            {
              what: `${label}: goodput per s after 3 s`,
              target: judged ? `≥ ${p.goodputTarget} (0.9 × min(offered, capacity))` : '(reported)',
              value: show(p.goodput),
              met: !judged || p.goodput.median >= p.goodputTarget,
            },
            {
              what: `${label}: p99 of successes after 3 s`,
              target: judged ? `≤ ${3 * SERVICE_MS} ms (3 × service time)` : '(reported)',
              value: show(p.p99Ms, 3, ' ms'),
              met: !judged || p.p99Ms.median <= 3 * SERVICE_MS,
            },
            {
              what: `${label}: limit's largest deviation from its median, 5 s after the shift on`,
              target: judged ? '≤ 0.2 (±20 %)' : '(reported)',
              value: `${show(p.limitDeviation, 2)} around ${show(p.limitMedian)}`,
              met: !judged || p.limitDeviation.median <= 0.2,
            },
          );
        }
      });
    }
    if (picked) return { settings: { ...settings, variants }, data, aims };
    const phase = (variant: Variant, i: number) => {
      const { phases } = data[variant] as {
        phases: Array<{ goodput: Spread; goodputTarget: number }>;
      };
      const found = phases[i];
      if (found === undefined) throw new Error(`${variant} has no phase ${i + 1}`);
      return found;
    };
    const static3 = phase('static10', 2);
    const none2 = phase('none', 1);
    aims.push(
      {
        what: 'static 10, phase 3 (C = 20): goodput per s (capped at 200/s)',
        target: `< ${static3.goodputTarget} (visibly loses)`,
        value: show(static3.goodput),
        met: static3.goodput.median < static3.goodputTarget,
      },
      {
        what: 'no limit, phase 2 (C = 4): goodput per s',
        target: `< ${0.5 * none2.goodputTarget} (collapses)`,
        value: show(none2.goodput),
        met: none2.goodput.median < 0.5 * none2.goodputTarget,
      },
    );
    return {
      settings: { ...settings, loadAverageEnd: os.loadavg().map((l) => round(l, 3)) },
      data,
      aims,
    };
  },
};
