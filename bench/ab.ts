import { closedLoop } from './harness/closed-loop';
import { interleaved } from './harness/scenario';
import { ServerProcess, type ServerSpec } from './harness/server-process';
import { pairwise, show, spread } from './harness/stats';

/**
 * Before/after for a library change: the same bench app on two builds (or two sets of node flags),
 * loaded in turn, round after round, with per-round ratios. For example, with the old build copied
 * to .bench-tmp/dist-before:
 *
 *   node node_modules/.cache/nestjs-backpressure-bench/bench/ab.js overhead held fastify 7 \
 *     BENCH_LIB=$PWD/.bench-tmp/dist-before
 *
 * Arguments: app variant adapter rounds, then what makes "before" differ: NAME=value (environment)
 * or --flag (node flag). "after" is the current dist/ with no extra flags.
 */
async function main(): Promise<void> {
  const [app, variant, adapter, rounds, ...before] = process.argv.slice(2);
  if (app === undefined || variant === undefined) {
    throw new Error('usage: ab.js app variant adapter rounds [NAME=value | --flag ...]');
  }
  const base: ServerSpec = { app, variant, adapter: adapter as 'express' | 'fastify' };
  const env = Object.fromEntries(
    before.filter((a) => a.includes('=') && !a.startsWith('--')).map((a) => a.split('=')),
  );
  const specs = {
    before: { ...base, env, execArgv: before.filter((a) => a.startsWith('--')) },
    after: base,
  };
  const servers = {
    before: await ServerProcess.start(specs.before),
    after: await ServerProcess.start(specs.after),
  };
  try {
    for (const s of Object.values(servers))
      await closedLoop({ url: s.url, connections: 20, seconds: 3 });
    const runs = await interleaved(Number(rounds), ['before', 'after'] as const, async (which) => {
      const r = await closedLoop({ url: servers[which].url, connections: 20, seconds: 3 });
      console.log(`${which}: ${Math.round(r.rps)} req/s, p99 ${r.p99Ms} ms`);
      return r;
    });
    const b = runs.get('before')!;
    const a = runs.get('after')!;
    console.log(
      `before: ${show(spread(b.map((r) => r.rps)), 4)} req/s, p99 ${show(spread(b.map((r) => r.p99Ms)))} ms`,
    );
    console.log(
      `after:  ${show(spread(a.map((r) => r.rps)), 4)} req/s, p99 ${show(spread(a.map((r) => r.p99Ms)))} ms`,
    );
    console.log(
      `after ÷ before (per round): ${show(spread(pairwise(a, b, (x, y) => x.rps / y.rps)))}`,
    );
  } finally {
    for (const s of Object.values(servers)) await s.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
