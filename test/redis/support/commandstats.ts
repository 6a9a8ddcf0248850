/** One command's line of `INFO commandstats`: calls, and calls that ended in an error. */
export function commandStat(stats: string, command: string): { calls: number; errors: number } {
  const line = new RegExp(`^cmdstat_${command}:(.*)$`, 'm').exec(stats)?.[1] ?? '';
  const field = (name: string) => Number(new RegExp(`${name}=(\\d+)`).exec(line)?.[1] ?? 0);
  return { calls: field('calls'), errors: field('rejected_calls') + field('failed_calls') };
}

/** Calls of one command in `INFO commandstats` (scripts' inner commands are counted too). */
export function calls(stats: string, command: string): number {
  return commandStat(stats, command).calls;
}
