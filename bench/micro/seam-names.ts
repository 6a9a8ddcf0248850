/** Names of micro.ts's seam-group figures, shared with scenario 8 (micro.ts runs when loaded). */
export const SEAM = {
  base: 'seam: base build, fixed limit',
  fixed: 'seam: fixed limit, no listener',
  fixedListener: 'seam: fixed limit, 1 listener',
  sampling: 'seam: sampling policy, no listener',
  samplingListener: 'seam: sampling policy, 1 listener',
  clock: 'clock: performance.now()',
  hrtime: 'clock: process.hrtime.bigint()',
  date: 'clock: Date.now()',
} as const;
