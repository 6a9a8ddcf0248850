import type { Aim, Scenario } from '../harness/scenario';
import { sideBySide, sideBySideSettings } from '../harness/side-by-side';
import { pairwise, show, spread } from '../harness/stats';

const VARIANTS = ['bare', 'nest429', 'held'] as const;
const ADAPTERS = ['express', 'fastify'] as const;

/**
 * Scenario 2: what a refusal costs. A gauge whose only slot is held at startup answers every
 * request with 429; next to it, the bare route answers 200, and an interceptor that throws a plain
 * HttpException(429) shows Nest's own floor for a refusal. Shedding load must be cheap, or the
 * shedding itself overloads the server.
 */
export const scenario: Scenario = {
  id: '2-rejection',
  title: 'Rejection cost (every request refused)',
  async run(ctx) {
    const settings = sideBySideSettings(ctx);
    const data: Record<string, unknown> = {};
    const aims: Aim[] = [];
    for (const adapter of ctx.quick ? ADAPTERS.slice(0, 1) : ADAPTERS) {
      const runs = await sideBySide(settings, adapter, VARIANTS, (variant, rep, result) =>
        ctx.log(
          `  ${adapter} rep ${rep + 1} ${variant}: ${JSON.stringify(roundAll(result.rpsByStatus))} per s, p99 ${result.p99Ms} ms`,
        ),
      );
      const bare = runs.get('bare')!;
      const held = runs.get('held')!;
      const floor = runs.get('nest429')!;
      const okPerSecond = spread(bare.map((r) => r.rpsByStatus['200'] ?? 0));
      const refusedPerSecond = spread(held.map((r) => r.rpsByStatus['429'] ?? 0));
      const ratio = spread(
        pairwise(held, bare, (h, b) => (h.rpsByStatus['429'] ?? 0) / (b.rpsByStatus['200'] ?? NaN)),
      );
      const refusedP99Ms = spread(held.map((r) => r.p99Ms));
      const per429 = (r: { rpsByStatus: Record<string, number> }) => r.rpsByStatus['429'] ?? 0;
      const overFloor = spread(pairwise(held, floor, (h, f) => per429(h) / per429(f)));
      const floorOverOk = spread(
        pairwise(floor, bare, (f, b) => per429(f) / (b.rpsByStatus['200'] ?? NaN)),
      );
      data[adapter] = {
        bare: {
          okPerSecond,
          p50Ms: spread(bare.map((r) => r.p50Ms)),
          p99Ms: spread(bare.map((r) => r.p99Ms)),
        },
        held: {
          refusedPerSecond,
          p50Ms: spread(held.map((r) => r.p50Ms)),
          p99Ms: refusedP99Ms,
          otherStatuses: held.reduce(
            (n, r) => n + r.requests - (r.rpsByStatus['429'] ?? 0) * r.seconds,
            0,
          ),
        },
        refusedOverOk: ratio,
        nest429: {
          refusedPerSecond: spread(floor.map(per429)),
          p50Ms: spread(floor.map((r) => r.p50Ms)),
          p99Ms: spread(floor.map((r) => r.p99Ms)),
        },
        nest429OverOk: floorOverOk,
        refusedOverNest429: overFloor,
      };
      aims.push(
        {
          what: `${adapter}: 429/s ÷ bare 200/s`,
          target: '≥ 0.9',
          value: show(ratio),
          met: ratio.median >= 0.9,
        },
        {
          what: `${adapter}: (context) Nest's own bare 429/s ÷ bare 200/s`,
          target: '(floor)',
          value: show(floorOverOk),
          met: true,
        },
        {
          what: `${adapter}: (context) @Limited 429/s ÷ Nest's bare 429/s`,
          target: '(ours vs floor)',
          value: show(overFloor),
          met: true,
        },
        {
          what: `${adapter}: p99 of a 429`,
          target: '≤ 5 ms',
          value: show(refusedP99Ms, 3, ' ms'),
          met: refusedP99Ms.median <= 5,
        },
      );
    }
    return { settings, data, aims };
  },
};

function roundAll(values: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Math.round(v)]));
}
