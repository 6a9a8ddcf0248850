import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machineInfo } from './harness/machine';
import { resultsDir } from './harness/paths';
import type { Aim, BenchContext, Scenario } from './harness/scenario';
import { renderPlots } from './plots';
import { renderTables } from './report';

/**
 * `npm run bench` / `npm run bench:quick`. Runs every scenarios/*.scenario.js in name order (or
 * those picked with --only=1,3), writes docs/results/<id>.json after each, renders the plots and
 * prints each aim with met / missed. Missed aims never fail the run: only a broken harness does.
 *
 * Flags: --quick (seconds, numbers meaningless, results under .bench-tmp/), --only=ids,
 * --reps=N (default 3), --soak=N requests (default 1e6; 10k when quick), --plots (re-render only).
 */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const quick = args.includes('--quick');
  const outDir = resultsDir(quick);
  if (args.includes('--plots')) {
    renderTables(quick);
    return renderPlots(quick);
  }

  const ctx: BenchContext = {
    quick,
    reps: Number(flag('reps') ?? (quick ? 1 : 3)),
    soakRequests: Number(flag('soak') ?? (quick ? 10_000 : 1_000_000)),
    log: (message) => console.log(message),
  };
  const only = flag('only')?.split(',');
  const dir = join(__dirname, 'scenarios');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.scenario.js'))
    .filter((f) => !only || only.some((id) => f.startsWith(`${id}-`) || f === `${id}.scenario.js`))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (files.length === 0) throw new Error(`no scenario matches --only=${only}`);

  machineInfo(); // pins the commit measured: the one dist/ was just built from
  mkdirSync(outDir, { recursive: true });
  const verdicts: Array<Aim & { scenario: string }> = [];
  const began = Date.now();
  for (const file of files) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { scenario } = require(join(dir, file)) as { scenario: Scenario };
    const t0 = Date.now();
    console.log(
      `\n# ${scenario.id}: ${scenario.title}${quick ? ' (quick: numbers meaningless)' : ''}`,
    );
    const machine = machineInfo();
    const result = await scenario.run(ctx);
    const seconds = Math.round((Date.now() - t0) / 1000);
    const record = { id: scenario.id, title: scenario.title, quick, seconds, machine, ...result };
    writeFileSync(join(outDir, `${scenario.id}.json`), JSON.stringify(record, null, 2) + '\n');
    for (const aim of result.aims) verdicts.push({ scenario: scenario.id, ...aim });
    console.log(`  (${seconds} s)`);
  }
  renderTables(quick);
  renderPlots(quick);

  console.log(
    `\n# Aims (${Math.round((Date.now() - began) / 1000)} s in all; results in ${outDir})`,
  );
  for (const v of verdicts) {
    console.log(
      `${v.met ? 'met   ' : 'MISSED'} ${v.scenario}  ${v.what}: ${v.value}  [target ${v.target}]`,
    );
  }
  if (quick)
    console.log('\nquick run: the harness works; its numbers mean nothing and fail nothing.');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
