import http from 'node:http';
import type { ClosedLoopResult } from '../harness/closed-loop';
import { openLoop, type OpenLoopResult } from '../harness/open-loop';
import { sleep, type Aim, type BenchContext, type Scenario } from '../harness/scenario';
import { ServerProcess } from '../harness/server-process';
import { sideBySide, sideBySideSettings } from '../harness/side-by-side';
import { pairwise, percentile, round, show, spread } from '../harness/stats';

const VARIANTS = ['limited', 'prometheus', 'opentelemetry', 'opentelemetry-counts'] as const;
type Variant = (typeof VARIANTS)[number];
const ADAPTERS = ['express', 'fastify'] as const;
/** The overload endpoint's capacity: 10 calls at a time, 50 ms each. */
const CAPACITY_PER_SECOND = 200;
/** Offered load of each step, as multiples of capacity. */
const STEPS = [0.5, 2, 5] as const;

/** One scrape of GET /metrics: the `bench` gauge's figures, as the text format gives them. */
export interface MetricsSample {
  /** Seconds since the load started (when the answer arrived). */
  t: number;
  /** How long the scrape took (ms). */
  scrapeMs: number;
  inFlight: number;
  limit: number;
  queued: number;
  admitted: number;
  /** backpressure_refused_total by reason (reasons still at 0 left out). */
  refused: Record<string, number>;
}

/** Rates between one scrape and the one before it, placed at the later one. */
export interface MetricsRate {
  t: number;
  admittedPerSecond: number;
  refusedPerSecond: Record<string, number>;
}

/**
 * Scenario 12 (issue 12): cost and visibility of the metrics integrations.
 *
 * Cost: a trivial GET under `@Limited` on an ample gauge, without metrics (`limited`), with
 * `BackpressurePrometheusModule` (`prometheus`), and with `BackpressureOpenTelemetryModule` on a real
 * SDK MeterProvider exporting every second (`opentelemetry`, histograms on; `opentelemetry-counts`,
 * `histograms: false`), on express and fastify. One server per variant, side by side (closed loop,
 * autocannon), interleaved and rotated rounds; each ratio is taken per round and reported as
 * median and min–max.
 *
 * Visibility: scenario 3's I/O endpoint (dependency 10 × 50 ms = 200/s) under a fail-fast gauge of
 * 10 with the Prometheus module, offered 0.5× → 2× → 5× capacity (open loop, 1 s client deadline)
 * while GET /metrics is scraped every 250 ms; in flight, limit, admitted/s and refused/s by reason
 * (rates from counter deltas) are the series of docs/bench-metrics-under-load.svg. The scraped
 * totals are checked against what the client saw.
 */
