import os from 'node:os';
import { openLoop, type OpenLoopResult } from '../harness/open-loop';
import { interleaved, type Aim, type Scenario } from '../harness/scenario';
import { ServerProcess } from '../harness/server-process';
import { percentile, round, show, spread, type Spread } from '../harness/stats';

/** The slot app's dependency (servers/slot.app.ts): 10 calls at a time × 50 ms = 200/s. */
const CAPACITY = 200;
const SERVICE_MS = 50;
const LIMIT = 10;
const QUEUE = { size: 100, timeoutMs: 1000 };
const QUIET_KEYS = 4;
/** A quiet key's rate: about a quarter of its fair share (10 slots / 5 keys = 2 slots ≈ 40/s). */
const QUIET_PER_SECOND = 10;

/** One traffic class: its own open loop, on its own route (and header). */
interface Flow {
  name: string;
  path: string;
  rate: number;
  headers?: Record<string, string>;
}

const PARTS = {
  priorities: {
    variants: ['plain', 'priorities'],
    flows: [
      { name: 'low', path: '/low', rate: 5 * CAPACITY },
      { name: 'critical', path: '/critical', rate: 0.3 * CAPACITY },
    ],
  },
  queue: {
    variants: ['fifo', 'lifo', 'codel'],
    flows: [{ name: 'all', path: '/', rate: 10 * CAPACITY }],
  },
  fairness: {
    variants: ['plain', 'partitioned'],
    flows: [
      { name: 'noisy', path: '/tenant', rate: 10 * CAPACITY, headers: { 'x-tenant': 'noisy' } },
      ...Array.from({ length: QUIET_KEYS }, (_, i) => ({
        name: `quiet${i + 1}`,
        path: '/tenant',
        rate: QUIET_PER_SECOND,
        headers: { 'x-tenant': `quiet-${i + 1}` },
      })),
    ],
  },
} satisfies Record<string, { variants: readonly string[]; flows: readonly Flow[] }>;
type Part = keyof typeof PARTS;

/** One point's figures, by name (each summarised as median and min–max over the repetitions). */
type Run = Record<string, number>;

/**
 * Scenario 11 (issue 11, parts 1–3): who gets the slot under overload. Scenario 3's dependency
 * (10 calls at a time × 50 ms: 200/s) behind a gauge of 10, open-loop traffic classes at once
 * (one open loop each), 1 s client deadline, one fresh server per point, variants of a part
 * interleaved and rotated round by round:
 * 1. priorities (fail fast): `low` at 5× capacity + `critical` at 0.3×; `plain` (no @Priority:
 *    everyone `normal`) vs `priorities` (@Priority('low') / @Priority('critical')).
 * 2. queue discipline (queue of 100, 1 s) at 10× capacity: `fifo`, `lifo`, `codel` (defaults).
 * 3. per-key fairness (fail fast): one noisy key at 10× capacity + 4 quiet keys at 10/s each
 *    (a quarter of a fair share), keyed by `x-tenant`; `plain` (no partition) vs `partitioned`.
 * Success = 2xx within the deadline ÷ requests ended in the measured window; goodput = 2xx
 * within the deadline per second ÷ capacity.
 */
