// Fires a burst of concurrent requests at the running sample app and prints what came back:
// how many got each status, and how long they took; then how the app's backpressure_* metrics
// (GET /metrics) changed over the burst. Plain Node (>= 20), no dependencies.
//
//   npm run demo                          30 x GET http://127.0.0.1:3000/request
//   npm run demo -- /queued 10            10 x GET /queued
//   npm run demo -- --count 50 --url http://127.0.0.1:4000 --path /report
//   DEMO_URL=... DEMO_PATH=... DEMO_COUNT=... npm run demo
import { parseArgs } from 'node:util';

const HELP = `Usage: npm run demo -- [path] [count] [--url URL] [--path PATH] [--count N]

  --url, -u    where the sample app runs  (env DEMO_URL, default http://127.0.0.1:$PORT or :3000)
  --path, -p   the endpoint to hit         (env DEMO_PATH, default /request)
  --count, -n  concurrent requests to fire (env DEMO_COUNT, default 30)

Start the app first in another terminal: npm start`;

const REQUEST_TIMEOUT_MS = 30_000;

function options() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      url: { type: 'string', short: 'u' },
      path: { type: 'string', short: 'p' },
      count: { type: 'string', short: 'n' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const positionalPath = positionals.find((arg) => !/^\d+$/.test(arg));
  const positionalCount = positionals.find((arg) => /^\d+$/.test(arg));
  const env = process.env;
  const url = values.url ?? env.DEMO_URL ?? `http://127.0.0.1:${env.PORT ?? 3000}`;
  let path = values.path ?? positionalPath ?? env.DEMO_PATH ?? '/request';
  if (!path.startsWith('/')) path = `/${path}`;
  const count = Number(values.count ?? positionalCount ?? env.DEMO_COUNT ?? 30);
  if (!Number.isInteger(count) || count < 1 || count > 10_000) {
    fail(
      `count must be an integer from 1 to 10000, got ${values.count ?? positionalCount ?? env.DEMO_COUNT}`,
    );
  }
  let base;
  try {
    base = new URL(url);
  } catch {
    fail(`not a URL: ${url}`);
  }
  return { base: base.origin, path, count };
}

function fail(message) {
  console.error(`demo: ${message}`);
  process.exit(1);
}

/** Checks that something answers at `base` before firing, so a missing app is one clear message. */
async function assertRunning(base) {
  try {
    const response = await fetch(base + '/', { signal: AbortSignal.timeout(3000) });
    await response.arrayBuffer();
  } catch (error) {
    const reason = error?.cause?.code ?? error?.name ?? String(error);
    fail(
      `nothing answers at ${base} (${reason}).\n` +
        `Start the sample app first, in another terminal:  npm start\n` +
        `(or point the demo elsewhere: npm run demo -- --url http://host:port)`,
    );
  }
}

/** One request, timed from just before it is sent until its whole body has arrived. */
async function shoot(url) {
  const started = performance.now();
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const body = await response.text();
    return {
      key: String(response.status),
      ms: performance.now() - started,
      retryAfter: response.headers.get('retry-after') ?? '',
      body: summarize(body),
    };
  } catch (error) {
    const code = error?.cause?.code ?? error?.name ?? 'error';
    return { key: `error ${code}`, ms: performance.now() - started, retryAfter: '', body: '' };
  }
}

/** The body in a few words: a JSON error's `message`, or the text itself, cut short. */
function summarize(body) {
  let text = body;
  try {
    const parsed = JSON.parse(body);
    if (parsed && typeof parsed.message === 'string') text = parsed.message;
  } catch {
    // not JSON: show the text
  }
  text = text.replace(/\s+/g, ' ').trim();
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

/** The app's backpressure_* samples (name{labels} -> value), or undefined without /metrics. */
async function scrape(base) {
  try {
    const response = await fetch(base + '/metrics', { signal: AbortSignal.timeout(3000) });
    if (!response.ok) return undefined;
    const samples = new Map();
    for (const line of (await response.text()).split('\n')) {
      if (!line.startsWith('backpressure_') || line.includes('_bucket{')) continue;
      const at = line.lastIndexOf(' ');
      samples.set(line.slice(0, at), Number(line.slice(at + 1)));
    }
    return samples;
  } catch {
    return undefined;
  }
}

/** The counters and sums that moved over the burst, and the gauges' levels now. */
function metricsChange(before, after) {
  const rows = [['metric', 'before', 'after', 'change']];
  for (const [series, value] of after) {
    const was = before.get(series) ?? 0;
    const level = /^backpressure_(in_flight|limit|queued)\{/.test(series);
    if (!level && value === was) continue;
    const change = value - was;
    const show = (n) => (Number.isInteger(n) ? String(n) : n.toFixed(3));
    rows.push([series, show(was), show(value), level ? '' : `+${show(change)}`]);
  }
  return rows;
}

function median(sorted) {
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function formatMs(ms) {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

function metricsTable(rows) {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)));
  return rows
    .map((row) =>
      row
        .map((cell, col) => (col === 0 ? cell.padEnd(widths[col]) : cell.padStart(widths[col])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function table(rows) {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)));
  const numeric = new Set([1, 2, 3, 4]);
  return rows
    .map((row) =>
      row
        .map((cell, col) =>
          numeric.has(col) ? cell.padStart(widths[col]) : cell.padEnd(widths[col]),
        )
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function main() {
  const { base, path, count } = options();
  await assertRunning(base);

  const url = base + path;
  const before = await scrape(base);
  console.log(`Firing ${count} concurrent GET ${url} ...`);
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: count }, () => shoot(url)));
  const total = performance.now() - started;

  const groups = new Map();
  for (const result of results) {
    const group = groups.get(result.key) ?? [];
    group.push(result);
    groups.set(result.key, group);
  }
  const rows = [['status', 'count', 'min', 'median', 'max', 'retry-after', 'body']];
  for (const key of [...groups.keys()].sort()) {
    const group = groups.get(key);
    const times = group.map((r) => r.ms).sort((a, b) => a - b);
    rows.push([
      key,
      String(group.length),
      formatMs(times[0]),
      formatMs(median(times)),
      formatMs(times[times.length - 1]),
      group[0].retryAfter,
      group[0].body,
    ]);
  }
  console.log();
  console.log(table(rows));
  console.log();
  console.log(`All ${count} answered in ${formatMs(total)}.`);
  const after = before && (await scrape(base));
  if (before && after) {
    console.log();
    console.log('Metrics (GET /metrics) over the burst:');
    console.log(metricsTable(metricsChange(before, after)));
  }
  if (groups.size === 1 && [...groups.keys()][0].startsWith('error')) process.exitCode = 1;
}

await main();