export const scenario: Scenario = {
  id: '12-metrics',
  title: 'Metrics integrations: cost on a trivial GET, and a scrape under overload',
  async run(ctx) {
    const closed = sideBySideSettings(ctx);
    const load = {
      capacityPerSecond: CAPACITY_PER_SECOND,
      dependency: { width: 10, serviceMs: 50 },
      gauge: { limit: 10 },
      steps: STEPS,
      stepSeconds: ctx.quick ? 1 : 4,
      tailSeconds: ctx.quick ? 0.5 : 1,
      scrapeMs: 250,
      deadlineMs: 1000,
      warm: { perSecond: CAPACITY_PER_SECOND, seconds: ctx.quick ? 0.3 : 1 },
    };
    const adapters = ctx.quick ? ADAPTERS.slice(0, 1) : ADAPTERS;
    const settings = { variants: VARIANTS, adapters, closedLoop: closed, load };
    const data: Record<string, unknown> = {};
    const aims: Aim[] = [];

    for (const adapter of adapters) {
      const runs = await sideBySide(
        closed,
        adapter,
        VARIANTS,
        (variant, rep, result) =>
          ctx.log(
            `  ${adapter} rep ${rep + 1} ${variant}: ${Math.round(result.rps)} req/s, p99 ${result.p99Ms} ms`,
          ),
        (variant) => ({ app: 'metrics', variant }),
        true,
      );
      const of = (v: Variant) => runs.get(v)!;
      const ratio = (a: Variant) => spread(pairwise(of(a), of('limited'), (x, y) => x.rps / y.rps));
      const ratios = {
        prometheusOverLimited: ratio('prometheus'),
        opentelemetryOverLimited: ratio('opentelemetry'),
        opentelemetryCountsOverLimited: ratio('opentelemetry-counts'),
      };
      data[adapter] = {
        variants: Object.fromEntries(VARIANTS.map((v) => [v, summarise(of(v))])),
        ratios,
      };
      const rounds = `${closed.reps} rounds`;
      aims.push(
        {
          what: `${adapter}: @Limited + Prometheus req/s ÷ @Limited alone (${rounds})`,
          target: '≥ 0.95',
          value: show(ratios.prometheusOverLimited),
          met: ratios.prometheusOverLimited.median >= 0.95,
        },
        {
          what: `${adapter}: @Limited + OpenTelemetry (SDK, histograms) req/s ÷ @Limited alone (${rounds})`,
          target: '≥ 0.95',
          value: show(ratios.opentelemetryOverLimited),
          met: ratios.opentelemetryOverLimited.median >= 0.95,
        },
        {
          what: `${adapter}: @Limited + OpenTelemetry (histograms: false) req/s ÷ @Limited alone`,
          target: '(reported)',
          value: show(ratios.opentelemetryCountsOverLimited),
          met: true,
        },
      );
    }

    const underLoad = await scrapeUnderLoad(ctx, load);
    data.underLoad = underLoad;
    const { totals, steps } = underLoad;
    for (const step of steps) {
      aims.push({
        what: `under load, ${step.load}× offered (${step.offeredPerSecond}/s): scraped admitted/s, refused/s; in flight (median, max)`,
        target: '(reported)',
        value: `${step.scraped.admittedPerSecond}/s, ${step.scraped.refusedPerSecond}/s; ${step.scraped.inFlightMedian}, ${step.scraped.inFlightMax} of ${step.scraped.limit}`,
        met: true,
      });
    }
    aims.push(
      {
        what: 'under load: scraped Δ admitted_total + Δ refused_total over the run vs requests the client sent (2xx, 429, timed out)',
        target:
          '(reported; the server counts a request the client gave up on, not one it never read)',
        value: `${totals.server.admitted} + ${totals.server.refused} = ${totals.server.admitted + totals.server.refused} vs ${totals.client.sent} (${totals.client.ok}, ${totals.client.refused}, ${totals.client.timedOut})`,
        met: true,
      },
      {
        what: `under load: ${underLoad.samples.length} scrapes every ${load.scrapeMs} ms, time per scrape (median, max)`,
        target: '(reported)',
        value: `${underLoad.scrapeMs.median} ms, ${underLoad.scrapeMs.max} ms`,
        met: true,
      },
    );
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

interface LoadSettings {
  capacityPerSecond: number;
  steps: readonly number[];
  stepSeconds: number;
  tailSeconds: number;
  scrapeMs: number;
  deadlineMs: number;
  warm: { perSecond: number; seconds: number };
}

/** Offers the steps back to back to one `overload` server while scraping its GET /metrics. */
async function scrapeUnderLoad(ctx: BenchContext, s: LoadSettings) {
  const server = await ServerProcess.start({ app: 'metrics', variant: 'overload' });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await openLoop({
      url: server.url,
      rate: s.warm.perSecond,
      count: Math.round(s.warm.perSecond * s.warm.seconds),
      deadlineMs: s.deadlineMs,
      maxSockets: 2500,
      keepLatencies: false,
    });
    await server.settle();
    const metricsUrl = new URL('/metrics', server.url);
    const before = await scrape(metricsUrl, agent, performance.now());

    const stepMs = s.stepSeconds * 1000;
    const totalMs = stepMs * s.steps.length + s.tailSeconds * 1000;
    const t0 = performance.now() + 20;
    const counts = s.steps.map(() => ({ sent: 0, ok: 0, refused: 0, timedOut: 0, errors: 0 }));
    const loads: Array<Promise<OpenLoopResult>> = s.steps.map(async (load, i) => {
      await sleep(Math.max(0, t0 + i * stepMs - performance.now()));
      const rate = load * s.capacityPerSecond;
      const count = counts[i]!; // one per step
      return openLoop({
        url: server.url,
        rate,
        count: Math.round((rate * stepMs) / 1000),
        deadlineMs: s.deadlineMs,
        maxSockets: 2500,
        keepLatencies: false,
        // Every request's end, the drain after the step's last send included.
        onOutcome: (_sentAt, _endedAt, status) => {
          if (status === 'timeout') count.timedOut++;
          else if (status === 'error') count.errors++;
          else if (status === 429) count.refused++;
          else if (status >= 200 && status < 300) count.ok++;
        },
      });
    });
    const samples: MetricsSample[] = [];
    for (let i = 0; i * s.scrapeMs <= totalMs; i++) {
      await sleep(Math.max(0, t0 + i * s.scrapeMs - performance.now()));
      samples.push(await scrape(metricsUrl, agent, t0));
    }
    const results = await Promise.all(loads);
    results.forEach((r, i) => (counts[i]!.sent = r.sent)); // one result per step
    await server.settle();
    const after = await scrape(metricsUrl, agent, t0);
    ctx.log(
      `  under load: ${samples.length} scrapes; ${counts.map((c, i) => `${s.steps[i]}x sent ${c.sent}, 2xx ${c.ok}, 429 ${c.refused}, timed out ${c.timedOut}`).join('; ')}`,
    );

    const rates: MetricsRate[] = samples.slice(1).map((sample, i) => {
      const prev = samples[i]!; // the sample before this one (slice(1) shifts by one)
      const dt = sample.t - prev.t;
      const reasons = new Set([...Object.keys(sample.refused), ...Object.keys(prev.refused)]);
      return {
        t: round(sample.t, 4),
        admittedPerSecond: round((sample.admitted - prev.admitted) / dt, 4),
        refusedPerSecond: Object.fromEntries(
          [...reasons].map((r) => [
            r,
            round(((sample.refused[r] ?? 0) - (prev.refused[r] ?? 0)) / dt, 4),
          ]),
        ),
      };
    });
    const steps = s.steps.map((load, i) => {
      // Judged from half a second into the step to its end (the step's steady part).
      const from = i * s.stepSeconds + 0.5;
      const to = (i + 1) * s.stepSeconds;
      const within = <T extends { t: number }>(xs: T[]) =>
        xs.filter((x) => x.t > from && x.t <= to);
      const inFlight = within(samples).map((x) => x.inFlight);
      const stepRates = within(rates);
      const client = counts[i]!; // one per step
      return {
        load,
        offeredPerSecond: load * s.capacityPerSecond,
        startSeconds: i * s.stepSeconds,
        client,
        scraped: {
          samples: inFlight.length,
          inFlightMedian: percentile(inFlight, 50),
          inFlightMax: Math.max(...inFlight),
          limit: samples[0]?.limit ?? NaN,
          admittedPerSecond: round(
            percentile(
              stepRates.map((r) => r.admittedPerSecond),
              50,
            ),
          ),
          refusedPerSecond: round(
            percentile(
              stepRates.map((r) => sum(r.refusedPerSecond)),
              50,
            ),
          ),
        },
      };
    });
    const client = counts.reduce((a, b) => ({
      sent: a.sent + b.sent,
      ok: a.ok + b.ok,
      refused: a.refused + b.refused,
      timedOut: a.timedOut + b.timedOut,
      errors: a.errors + b.errors,
    }));
    const scrapeMs = spread(samples.map((x) => x.scrapeMs));
    return {
      before,
      after,
      samples,
      rates,
      steps,
      totals: {
        server: {
          admitted: after.admitted - before.admitted,
          refusedFull: (after.refused.full ?? 0) - (before.refused.full ?? 0),
          refused: sum(after.refused) - sum(before.refused),
        },
        client,
      },
      scrapeMs: {
        median: round(scrapeMs.median),
        min: round(scrapeMs.min),
        max: round(scrapeMs.max),
      },
    };
  } finally {
    agent.destroy();
    await server.stop();
  }
}

function sum(values: Record<string, number>): number {
  return Object.values(values).reduce((a, b) => a + b, 0);
}

/** GETs the metrics and reads the `bench` gauge's series from the text exposition format. */
function scrape(url: URL, agent: http.Agent, t0: number): Promise<MetricsSample> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET /metrics: ${res.statusCode}`));
        const end = performance.now();
        try {
          resolve({
            t: round((end - t0) / 1000, 4),
            scrapeMs: round(end - start, 3),
            ...parse(body),
          });
        } catch (error) {
          reject(error as Error);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('GET /metrics: no answer within 5 s')));
    req.on('error', reject);
  });
}

/** The `bench` gauge's figures from Prometheus's text format (metric{labels} value lines). */
export function parse(text: string): Omit<MetricsSample, 't' | 'scrapeMs'> {
  const found: Partial<Record<'inFlight' | 'limit' | 'queued' | 'admitted', number>> = {};
  const refused: Record<string, number> = {};
  const names = {
    backpressure_in_flight: 'inFlight',
    backpressure_limit: 'limit',
    backpressure_queued: 'queued',
    backpressure_admitted_total: 'admitted',
  } as const;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue; // comments (# HELP, # TYPE) and blank lines
    const [, name = '', rawLabels = '', rawValue = ''] = match;
    const labels = Object.fromEntries(
      [...rawLabels.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (labels.gauge !== 'bench') continue;
    const value = Number(rawValue);
    // Reasons still at 0 are left out (a missing reason reads as 0), to keep the results short.
    if (name === 'backpressure_refused_total') {
      if (value !== 0) refused[labels.reason ?? '?'] = value;
    } else if (name in names) found[names[name as keyof typeof names]] = value;
  }
  const { inFlight, limit, queued, admitted } = found;
  if (inFlight === undefined || limit === undefined || admitted === undefined)
    throw new Error(`GET /metrics: no backpressure_* series for gauge "bench" in\n${text}`);
  return { inFlight, limit, queued: queued ?? 0, admitted, refused };
}

export type UnderLoad = Awaited<ReturnType<typeof scrapeUnderLoad>>;
