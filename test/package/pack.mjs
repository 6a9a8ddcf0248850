// Helpers shared by the package checks: pack the library as `npm publish` would, run commands.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** Prints a step header, in the style of .ci/run. */
export function step(title) {
  console.log(`\n--- ${title}`);
}

/** Runs a command; returns its stdout, or throws with everything it printed. */
export function run(command, args, options = {}) {
  try {
    return execFileSync(command, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
      ...options,
    });
  } catch (error) {
    const output = `${error.stdout ?? ''}${error.stderr ?? ''}`.trim();
    throw new Error(
      `${command} ${args.join(' ')} failed (${error.status ?? error.signal}):\n${output}`,
    );
  }
}

/**
 * `npm pack` into `dir`: its `prepack` script builds dist/ afresh first, so the tarball holds
 * exactly what the sources produce. Returns the tarball's path.
 */
export function packLibrary(dir) {
  step('npm pack (builds first)');
  const [{ filename, files }] = JSON.parse(
    run('npm', ['pack', '--json', '--pack-destination', dir, '--loglevel=error'], { cwd: repo }),
  );
  console.log(`  ${filename}: ${files.length} files`);
  return join(dir, filename);
}
