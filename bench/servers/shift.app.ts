import type { Type } from '@nestjs/common';
import type { GaugeConfig, GaugeRegistry } from '../../src';
import { lib } from '../harness/lib';
import { Dependency } from './dependency';
import { counter } from './handler-counter';
import { workModule } from './work.app';

/**
 * Scenario 9 (issue 10): a handler awaiting a dependency that serves `width` calls at a time in
 * 50 ms each and queues the rest (a connection pool), whose width the scenario changes at run time
 * (10 → 4 → 20) through `shiftControl`. Variants: no limit (`none`), a fixed limit of 10
 * (`static10`), the per-phase oracle (`oracle`: a fixed limit set to the width at each shift), and
 * the adaptive policies with their defaults (`gradient2`, `vegas`, `aimd`). All fail fast.
 */
export const SHIFT_SERVICE_MS = 50;
export const SHIFT_FIRST_WIDTH = 10;
const dependency = new Dependency(SHIFT_FIRST_WIDTH, SHIFT_SERVICE_MS);

async function work(): Promise<string> {
  counter.enter();
  try {
    await dependency.call();
    return 'ok';
  } finally {
    counter.leave();
  }
}

function gauge(variant: string): GaugeConfig | undefined {
  switch (variant) {
    case 'none':
      return undefined;
    case 'static10':
    case 'oracle':
      return { limit: SHIFT_FIRST_WIDTH };
    case 'gradient2':
      return { limit: lib.gradient2() };
    case 'vegas':
      return { limit: lib.vegas() };
    case 'aimd':
      return { limit: lib.aimd() };
    default:
      throw new Error(`shift: unknown variant ${variant}`);
  }
}

/** The root module for one variant. */
export function shiftModule(variant: string): Type {
  return workModule(work, gauge(variant));
}

/**
 * The scenario's command channel: `width` changes the dependency's width at once (and, for the
 * oracle, the gauge's limit to match, in the same turn of the event loop).
 */
export function shiftControl(
  registry: GaugeRegistry | undefined,
  variant: string,
  command: string,
  value: number,
): void {
  if (command !== 'width') throw new Error(`shift: unknown command ${command}`);
  dependency.setWidth(value);
  if (variant === 'oracle') void registry!.get('bench').setLimit(value);
}
