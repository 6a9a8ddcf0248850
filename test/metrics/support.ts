import { get } from '../e2e/support/http';

/** One scrape of a Prometheus text exposition: each sample by `name{label="value",...}`. */
export class Scrape {
  readonly samples = new Map<string, number>();

  constructor(readonly text: string) {
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`not an exposition line: ${line}`);
      const [, name, labels, value] = match;
      this.samples.set(key(name!, parseLabels(labels ?? '')), Number(value));
    }
  }

  /** The sample `name` with exactly `labels`; throws if there is none (a missing series is a bug). */
  value(name: string, labels: Record<string, string> = {}): number {
    const found = this.samples.get(key(name, labels));
    if (found === undefined) {
      const near = [...this.samples.keys()].filter((k) => k.startsWith(name)).slice(0, 20);
      throw new Error(`no sample ${key(name, labels)}; samples of ${name}: ${near.join(', ')}`);
    }
    return found;
  }

  /** Every value of label `label` among the samples. */
  labelValues(label: string): Set<string> {
    const values = new Set<string>();
    for (const sample of this.samples.keys()) {
      const labels = parseLabels(/\{(.*)\}/.exec(sample)?.[1] ?? '');
      if (labels[label] !== undefined) values.add(labels[label]);
    }
    return values;
  }
}

/** GET `path` and parse it as an exposition. */
export async function scrape(url: string, path = '/metrics'): Promise<Scrape> {
  const reply = await get(url, path);
  if (reply.status !== 200) throw new Error(`scrape: ${reply.status} ${reply.body}`);
  return new Scrape(reply.body);
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [, name, value] of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
    labels[name!] = value!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

function key(name: string, labels: Record<string, string>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((label) => `${label}="${labels[label]}"`);
  return `${name}{${parts.join(',')}}`;
}