export const scenario: Scenario = {
  id: '11-who-gets-the-slot',
  title:
    'Who gets the slot: priorities, queue discipline, per-key fairness (gauge of 10, 10 × 50 ms)',
  async run(ctx) {
    const settings = {
      parts: Object.fromEntries(
        Object.entries(PARTS).map(([part, p]) => [
          part,
          {
            variants: p.variants,
            flows: p.flows.map(({ name, path, rate }) => ({ name, path, rate })),
          },
        ]),
      ),
      capacityPerSecond: CAPACITY,
      dependency: { width: 10, serviceMs: SERVICE_MS },
      limit: LIMIT,
      queue: { ...QUEUE, codel: { targetMs: 5, intervalMs: 100 } },
      partition: "request.headers['x-tenant']",
      seconds: ctx.quick ? 0.5 : 4,
      rampSeconds: ctx.quick ? 0.5 : 2,
      warmSeconds: ctx.quick ? 0.2 : 1,
      deadlineMs: 1000,
      reps: ctx.reps,
      loadAverageStart: os.loadavg().map((l) => round(l, 3)),
    };

    const point = async (part: Part, variant: string, rep: number): Promise<Run> => {
      const server = await ServerProcess.start({ app: 'slot', variant: `${part}-${variant}` });
      const flows: readonly Flow[] = PARTS[part].flows;
      try {
        const offer = (flow: Flow, rate: number, seconds: number, ramp: number) =>
          openLoop({
            url: server.url + flow.path,
            rate,
            count: Math.max(1, Math.round(rate * (ramp + seconds))),
            deadlineMs: settings.deadlineMs,
            maxSockets: 2500,
            rampSeconds: ramp,
            ...(flow.headers && { headers: flow.headers }),
          });
        // Warm-up (JIT, connections) at half capacity in all, then the server back to idle.
        const warmRate = CAPACITY / 2 / flows.length;
        await Promise.all(
          flows.map((f) => offer(f, Math.min(f.rate, warmRate), settings.warmSeconds, 0)),
        );
        await server.settle();
        const before = await server.stats(false, true);
        const results = await Promise.all(
          flows.map((f) => offer(f, f.rate, settings.seconds, settings.rampSeconds)),
        );
        const after = await server.stats();
        const byFlow = new Map(flows.map((f, i) => [f.name, results[i]!])); // one result per flow
        const run = figures(part, byFlow);
        run.serverLoopP99Ms = after.loopDelayP99Ms;
        run.clientLoopP99Ms = Math.max(...results.map((r) => r.loopDelayP99Ms));
        run.gaugeRejected = (after.gauge?.rejected ?? NaN) - (before.gauge?.rejected ?? NaN);
        run.gaugeTimedOut = (after.gauge?.timedOut ?? NaN) - (before.gauge?.timedOut ?? NaN);
        ctx.log(`  rep ${rep + 1} ${part}/${variant}: ${headline(part, run)}`);
        return run;
      } finally {
        await server.stop();
      }
    };

    const data: Record<string, Record<string, Record<string, Spread>>> = {};
    for (const part of Object.keys(PARTS) as Part[]) {
      const variants: readonly string[] = PARTS[part].variants;
      const runs = await interleaved(ctx.reps, variants, (v, rep) => point(part, v, rep), true);
      data[part] = {};
      for (const variant of variants) {
        const rs = runs.get(variant) ?? [];
        const names = Object.keys(rs[0] ?? {});
        data[part][variant] = Object.fromEntries(
          names.map((n) => [n, spread(rs.map((r) => round(r[n] ?? NaN, 4)))]),
        );
      }
    }

    const at = (part: Part, variant: string, figure: string): Spread => {
      const found = data[part]?.[variant]?.[figure];
      if (found === undefined) throw new Error(`no ${figure} for ${part}/${variant}`);
      return found;
    };
    const aim = (
      what: string,
      figure: Spread,
      target: string,
      met: ((median: number) => boolean) | undefined,
      unit = '',
    ): Aim => ({
      what,
      target: met ? target : '(reported)',
      value: show(figure, 3, unit),
      met: met ? met(figure.median) : true,
    });
    const p99Target = 1.5 * SERVICE_MS;
    const aims: Aim[] = [
      // Part 1: priorities.
      aim(
        'priorities: critical success (2xx within 1 s)',
        at('priorities', 'priorities', 'criticalSuccess'),
        '≥ 0.99',
        (m) => m >= 0.99,
      ),
      aim(
        'priorities: critical p99 of 2xx',
        at('priorities', 'priorities', 'criticalP99Ms'),
        `≤ ${p99Target} ms (1.5 × service time)`,
        (m) => m <= p99Target,
        ' ms',
      ),
      aim(
        'priorities: total goodput (low + critical) ÷ capacity',
        at('priorities', 'priorities', 'totalGoodput'),
        '≥ 0.9',
        (m) => m >= 0.9,
      ),
      aim(
        'priorities: low goodput ÷ capacity',
        at('priorities', 'priorities', 'lowGoodput'),
        '',
        undefined,
      ),
      aim(
        'plain (no @Priority): critical success',
        at('priorities', 'plain', 'criticalSuccess'),
        '',
        undefined,
      ),
      aim(
        'plain (no @Priority): critical p99 of 2xx',
        at('priorities', 'plain', 'criticalP99Ms'),
        '',
        undefined,
        ' ms',
      ),
      aim(
        'plain (no @Priority): total goodput ÷ capacity',
        at('priorities', 'plain', 'totalGoodput'),
        '',
        undefined,
      ),
    ];
    // Part 2: queue discipline.
    for (const variant of PARTS.queue.variants) {
      const judged = variant === 'codel';
      aims.push(
        aim(
          `queue ${variant} at 10×: goodput ÷ capacity`,
          at('queue', variant, 'goodput'),
          '≥ 0.95',
          judged ? (m) => m >= 0.95 : undefined,
        ),
        aim(
          `queue ${variant} at 10×: p99 of 2xx`,
          at('queue', variant, 'okP99Ms'),
          `≤ ${p99Target} ms (1.5 × service time)`,
          judged ? (m) => m <= p99Target : undefined,
          ' ms',
        ),
      );
    }
    // Part 3: per-key fairness.
    aims.push(
      aim(
        'partitioned: quiet keys’ success (all 4 together)',
        at('fairness', 'partitioned', 'quietSuccess'),
        '≥ 0.99',
        (m) => m >= 0.99,
      ),
      aim(
        'partitioned: worst quiet key’s success',
        at('fairness', 'partitioned', 'quietWorstSuccess'),
        '',
        undefined,
      ),
      aim(
        'partitioned: noisy key’s goodput ÷ capacity',
        at('fairness', 'partitioned', 'noisyGoodput'),
        '',
        undefined,
      ),
      aim(
        'partitioned: total goodput ÷ capacity',
        at('fairness', 'partitioned', 'totalGoodput'),
        '',
        undefined,
      ),
      aim(
        'plain (no partition): quiet keys’ success',
        at('fairness', 'plain', 'quietSuccess'),
        '',
        undefined,
      ),
      aim(
        'plain (no partition): total goodput ÷ capacity',
        at('fairness', 'plain', 'totalGoodput'),
        '',
        undefined,
      ),
    );
    return {
      settings: { ...settings, loadAverageEnd: os.loadavg().map((l) => round(l, 3)) },
      data,
      aims,
    };
  },
};

