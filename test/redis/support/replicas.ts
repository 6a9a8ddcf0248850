import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(process.cwd());
const FIXTURE = join(ROOT, 'test/redis/fixtures/replica.mjs');
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/**
 * Compiles the library (CommonJS, as published) into a private directory for child processes, so
 * they run the current sources without touching `dist/` (other builds may be under way there).
 * Type errors elsewhere do not stop it: tsc still emits, and the children need only the output.
 */
export function compileLibrary(): { index: string; remove(): void } {
  const outDir = join(
    ROOT,
    'node_modules/.cache/nestjs-backpressure-redis-test',
    `lib-${process.pid}`,
  );
  rmSync(outDir, { recursive: true, force: true });
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const args = ['-p', 'tsconfig.build.json', '--outDir', outDir, '--declaration', 'false'];
  const noMaps = ['--sourceMap', 'false', '--inlineSources', 'false'];
  const result = spawnSync(process.execPath, [tsc, ...args, ...noMaps], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 180_000,
  });
  const index = join(outDir, 'index.js');
  if (!existsSync(index)) {
    throw new Error(
      `could not build the library for child processes:\n${result.stdout}${result.stderr}`,
    );
  }
  return { index, remove: () => rmSync(outDir, { recursive: true, force: true }) };
}

/** A replica process: a Nest app whose gauge "shared" uses a RedisGaugeStore. */
export interface Replica {
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything it wrote to stderr (store log lines, crashes), for failure messages. */
  readonly stderr: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a replica and resolves once it listens (bounded: fails after `timeoutMs`). */
export async function startReplica(
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<Replica> {
  const child = spawn(process.execPath, [FIXTURE], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  let stdout = '';
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`replica did not start:\n${stderr}`)),
      timeoutMs,
    );
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      const ready = /READY (\S+)/.exec(stdout)?.[1];
      if (ready !== undefined) {
        clearTimeout(timer);
        resolveUrl(ready);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`replica exited (${code ?? signal}) before listening:\n${stderr}`));
    });
  });
  return {
    url,
    child,
    stderr: () => stderr,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Most intervals open at once; an end and a start at the same instant do not overlap. */
export function maxOverlap(intervals: [bigint, bigint][]): number {
  const events = intervals.flatMap(([start, end]) => [
    { at: start, delta: 1 },
    { at: end, delta: -1 },
  ]);
  events.sort((a, b) => (a.at === b.at ? a.delta - b.delta : a.at < b.at ? -1 : 1));
  let open = 0;
  let max = 0;
  for (const { delta } of events) max = Math.max(max, (open += delta));
  return max;
}
