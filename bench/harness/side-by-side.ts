import { closedLoop, type ClosedLoopResult } from './closed-loop';
import { interleaved, type BenchContext } from './scenario';
import { ServerProcess, type ServerSpec } from './server-process';

/** Closed-loop settings shared by the side-by-side scenarios; quick runs only smoke-test the harness. */
export function sideBySideSettings(ctx: BenchContext) {
  return {
    connections: ctx.quick ? 4 : 20,
    seconds: ctx.quick ? 1 : 3,
    warmSeconds: ctx.quick ? 1 : 3,
    // Closed-loop runs are cheap: more, shorter rounds average out a noisy machine better.
    reps: ctx.quick ? ctx.reps : Math.max(ctx.reps, 5),
  };
}

/**
 * Starts one server per variant of the `overhead` bench app on `adapter` (all at once, idle but
 * one), warms each, then loads them in turn, round after round, so ratios are taken side by side
 * on a noisy machine. Stops the servers however it ends. `spec` maps a variant to its server when
 * the variant name is not the app's (e.g. the same app on another build, through `env`).
 */
export async function sideBySide<V extends string>(
  settings: ReturnType<typeof sideBySideSettings>,
  adapter: NonNullable<ServerSpec['adapter']>,
  variants: readonly V[],
  report: (variant: V, rep: number, result: ClosedLoopResult) => void,
  spec: (variant: V) => ServerSpec = (variant) => ({ app: 'overhead', variant }),
  rotate = false,
): Promise<Map<V, ClosedLoopResult[]>> {
  const servers = new Map<V, ServerProcess>();
  try {
    for (const variant of variants)
      servers.set(variant, await ServerProcess.start({ ...spec(variant), adapter }));
    for (const server of servers.values())
      await closedLoop({
        url: server.url,
        connections: settings.connections,
        seconds: settings.warmSeconds,
      });
    return await interleaved(
      settings.reps,
      variants,
      async (variant, rep) => {
        const result = await closedLoop({
          url: servers.get(variant)!.url,
          connections: settings.connections,
          seconds: settings.seconds,
        });
        report(variant, rep, result);
        return result;
      },
      rotate,
    );
  } finally {
    for (const server of servers.values()) await server.stop();
  }
}
