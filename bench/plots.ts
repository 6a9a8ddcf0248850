import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PointSummary } from './harness/overload';
import type { UnderLoad } from './scenarios/12-metrics.scenario';
import { plotsDir, resultsDir } from './harness/paths';
import type { Spread } from './harness/stats';
import { barChart, lineChart, type Point } from './harness/svg-chart';

/**
 * Renders docs/bench-*.svg from whichever results JSON exist, so a partial run (--only) or a plain
 * re-render (--plots) keeps every plot in step with the committed numbers.
 */
export function renderPlots(quick: boolean): void {
  const load = <T>(id: string): T | undefined => {
    const file = join(resultsDir(quick), `${id}.json`);
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined;
  };
  const out = (name: string, svg: string) => writeFileSync(join(plotsDir(quick), name), svg);

  const overhead = load<{ data: Record<string, { variants: Record<string, { rps: Spread }> }> }>(
    '1-overhead',
  );
  if (overhead) {
    const adapters = Object.entries(overhead.data);
    const names: Record<string, string> = {
      bare: 'bare Nest',
      empty: 'empty interceptor',
      limited: '@Limited (ample)',
      throttler: '@nestjs/throttler (ample)',
      adaptive: '@Limited, gradient2 (ample)',
    };
    out(
      'bench-overhead.svg',
      barChart({
        title: 'Overhead on a trivial GET (higher is better)',
        subtitle:
          'requests/s, median of interleaved runs, whiskers min–max; same machine, same run',
        xLabels: adapters.map(([a]) => a.charAt(0).toUpperCase() + a.slice(1)),
        xTitle: 'HTTP adapter',
        yTitle: 'requests per second',
        series: Object.entries(names).map(([key, name]) => ({
          name,
          values: adapters.map(([, d]) => d.variants[key]?.rps),
        })),
      }),
    );
  }

  type Sweep = {
    settings: { loads: number[]; deadlineMs: number };
    data: Record<string, Record<string, PointSummary>>;
  };
  const io = load<Sweep>('3-io-overload');
  if (io) {
    const labels: Record<string, string> = {
      control: 'no limiter (control)',
      failfast: '@Limited, fail fast',
      queue: '@Limited, queue 20 / 100 ms',
    };
    const xLabels = io.settings.loads.map((l) => `${l}×`);
    const series = (pick: (p: PointSummary) => Point | undefined) =>
      Object.entries(labels).map(([mode, name]) => ({
        name,
        values: io.settings.loads.map((l) =>
          io.data[mode]?.[l] ? pick(io.data[mode][l]) : undefined,
        ),
      }));
    out(
      'bench-io-goodput.svg',
      lineChart({
        title: 'Goodput under I/O overload (higher is better)',
        subtitle:
          '2xx answered within the 1 s client deadline ÷ capacity (200/s); open-loop arrivals; gauge of 10',
        xLabels,
        xTitle: 'offered load (× capacity)',
        yTitle: 'goodput (÷ capacity)',
        yMax: 1.1,
        guides: [{ y: 0.95, label: 'aim ≥ 0.95' }],
        series: series((p) => p.goodput),
      }),
    );
    const deadline = io.settings.deadlineMs;
    out(
      'bench-io-p99.svg',
      lineChart({
        title: 'p99 latency of successful responses under I/O overload (lower is better)',
        subtitle: `log scale; where no 2xx arrived in time, plotted at the ${deadline} ms deadline (every request timed out)`,
        xLabels,
        xTitle: 'offered load (× capacity)',
        yTitle: 'p99 of 2xx (ms)',
        logY: true,
        yMax: deadline * 1.5,
        guides: [
          { y: 60, label: 'aim ≤ 60 ms (fail fast)' },
          { y: deadline, label: 'client deadline' },
        ],
        series: series((p) =>
          Number.isFinite(p.okP99Ms.median)
            ? p.okP99Ms
            : { median: deadline, min: deadline, max: deadline },
        ),
      }),
    );
  }

  const seams = load<{
    settings: { base: string };
    data: { micro: { addedNs: Record<string, Spread>; clockReadNs: Spread } };
  }>('8-seams');
  if (seams) {
    const { addedNs, clockReadNs } = seams.data.micro;
    const variants = Object.keys(addedNs);
    const twoReads = {
      median: 2 * clockReadNs.median,
      min: 2 * clockReadNs.min,
      max: 2 * clockReadNs.max,
    };
    out(
      'bench-seams.svg',
      barChart({
        title: 'What the limit-policy seam and a listener add per acquire()+release',
        subtitle: `ns over the ${seams.settings.base} gauge, same process, per round; median, whiskers min–max`,
        xLabels: variants,
        xTitle: 'gauge',
        yTitle: 'added ns per acquire()+release',
        guides: [{ y: 100, label: 'aim ≤ 100 ns' }],
        series: [
          { name: 'added ns (current − base)', values: variants.map((v) => addedNs[v]) },
          {
            name: '2 × performance.now() (what a timed slot reads)',
            values: variants.map((v) => (v.startsWith('fixed limit, no') ? undefined : twoReads)),
          },
        ],
      }),
    );
  }

  const cpu = load<Sweep>('4-cpu-overload');
  if (cpu) {
    const labels: Record<string, string> = {
      none: 'no limit',
      limit1: '@Limited, limit 1',
      limit2: '@Limited, limit 2',
      limit4: '@Limited, limit 4',
      gradient2: 'gradient2 (defaults)',
      vegas: 'vegas (defaults)',
      aimd: 'aimd (defaults)',
    };
    out(
      'bench-cpu-goodput.svg',
      barChart({
        title: 'Goodput under CPU-bound overload (higher is better)',
        subtitle:
          'handler burns 5 ms of CPU (200/s on one core); 2xx within 1 s ÷ capacity; fail-fast gauges; same run',
        xLabels: cpu.settings.loads.map((l) => `${l}× offered`),
        xTitle: 'offered load (× capacity)',
        yTitle: 'goodput (÷ capacity)',
        series: Object.entries(labels).map(([mode, name]) => ({
          name,
          values: cpu.settings.loads.map((l) => cpu.data[mode]?.[l]?.goodput),
        })),
      }),
    );
  }

  const shift = load<{
    settings: {
      widths: number[];
      phaseSeconds: number;
      bucketMs: number;
      offeredPerSecond: number;
      serviceMs: number;
      reps: number;
    };
    data: Record<string, { series: Record<'goodput' | 'p99Ms' | 'limit', Point[]> }>;
  }>('9-capacity-shift');
  if (shift) {
    const { widths, phaseSeconds, bucketMs, offeredPerSecond, serviceMs, reps } = shift.settings;
    const labels: Record<string, string> = {
      none: 'no limit',
      static10: 'static 10',
      oracle: 'oracle (static = C each phase)',
      gradient2: 'gradient2 (defaults)',
      vegas: 'vegas (defaults)',
      aimd: 'aimd (defaults)',
    };
    const buckets = (phaseSeconds * 1000 * widths.length) / bucketMs;
    // b < buckets, so the phase index stays below widths.length.
    const widthAt = (b: number) => widths[Math.floor((b * bucketMs) / (phaseSeconds * 1000))]!;
    const xLabels = Array.from({ length: buckets }, (_, b) =>
      (b * bucketMs) % 2000 === 0 ? String((b * bucketMs) / 1000) : '',
    );
    const flat = (v: number): Point => ({ median: v, min: v, max: v });
    // Medians only (no whiskers): six series of 48 points; the tables give the per-phase spread.
    const series = (key: 'goodput' | 'p99Ms' | 'limit', floor?: number) =>
      Object.entries(labels).flatMap(([v, name]) => {
        const measured = shift.data[v];
        if (!measured) return [];
        const values = measured.series[key].map((p) =>
          p && Number.isFinite(p.median) ? flat(Math.max(p.median, floor ?? -Infinity)) : undefined,
        );
        return [{ name, values }];
      });
    const phases = `C = ${widths.join(' → ')} calls at once, ${phaseSeconds} s each, ${serviceMs} ms a call; ${offeredPerSecond}/s offered; median of ${reps} runs per ${bucketMs} ms`;
    out(
      'bench-shift-goodput.svg',
      lineChart({
        title: 'Goodput under a capacity shift (higher is better)',
        subtitle: `2xx within the 1 s deadline per s; ${phases}`,
        xLabels,
        xTitle: 'time (s)',
        yTitle: 'goodput (per s)',
        series: [
          ...series('goodput'),
          {
            name: 'what can be served: min(offered, C / 50 ms)',
            dashed: true,
            values: xLabels.map((_, b) =>
              flat(Math.min(offeredPerSecond, (widthAt(b) * 1000) / serviceMs)),
            ),
          },
        ],
      }),
    );
    out(
      'bench-shift-p99.svg',
      lineChart({
        title: 'p99 of successes under a capacity shift (lower is better)',
        subtitle: `log scale; ${phases}`,
        xLabels,
        xTitle: 'time (s)',
        yTitle: 'p99 of 2xx (ms)',
        logY: true,
        yMax: 1500,
        guides: [{ y: 3 * serviceMs, label: `aim ≤ ${3 * serviceMs} ms (3 × service time)` }],
        series: series('p99Ms', 1),
      }),
    );
    out(
      'bench-shift-limit.svg',
      lineChart({
        title: "The gauge's limit under a capacity shift",
        subtitle: `polled every 100 ms, median per bucket; ${phases}`,
        xLabels,
        xTitle: 'time (s)',
        yTitle: 'limit (slots)',
        series: [
          ...series('limit'),
          {
            name: 'C (the dependency’s width)',
            dashed: true,
            values: xLabels.map((_, b) => flat(widthAt(b))),
          },
        ],
      }),
    );
  }

  const pressure = load<{
    settings: { loads: number[]; criticalPerSecond: number };
    data: Record<string, Record<string, Record<'criticalP99Ms' | 'totalGoodput', Spread>>>;
  }>('10-process-pressure');
  if (pressure) {
    const labels: Record<string, string> = {
      none: 'no gauge',
      limit4: '@Limited, limit 4 (priority headroom)',
      eventLoop: '@Limited, eventLoop: true',
    };
    const xLabels = pressure.settings.loads.map((l) => `normal at ${l}×`);
    const bars = (figure: 'criticalP99Ms' | 'totalGoodput') =>
      Object.entries(labels).map(([mode, name]) => ({
        name,
        values: pressure.settings.loads.map((l) => pressure.data[mode]?.[l]?.[figure]),
      }));
    out(
      'bench-pressure-p99.svg',
      barChart({
        title: 'Critical p99 in a CPU-saturated process (lower is better)',
        subtitle: `5 ms CPU handler (200/s); normal flood + critical at ${pressure.settings.criticalPerSecond}/s; median, whiskers min–max`,
        xLabels,
        xTitle: 'normal traffic offered (× capacity)',
        yTitle: 'p99 of critical 2xx (ms)',
        guides: [{ y: 50, label: 'aim ≤ 50 ms' }],
        series: bars('criticalP99Ms'),
      }),
    );
    out(
      'bench-pressure-goodput.svg',
      barChart({
        title: 'Goodput kept while shedding for the event loop (higher is better)',
        subtitle: '2xx within 1 s (normal + critical) ÷ capacity; same run',
        xLabels,
        xTitle: 'normal traffic offered (× capacity)',
        yTitle: 'goodput (÷ capacity)',
        series: bars('totalGoodput'),
      }),
    );
  }

  const slot = load<{
    data: Record<string, Record<string, Record<string, Spread>>>;
  }>('11-who-gets-the-slot');
  if (slot) {
    const figure = (part: string, variant: string, name: string) =>
      slot.data[part]?.[variant]?.[name];
    const bars = (part: string, variants: string[], names: Record<string, string>) =>
      Object.entries(names).map(([key, name]) => ({
        name,
        values: variants.map((v) => figure(part, v, key)),
      }));
    const prio = ['plain', 'priorities'];
    const prioLabels = ['no @Priority (all normal)', "@Priority('low' / 'critical')"];
    out(
      'bench-slot-priorities.svg',
      barChart({
        title: 'Critical traffic under a low-priority flood (higher is better)',
        subtitle:
          'fail fast, gauge of 10 (200/s); low at 5×, critical at 0.3× capacity; median, whiskers min–max',
        xLabels: prioLabels,
        xTitle: 'variant',
        yTitle: 'share',
        yMax: 1.1,
        guides: [
          { y: 0.99, label: 'critical aim ≥ 0.99' },
          { y: 0.9, label: 'goodput aim ≥ 0.9' },
        ],
        series: bars('priorities', prio, {
          criticalSuccess: 'critical success (2xx within 1 s)',
          totalGoodput: 'total goodput ÷ capacity',
          lowGoodput: 'low goodput ÷ capacity',
        }),
      }),
    );
    out(
      'bench-slot-priorities-p99.svg',
      barChart({
        title: 'Critical p99 under a low-priority flood (lower is better)',
        subtitle: 'p99 of critical 2xx; 50 ms service time; same run',
        xLabels: prioLabels,
        xTitle: 'variant',
        yTitle: 'p99 of critical 2xx (ms)',
        guides: [{ y: 75, label: 'aim ≤ 75 ms' }],
        series: bars('priorities', prio, { criticalP99Ms: 'critical p99' }),
      }),
    );
    const disciplines = ['fifo', 'lifo', 'codel'];
    out(
      'bench-slot-queue.svg',
      barChart({
        title: 'Latency of successes by queue discipline at 10× overload (lower is better)',
        subtitle:
          'gauge of 10 + queue of 100 (1 s); 2000/s offered, 1 s client deadline; median, whiskers min–max',
        xLabels: disciplines,
        xTitle: 'queue discipline',
        yTitle: 'latency of 2xx (ms)',
        guides: [{ y: 75, label: 'codel aim: p99 ≤ 75 ms' }],
        series: bars('queue', disciplines, { okP50Ms: 'p50 of 2xx', okP99Ms: 'p99 of 2xx' }),
      }),
    );
    out(
      'bench-slot-queue-goodput.svg',
      barChart({
        title: 'Goodput by queue discipline at 10× overload (higher is better)',
        subtitle: '2xx within the 1 s deadline ÷ capacity (200/s); same run',
        xLabels: disciplines,
        xTitle: 'queue discipline',
        yTitle: 'goodput (÷ capacity)',
        yMax: 1.1,
        guides: [{ y: 0.95, label: 'codel aim ≥ 0.95' }],
        series: bars('queue', disciplines, { goodput: 'goodput' }),
      }),
    );
    out(
      'bench-slot-fairness.svg',
      barChart({
        title: 'Quiet keys next to a noisy one (higher is better)',
        subtitle:
          'fail fast, gauge of 10; one key at 10× capacity, 4 keys at 10/s each; median, whiskers min–max',
        xLabels: ['no partition', "partition: headers['x-tenant']"],
        xTitle: 'variant',
        yTitle: 'share',
        yMax: 1.1,
        guides: [{ y: 0.99, label: 'quiet aim ≥ 0.99' }],
        series: bars('fairness', ['plain', 'partitioned'], {
          quietSuccess: 'quiet keys’ success',
          quietWorstSuccess: 'worst quiet key’s success',
          totalGoodput: 'total goodput ÷ capacity',
          noisyGoodput: 'noisy key’s goodput ÷ capacity',
        }),
      }),
    );
  }
  const metrics = load<{
    settings: {
      load: {
        steps: number[];
        stepSeconds: number;
        scrapeMs: number;
        capacityPerSecond: number;
        gauge: { limit: number };
      };
    };
    data: { underLoad: UnderLoad };
  }>('12-metrics');
  if (metrics) {
    const { steps, stepSeconds, scrapeMs, capacityPerSecond, gauge } = metrics.settings.load;
    const { samples, rates } = metrics.data.underLoad;
    const flat = (v: number): Point => ({ median: v, min: v, max: v });
    // Scrape i was due i × scrapeMs after the load started; label every 2 s.
    const xLabels = samples.map((_, i) =>
      (i * scrapeMs) % 2000 === 0 ? String((i * scrapeMs) / 1000) : '',
    );
    const offeredAt = (i: number) => {
      const step = steps[Math.floor(((i - 0.5) * scrapeMs) / (stepSeconds * 1000))];
      return (step ?? 0) * capacityPerSecond;
    };
    const stepsText = `${steps.map((l) => `${l}×`).join(' → ')} of ${capacityPerSecond}/s, ${stepSeconds} s each`;
    const reasons = [...new Set(rates.flatMap((r) => Object.keys(r.refusedPerSecond)))].filter(
      (r) => rates.some((x) => (x.refusedPerSecond[r] ?? 0) > 0),
    );
    // Rates are between a scrape and the one before, so the first scrape has none.
    const rate = (pick: (r: (typeof rates)[number]) => number) => [
      undefined,
      ...rates.map((r) => flat(pick(r))),
    ];
    const top = lineChart({
      title: 'The Prometheus metrics under overload: in flight vs limit',
      subtitle: `GET /metrics every ${scrapeMs} ms; fail-fast gauge of ${gauge.limit} on a dependency of 10 × 50 ms (${capacityPerSecond}/s)`,
      xLabels,
      xTitle: 'time since the load started (s)',
      yTitle: 'slots',
      yMax: gauge.limit * 1.3,
      series: [
        { name: 'backpressure_in_flight', values: samples.map((x) => flat(x.inFlight)) },
        { name: 'backpressure_limit', dashed: true, values: samples.map((x) => flat(x.limit)) },
      ],
    });
    const bottom = lineChart({
      title: 'Admitted and refused per second, from the scraped counters',
      subtitle: `Δ counter ÷ Δ t between scrapes; offered ${stepsText}`,
      xLabels,
      xTitle: 'time since the load started (s)',
      yTitle: 'requests per second',
      guides: [{ y: capacityPerSecond, label: `capacity ${capacityPerSecond}/s` }],
      series: [
        { name: 'rate(backpressure_admitted_total)', values: rate((r) => r.admittedPerSecond) },
        ...reasons.map((reason) => ({
          name: `rate(backpressure_refused_total{reason="${reason}"})`,
          values: rate((r) => r.refusedPerSecond[reason] ?? 0),
        })),
        {
          name: 'offered (client)',
          dashed: true,
          values: samples.map((_, i) => flat(offeredAt(i))),
        },
      ],
    });
    out('bench-metrics-under-load.svg', stacked(top, bottom));
  }
}

/** Charts one above the other in one SVG (each chart is a complete <svg> of its own size). */
function stacked(...charts: string[]): string {
  const size = (svg: string) => {
    const match = /width="(\d+)" height="(\d+)"/.exec(svg);
    return { width: Number(match?.[1] ?? 0), height: Number(match?.[2] ?? 0) };
  };
  const width = Math.max(...charts.map((c) => size(c).width));
  let height = 0;
  let body = '';
  for (const chart of charts) {
    body += chart.trim().replace('<svg xmlns="http://www.w3.org/2000/svg"', `<svg y="${height}"`);
    height += size(chart).height;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">${body}</svg>\n`;
}
