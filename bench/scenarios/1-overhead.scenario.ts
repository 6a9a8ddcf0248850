import type { ClosedLoopResult } from '../harness/closed-loop';
import type { Aim, Scenario } from '../harness/scenario';
import { sideBySide, sideBySideSettings } from '../harness/side-by-side';
import { pairwise, round, show, spread } from '../harness/stats';

const VARIANTS = ['bare', 'empty', 'limited', 'throttler', 'adaptive'] as const;
const ADAPTERS = ['express', 'fastify'] as const;

/**
 * Scenario 1: what `@Limited` costs on a trivial GET when it never refuses, next to Nest's own floor
 * for wrapping a handler (an empty interceptor) and to @nestjs/throttler with an ample limit, and
 * (issue 10) `@Limited` on a gradient2 gauge that never refuses but samples every release. The
 * servers of an adapter run at once (idle but one) and are loaded in turn, round after round,
 * so ratios are taken side by side.
 */
export const scenario: Scenario = {
  id: '1-overhead',
  title: 'Overhead on a trivial GET',
  async run(ctx) {
    const settings = sideBySideSettings(ctx);
    const data: Record<string, unknown> = {};
    const aims: Aim[] = [];
    for (const adapter of ctx.quick ? ADAPTERS.slice(0, 1) : ADAPTERS) {
      const runs = await sideBySide(settings, adapter, VARIANTS, (variant, rep, result) =>
        ctx.log(
          `  ${adapter} rep ${rep + 1} ${variant}: ${Math.round(result.rps)} req/s, p99 ${result.p99Ms} ms`,
        ),
      );
      const of = (v: string) => runs.get(v as (typeof VARIANTS)[number])!;
      const ratio = (a: string, b: string) =>
        spread(pairwise(of(a), of(b), (x, y) => x.rps / y.rps));
      const summary = {
        variants: Object.fromEntries(VARIANTS.map((v) => [v, summarise(of(v))])),
        ratios: {
          limitedOverEmpty: ratio('limited', 'empty'),
          adaptiveOverEmpty: ratio('adaptive', 'empty'),
          adaptiveOverLimited: ratio('adaptive', 'limited'),
          limitedOverThrottler: ratio('limited', 'throttler'),
          limitedOverBare: ratio('limited', 'bare'),
          emptyOverBare: ratio('empty', 'bare'),
        },
      };
      data[adapter] = summary;
      const { limitedOverEmpty, limitedOverThrottler, adaptiveOverEmpty, adaptiveOverLimited } =
        summary.ratios;
      aims.push(
        {
          what: `${adapter}: @Limited req/s ÷ empty interceptor`,
          target: '≥ 0.97',
          value: show(limitedOverEmpty),
          met: limitedOverEmpty.median >= 0.97,
        },
        {
          what: `${adapter}: @Limited req/s ÷ throttler`,
          target: '≥ 2',
          value: show(limitedOverThrottler),
          met: limitedOverThrottler.median >= 2,
        },
        {
          what: `${adapter}: @Limited on gradient2 req/s ÷ empty interceptor (÷ fixed @Limited: ${show(adaptiveOverLimited)})`,
          target: '≥ 0.95',
          value: show(adaptiveOverEmpty),
          met: adaptiveOverEmpty.median >= 0.95,
        },
      );
    }
    return { settings, data, aims };
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
    non200: round(failures, 3),
  };
}
