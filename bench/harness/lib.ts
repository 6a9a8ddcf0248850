import { basename, dirname, join } from 'node:path';
import type * as Library from '../../src';
import type * as RedisLibrary from '../../src/redis';
import { repoRoot } from './paths';

/**
 * The BUILT library (dist/, CommonJS), as an application installs it: the bench measures what ships,
 * not the TypeScript sources. Types come from src so the bench type-checks before a build.
 * BENCH_LIB points at another build (a copy of dist/ from before a change) for before/after runs.
 */
const build = process.env.BENCH_LIB ?? join(repoRoot, 'dist');
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const lib = require(build) as typeof Library;

/**
 * The built `nestjs-backpressure/redis` entry, loaded on first use (only the Redis scenario needs
 * it, and ioredis with it). A build from before that subpath existed had the store in its root.
 */
export function redisLib(): typeof RedisLibrary {
  let entry: unknown;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    entry = require(join(build, 'redis'));
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'MODULE_NOT_FOUND' || !('RedisGaugeStore' in lib)) {
      throw error;
    }
    entry = lib;
  }
  return entry as typeof RedisLibrary;
}

/**
 * The older build a before/after scenario compares with (issue 9: the commit before the limit
 * policy seam), from BENCH_BASE_LIB: a `dist/` compiled from that commit, placed under this
 * repository (e.g. .bench-tmp/base-62283d2/dist) so it resolves the same node_modules, hence the
 * same @nestjs/common, as the current build. Its label is BENCH_BASE_LABEL or the folder's name.
 * Undefined when unset: the scenario then compares the current build with itself (a quick run).
 */
export function baseBuild(): { path: string; label: string } | undefined {
  const path = process.env.BENCH_BASE_LIB;
  if (!path) return undefined;
  return { path, label: process.env.BENCH_BASE_LABEL ?? basename(dirname(path)) };
}
