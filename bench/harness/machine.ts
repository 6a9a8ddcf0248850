import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './paths';

/** The machine a run was made on: numbers mean little without it. */
export interface MachineInfo {
  date: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  node: string;
  nest: string;
  express: string;
  fastify: string;
  autocannon: string;
  library: string;
  /** The commit measured (with "+dirty" when the work tree had changes under src/). */
  commit: string;
  loadAverage: number[];
}

export function machineInfo(): MachineInfo {
  return {
    date: new Date().toISOString(),
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    nest: version('@nestjs/core'),
    express: version('express'),
    fastify: version('fastify'),
    autocannon: version('autocannon'),
    library: JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version,
    commit: commit(),
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

let measured: string | undefined;

/**
 * Read once, on the first call (the runner's start, right after `npm run build`), not per scenario.
 * BENCH_COMMIT names it instead when BENCH_LIB points at a build of another commit.
 */
function commit(): string {
  return (measured ??= process.env.BENCH_COMMIT ?? readCommit());
}

function readCommit(): string {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8' }).trim();
    return (
      git('rev-parse', '--short', 'HEAD') +
      (git('status', '--porcelain', '--', 'src') ? '+dirty' : '')
    );
  } catch {
    return 'unknown';
  }
}

function version(pkg: string): string {
  try {
    return JSON.parse(readFileSync(join(repoRoot, 'node_modules', pkg, 'package.json'), 'utf8'))
      .version;
  } catch {
    return 'absent';
  }
}
