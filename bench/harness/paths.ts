import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The repository root, found by walking up from this (compiled) file: the bench is compiled into
 * node_modules/.cache, so relative paths to dist/ and docs/ would depend on that layout.
 */
export const repoRoot: string = findRoot(__dirname);

/** Where committed results go, and where a quick run writes instead (never over the real ones). */
export function resultsDir(quick: boolean): string {
  return quick ? join(repoRoot, '.bench-tmp', 'results') : join(repoRoot, 'docs', 'results');
}

/** Where SVG plots go: docs/ for a full run, beside the quick results otherwise. */
export function plotsDir(quick: boolean): string {
  return quick ? join(repoRoot, '.bench-tmp') : join(repoRoot, 'docs');
}

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (
      existsSync(manifest) &&
      JSON.parse(readFileSync(manifest, 'utf8')).name === 'nestjs-backpressure'
    ) {
      return dir;
    }
    if (dirname(dir) === dir)
      throw new Error(`bench: no nestjs-backpressure package.json above ${from}`);
  }
}
