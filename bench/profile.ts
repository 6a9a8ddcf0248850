import { fork } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { closedLoop } from './harness/closed-loop';
import { repoRoot } from './harness/paths';

/**
 * Where does a server's time go? Starts one bench server under `node --cpu-prof`, warms it, loads it
 * with autocannon, stops it cleanly and prints the functions with the most self time. The profile
 * itself (.cpuprofile, for Chrome DevTools) stays in .bench-tmp/profiles/.
 *
 *   npm run build && npx tsc -p bench/tsconfig.json
 *   node node_modules/.cache/nestjs-backpressure-bench/bench/profile.js overhead held fastify 5
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

async function main(): Promise<void> {
  const [app = 'overhead', variant = 'held', adapter = 'express', seconds = '5'] =
    process.argv.slice(2);
  const dir = join(repoRoot, '.bench-tmp', 'profiles');
  mkdirSync(dir, { recursive: true });
  const before = new Set(readdirSync(dir));
  const child = fork(join(__dirname, 'servers', 'main.js'), [], {
    env: {
      ...process.env,
      NODE_ENV: 'production',
      BENCH_APP: app,
      BENCH_VARIANT: variant,
      BENCH_ADAPTER: adapter,
    },
    execArgv: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const url = await new Promise<string>((resolve) =>
    child.once('message', (m: { url: string }) => resolve(m.url)),
  );
  await closedLoop({ url, connections: 20, seconds: 3 });
  const result = await closedLoop({ url, connections: 20, seconds: Number(seconds) });
  console.log(
    `${app}/${variant}@${adapter}: ${Math.round(result.rps)} req/s, p99 ${result.p99Ms} ms, ${JSON.stringify(result.rpsByStatus)}`,
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;

  const file = readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no profile written');
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
    nodes: ProfileNode[];
    samples: number[];
  };
  const hits = new Map<number, number>();
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  const byFunction = new Map<string, number>();
  for (const node of profile.nodes) {
    const { functionName, url: source, lineNumber } = node.callFrame;
    const where = source
      .replace(/^.*node_modules\//, '')
      .replace(/^file:\/\/.*\/(dist|src)\//, '$1/');
    const key = `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + (hits.get(node.id) ?? 0));
  }
  const total = profile.samples.length;
  console.log(`\nself time, top 30 of ${total} samples (${join(dir, file)}):`);
  for (const [key, n] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    console.log(`${((100 * n) / total).toFixed(1).padStart(5)}%  ${key}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
