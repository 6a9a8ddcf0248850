import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ClosedLoopResult } from '../harness/closed-loop';
import { baseBuild } from '../harness/lib';
import type { ServerSpec } from '../harness/server-process';
import type { Aim, Scenario } from '../harness/scenario';
import { sideBySide, sideBySideSettings } from '../harness/side-by-side';
import { pairwise, required, show, spread, type Spread } from '../harness/stats';
import { SEAM } from '../micro/seam-names';

const ADAPTERS = ['express', 'fastify'] as const;
const VARIANTS = ['limited', 'empty', 'base limited', 'base empty'] as const;
type Variant = (typeof VARIANTS)[number];
/** The timed variants, each compared with the older build's gauge, round by round. */
const ADDED = {
  'fixed limit, no listener': SEAM.fixed,
  'fixed limit, 1 listener': SEAM.fixedListener,
  'sampling policy, no listener': SEAM.sampling,
  'sampling policy, 1 listener': SEAM.samplingListener,
} as const;

/**
 * Scenario 8 (issue 9): what the limit-policy seam and gauge listeners cost, next to the build
 * before them (BENCH_BASE_LIB, e.g. commit 62283d2), in one run:
 *
 * - micro: acquire()+release in ns, fixed limit or a sampling policy, with and without a listener,
 *   and the older build's gauge in the same process; "added" is each round's difference with it;
 *   plus the cost of one clock read, which a timed slot pays twice.
 * - HTTP: `@Limited` ÷ an empty interceptor on a trivial GET, for the current build and for the
 *   older one, the four servers loaded in turn, round after round, each round starting one
 *   server further along (Express and Fastify).
 *
 * Without BENCH_BASE_LIB the "base" is the current build (a smoke test: the ratios mean nothing).
 */
export const scenario: Scenario = {
  id: '8-seams',
  title: 'Seam and listener overhead (issue 9)',
  async run(ctx) {
    const base = baseBuild();
    const baseLabel = base?.label ?? 'current build (BENCH_BASE_LIB unset)';
    const microReps = ctx.quick ? 1 : Math.max(ctx.reps, 11);
    const args = [join(__dirname, '..', 'micro', 'micro.js'), '--seams', `--reps=${microReps}`];
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
    const runs = (name: string) => required(raw.nsPerOp, name);
    const baseRuns = runs(SEAM.base);
    const clockRuns = runs(SEAM.clock);
    const addedNs: Record<string, Spread> = {};
    const addedBeyondClockNs: Record<string, Spread> = {};
    for (const [label, name] of Object.entries(ADDED)) {
      addedNs[label] = spread(pairwise(runs(name), baseRuns, (ns, base) => ns - base));
      // A timed slot reads performance.now() twice (at grant and at release): the rest is ours.
      if (name !== SEAM.fixed)
        addedBeyondClockNs[label] = spread(
          pairwise(
            pairwise(runs(name), baseRuns, (ns, base) => ns - base),
            clockRuns,
            (added, clock) => added - 2 * clock,
          ),
        );
      ctx.log(`  added vs ${baseLabel}, ${label}: ${show(addedNs[label], 3, ' ns')}`);
    }

    const settings = {
      ...sideBySideSettings(ctx),
      rotated: true,
      microReps,
      micro: raw.settings,
      base: baseLabel,
    };
    const http: Record<string, unknown> = {};
    const aims: Aim[] = Object.entries(addedNs).map(([label, added]) => ({
      what: `acquire()+release, ${label}: added ns vs ${baseLabel}`,
      target: '≤ 100 ns',
      value: show(added, 3, ' ns'),
      met: added.median <= 100,
    }));
    const spec = (variant: Variant): ServerSpec =>
      variant.startsWith('base ')
        ? { app: 'overhead', variant: variant.slice(5), env: base ? { BENCH_LIB: base.path } : {} }
        : { app: 'overhead', variant };
    for (const adapter of ctx.quick ? ADAPTERS.slice(0, 1) : ADAPTERS) {
      const results = await sideBySide(
        settings,
        adapter,
        VARIANTS,
        (variant, rep, result) =>
          ctx.log(
            `  ${adapter} rep ${rep + 1} ${variant}: ${Math.round(result.rps)} req/s, p99 ${result.p99Ms} ms`,
          ),
        spec,
        true,
      );
      const of = (v: Variant) => results.get(v)!;
      const perRound = (a: Variant, b: Variant) => pairwise(of(a), of(b), (x, y) => x.rps / y.rps);
      const current = perRound('limited', 'empty');
      const before = perRound('base limited', 'base empty');
      const summary = {
        variants: Object.fromEntries(VARIANTS.map((v) => [v, summarise(of(v))])),
        ratios: {
          limitedOverEmpty: spread(current),
          baseLimitedOverEmpty: spread(before),
          /** Each round's current ratio ÷ that round's base ratio: > 1 is better than before. */
          currentOverBase: spread(pairwise(current, before, (c, b) => c / b)),
          limitedOverBaseLimited: spread(perRound('limited', 'base limited')),
        },
      };
      http[adapter] = summary;
      const { limitedOverEmpty, baseLimitedOverEmpty, currentOverBase } = summary.ratios;
      aims.push({
        what: `${adapter}: @Limited ÷ empty interceptor (req/s), current vs ${baseLabel}`,
        target: `median ≥ ${baseLabel}'s`,
        value: `${show(limitedOverEmpty)} vs ${show(baseLimitedOverEmpty)}; per round ÷ ${show(currentOverBase)}`,
        met: limitedOverEmpty.median >= baseLimitedOverEmpty.median,
      });
    }
    return {
      settings,
      data: {
        micro: {
          nsPerOp,
          addedNs,
          addedBeyondClockNs,
          clockReadNs: nsPerOp[SEAM.clock],
        },
        http,
      },
      aims,
    };
  },
};

function summarise(runs: ClosedLoopResult[]) {
  const failures = runs.reduce(
    (n, r) => n + r.errors + r.timeouts + r.requests - (r.rpsByStatus['200'] ?? 0) * r.seconds,
    0,
  );
  return {
    rps: spread(runs.map((r) => r.rps)),
    p50Ms: spread(runs.map((r) => r.p50Ms)),
    p99Ms: spread(runs.map((r) => r.p99Ms)),
    non200: Math.round(failures), // rps × seconds is a float: round away its dust
  };
}
