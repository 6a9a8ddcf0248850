import { join } from 'node:path';
import type * as Library from '../../src';
import { repoRoot } from './paths';

/**
 * The BUILT library (dist/, CommonJS), as an application installs it: the bench measures what ships,
 * not the TypeScript sources. Types come from src so the bench type-checks before a build.
 * BENCH_LIB points at another build (a copy of dist/ from before a change) for before/after runs.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const lib = require(process.env.BENCH_LIB ?? join(repoRoot, 'dist')) as typeof Library;