/** 2xx within the deadline ÷ requests ended in the window. */
const success = (r: OpenLoopResult) => r.okInDeadline / Math.max(1, r.outcomes);
/** 2xx within the deadline per second ÷ capacity. */
const goodput = (r: OpenLoopResult) => r.okInDeadline / r.seconds / CAPACITY;

/** A point's figures from each flow's open loop. */
function figures(part: Part, flows: Map<string, OpenLoopResult>): Run {
  const all = [...flows.values()];
  const run: Run = { totalGoodput: all.reduce((n, r) => n + goodput(r), 0) };
  for (const [name, r] of flows) {
    run[`${name}Success`] = success(r);
    run[`${name}Goodput`] = goodput(r);
    run[`${name}P99Ms`] = percentile(r.okLatenciesMs, 99);
  }
  if (part === 'queue') {
    const r = flows.get('all')!; // the queue part's one flow
    const outcomes = Math.max(1, r.outcomes);
    run.goodput = goodput(r);
    run.okP50Ms = percentile(r.okLatenciesMs, 50);
    run.okP99Ms = percentile(r.okLatenciesMs, 99);
    run.refusedShare = r.rejectedLatenciesMs.length / outcomes;
    run.refusedP99Ms = percentile(r.rejectedLatenciesMs, 99);
    run.timedOutShare = r.timedOut / outcomes;
  }
  if (part === 'fairness') {
    const quiet = [...flows].filter(([name]) => name.startsWith('quiet')).map(([, r]) => r);
    const ok = quiet.reduce((n, r) => n + r.okInDeadline, 0);
    const outcomes = quiet.reduce((n, r) => n + r.outcomes, 0);
    run.quietSuccess = ok / Math.max(1, outcomes);
    run.quietWorstSuccess = Math.min(...quiet.map(success));
    run.quietP99Ms = percentile(
      quiet.flatMap((r) => r.okLatenciesMs),
      99,
    );
  }
  return run;
}

/** The log line of one point. */
function headline(part: Part, run: Run): string {
  const f = (name: string, digits = 3) => round(run[name] ?? NaN, digits);
  switch (part) {
    case 'priorities':
      return `critical ok ${f('criticalSuccess')}, p99 ${f('criticalP99Ms')} ms; goodput low ${f('lowGoodput')}, total ${f('totalGoodput')}`;
    case 'queue':
      return `goodput ${f('goodput')}, p50 ${f('okP50Ms')} ms, p99 ${f('okP99Ms')} ms, timed out ${f('timedOutShare')}`;
    case 'fairness':
      return `quiet ok ${f('quietSuccess')} (worst ${f('quietWorstSuccess')}), p99 ${f('quietP99Ms')} ms; goodput noisy ${f('noisyGoodput')}, total ${f('totalGoodput')}`;
  }
}
