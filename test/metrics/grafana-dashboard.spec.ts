import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Controller, Get, Header, Inject, Param } from '@nestjs/common';
import { Registry } from 'prom-client';
import { BackpressureModule, Limited } from '../../src';
import { BackpressurePrometheusModule } from '../../src/prometheus';
import { moduleOf, startApp, type Running } from '../e2e/support/apps';
import { send } from '../e2e/support/http';
import { Probe } from '../e2e/support/probe';
import { until } from '../support/wait';
import { scrape, type Scrape } from './support';

/*
 * The Grafana dashboard (docs/grafana/backpressure-dashboard.json) against a real scrape: every
 * metric and label its PromQL names must exist in what BackpressurePrometheusModule exports after
 * some traffic, so renaming a metric (or a label) fails here instead of leaving empty panels.
 */

const DASHBOARD = resolve(process.cwd(), 'docs/grafana/backpressure-dashboard.json');
const REGISTRY = Symbol('grafana test registry');

interface Panel {
  readonly type: string;
  readonly title?: string;
  readonly targets?: ReadonlyArray<{ readonly expr?: string }>;
  readonly panels?: readonly Panel[];
}

interface Dashboard {
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: ReadonlyArray<{ readonly definition?: string }> };
}

/** Every PromQL expression of the dashboard: panel targets (rows included) and variable queries. */
function expressionsOf(dashboard: Dashboard): string[] {
  const found: string[] = [];
  const walk = (panels: readonly Panel[]) => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) if (target.expr) found.push(target.expr);
      walk(panel.panels ?? []);
    }
  };
  walk(dashboard.panels);
  for (const variable of dashboard.templating.list) {
    // Grafana's label_values(metric, label) is no PromQL: keep its metric and label as a selector.
    const values = /^label_values\(\s*([^,)]+?)\s*,\s*(\w+)\s*\)$/.exec(variable.definition ?? '');
    if (values) found.push(`sum by (${values[2]!}) (${values[1]!})`);
  }
  return found;
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const OPERATORS = new Set(['and', 'or', 'unless', 'bool', 'offset']);

/** The metric names and label names a PromQL expression reads. */
function namesIn(expr: string): { metrics: Set<string>; labels: Set<string> } {
  const labels = new Set<string>();
  let rest = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""'); // strings cannot hide names
  rest = rest.replace(/\{([^}]*)\}/g, (_, matchers: string) => {
    for (const [, label] of matchers.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)) {
      labels.add(label!);
    }
    return ' ';
  });
  rest = rest.replace(/\[[^\]]*\]/g, ' '); // ranges: [5m], [$__rate_interval]
  rest = rest.replace(
    /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g,
    (_, _k, list: string) => {
      for (const label of list.split(',').map((each) => each.trim())) if (label) labels.add(label);
      return ' ';
    },
  );
  const metrics = new Set<string>();
  for (const match of rest.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const name = match[0];
    const after = rest.slice(match.index + name.length).trimStart();
    const before = rest[match.index - 1];
    if (after.startsWith('(')) continue; // a function or aggregation
    if (before === '$' || /\d/.test(before ?? '')) continue; // a variable, or 1e3
    if (KEYWORDS.has(name) || OPERATORS.has(name)) continue;
    metrics.add(name);
  }
  return { metrics, labels };
}

const SUFFIXES = ['_bucket', '_sum', '_count'] as const;

/** The family (`# TYPE` line) a sample name belongs to in `scraped`, or undefined. */
function familyOf(name: string, scraped: Scrape): { family: string; type: string } | undefined {
  const types = new Map<string, string>();
  for (const [, family, type] of scraped.text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    types.set(family!, type!);
  }
  if (types.has(name)) return { family: name, type: types.get(name)! };
  for (const suffix of SUFFIXES) {
    if (!name.endsWith(suffix)) continue;
    const family = name.slice(0, -suffix.length);
    const type = types.get(family);
    if (type === 'histogram' || (type === 'summary' && suffix !== '_bucket'))
      return { family, type };
  }
  return undefined;
}

@Controller()
class TrafficController {
  constructor(
    private readonly probe: Probe,
    @Inject(REGISTRY) private readonly registry: Registry,
  ) {}

  @Get('work/:id')
  @Limited('work')
  async work(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  metrics() {
    return this.registry.metrics();
  }
}

describe('the Grafana dashboard reads only metrics the Prometheus integration exports', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
  const expressions = expressionsOf(dashboard);

  it('parses the metric and label names out of PromQL', () => {
    expect(
      namesIn(
        'histogram_quantile(0.99, sum by (gauge, le) (rate(x_seconds_bucket{gauge=~"$gauge", result="a b"}[$__rate_interval]))) / on (gauge) y_total offset 5m',
      ),
    ).toEqual({
      metrics: new Set(['x_seconds_bucket', 'y_total']),
      labels: new Set(['gauge', 'le', 'result']),
    });
  });

  it('has the panels the issue asks for', () => {
    const all = expressions.join('\n');
    for (const needed of [
      'backpressure_in_flight',
      'backpressure_limit',
      'backpressure_admitted_total',
      'backpressure_refused_total',
      'histogram_quantile(0.5',
      'histogram_quantile(0.99',
      'backpressure_queue_wait_seconds_bucket',
      'backpressure_held_seconds_bucket',
    ]) {
      expect(all).toContain(needed);
    }
  });

  describe('against a real scrape', () => {
    let probe: Probe;
    let running: Running;
    let scraped: Scrape;

    beforeAll(async () => {
      probe = new Probe();
      const registry = new Registry();
      running = await startApp(
        'express',
        moduleOf({
          imports: [
            BackpressureModule.forRoot({
              gauges: { work: { limit: 1, queue: { size: 1, timeoutMs: 1_000 } } },
            }),
            BackpressurePrometheusModule.forRoot({ registry }),
          ],
          controllers: [TrafficController],
          providers: [
            { provide: Probe, useValue: probe },
            { provide: REGISTRY, useValue: registry },
          ],
        }),
      );
      // Traffic: a held slot, a waiter that times out, one refused with the queue full, releases.
      const held = send(running.url, '/work/a');
      await until(() => probe.entered.length === 1, 'a holds the slot');
      const waiter = send(running.url, '/work/b');
      await until(() => running.gauge('work').queued === 1, 'b waits');
      expect((await send(running.url, '/work/c').reply).status).toBe(429);
      expect((await waiter.reply).status).toBe(429);
      probe.pass('a');
      expect((await held.reply).status).toBe(200);
      scraped = await scrape(running.url);
    });

    afterAll(async () => {
      probe.openAll();
      await running.close();
    });

    it.each(expressions.map((expr) => [expr]))('%s', (expr) => {
      const { metrics, labels } = namesIn(expr);
      expect(metrics.size).toBeGreaterThan(0);
      const sampleNames = new Set([...scraped.samples.keys()].map((key) => key.split('{')[0]));
      const sampleLabels = new Set(
        [...scraped.text.matchAll(/[{,]([a-zA-Z_]\w*)="/g)].map((m) => m[1]),
      );
      // A renamed metric or label shows up here by name.
      const missing = [...metrics].filter(
        (metric) => familyOf(metric, scraped) === undefined || !sampleNames.has(metric),
      );
      expect(missing).toEqual([]);
      expect([...labels].filter((label) => !sampleLabels.has(label))).toEqual([]);
    });
  });
});
