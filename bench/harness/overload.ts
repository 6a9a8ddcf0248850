import { openLoop } from './open-loop';
import type { BenchContext } from './scenario';
import { ServerProcess, type ServerSpec } from './server-process';
import { percentile, spread, type Spread } from './stats';

/** One offered-load point against one server: what the client saw and what the server counted. */
export interface PointRun {
  goodput: number;
  okP50Ms: number;
  okP99Ms: number;
  rejectedP50Ms: number;
  rejectedP99Ms: number;
  timedOutShare: number;
  byStatus: Record<string, number>;
  /** Handler invocations running at once, at most, during the point. */
  peakInHandler: number;
  /** Still running in the handler when the load stopped and every client had gone (a backlog). */
  backlogAfter: number;
  /** 1 when the server was still busy 3 s after the load stopped and was restarted, else 0. */
  restarted: number;
  inFlightAfter: number;
  queuedAfter: number;
  /** p99 event-loop delay of the server and of the load generator during the point (ms). */
  serverLoopP99Ms: number;
  clientLoopP99Ms: number;
}

/** Medians and spreads of a point's repetitions. */
export type PointSummary = { [K in Exclude<keyof PointRun, 'byStatus'>]: Spread } & {
  byStatus: Record<string, number>;
};

/** What `overloadSweep` resolves to: each mode's point summaries by load (`"2"` for 2×). */
export type SweepData = Record<string, Record<string, PointSummary>>;

/** The summary of `mode` at `load`× in a sweep; throws naming both if the sweep has none. */
export function pointAt(data: SweepData, mode: string, load: number | string): PointSummary {
  const point = data[mode]?.[load];
  if (point === undefined) throw new Error(`the sweep has no point for ${mode} at ${load}×`);
  return point;
}

export interface SweepOptions {
  app: string;
  modes: readonly string[];
  /** Offered load as multiples of capacity. */
  loads: readonly number[];
  capacityPerSecond: number;
  /** Measured seconds per point, after `rampSeconds` of the same load. */
  seconds: number;
  rampSeconds: number;
  deadlineMs: number;
}

/**
 * Offers each load to each mode, interleaved (for each rep, for each load: A B C), at a fixed
 * arrival rate with a client deadline. A server left with a backlog (no limiter) is restarted so the
 * next point starts clean; a limited server must come back to idle by itself.
 */
export async function overloadSweep(ctx: BenchContext, options: SweepOptions): Promise<SweepData> {
  const servers = new Map<string, ServerProcess>();
  const spec = (mode: string): ServerSpec => ({ app: options.app, variant: mode });
  const warm = async (server: ServerProcess) => {
    const rate = options.capacityPerSecond;
    await point(server, rate, Math.ceil(rate * (ctx.quick ? 0.2 : 1)), 0);
    await server.settle();
    await server.stats(false, true);
  };
  const restart = async (mode: string) => {
    await servers.get(mode)?.stop();
    const fresh = await ServerProcess.start(spec(mode));
    await warm(fresh);
    servers.set(mode, fresh);
  };
  for (const mode of options.modes) await restart(mode);
  const runs = new Map<string, PointRun[]>();
  try {
    for (let rep = 0; rep < ctx.reps; rep++) {
      for (const load of options.loads) {
        for (const mode of options.modes) {
          const rate = load * options.capacityPerSecond;
          const server = servers.get(mode)!;
          const count = Math.round(rate * (options.rampSeconds + options.seconds));
          const run = await point(server, rate, count, options.rampSeconds);
          const key = `${mode}@${load}`;
          runs.set(key, [...(runs.get(key) ?? []), run]);
          ctx.log(
            `  rep ${rep + 1} ${mode} ${load}x: goodput ${run.goodput.toFixed(3)}, p99 2xx ${run.okP99Ms.toFixed(1)} ms, peak ${run.peakInHandler}, backlog ${run.backlogAfter}`,
          );
          if (run.restarted) await restart(mode);
        }
      }
    }
  } finally {
    for (const server of servers.values()) await server.stop();
  }
  const summary: SweepData = {};
  for (const mode of options.modes) {
    summary[mode] = {};
    for (const load of options.loads)
      summary[mode][load] = summarise(runs.get(`${mode}@${load}`) ?? []);
  }
  return summary;

  async function point(
    server: ServerProcess,
    rate: number,
    count: number,
    rampSeconds: number,
  ): Promise<PointRun> {
    const { deadlineMs } = options;
    const result = await openLoop({
      url: server.url,
      rate,
      count,
      deadlineMs,
      maxSockets: 2500,
      rampSeconds,
    });
    const now = await server.stats(false, true);
    const { stats: after, idle } = await server.settle(3_000);
    return {
      goodput: result.okInDeadline / result.seconds / options.capacityPerSecond,
      okP50Ms: percentile(result.okLatenciesMs, 50),
      okP99Ms: percentile(result.okLatenciesMs, 99),
      rejectedP50Ms: percentile(result.rejectedLatenciesMs, 50),
      rejectedP99Ms: percentile(result.rejectedLatenciesMs, 99),
      timedOutShare: result.timedOut / result.outcomes,
      byStatus: { ...result.byStatus, timeout: result.timedOut, error: result.errors },
      peakInHandler: now.handler.peak,
      backlogAfter: now.handler.running,
      restarted: idle ? 0 : 1,
      inFlightAfter: after.gauge?.inFlight ?? 0,
      queuedAfter: after.gauge?.queued ?? 0,
      serverLoopP99Ms: now.loopDelayP99Ms,
      clientLoopP99Ms: result.loopDelayP99Ms,
    };
  }
}

function summarise(runs: PointRun[]): PointSummary {
  const out: Record<string, unknown> = { byStatus: {} };
  const keys = Object.keys(runs[0] ?? {}).filter((k) => k !== 'byStatus') as Array<
    Exclude<keyof PointRun, 'byStatus'>
  >;
  for (const key of keys) out[key] = spread(runs.map((r) => r[key]));
  const byStatus = out.byStatus as Record<string, number>;
  for (const run of runs)
    for (const [s, n] of Object.entries(run.byStatus)) byStatus[s] = (byStatus[s] ?? 0) + n;
  return out as PointSummary;
}
