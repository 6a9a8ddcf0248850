import type { Type } from '@nestjs/common';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { lib } from '../harness/lib';
import { burnCpu } from './dependency';
import { counter } from './handler-counter';
import { workModule } from './work.app';

/**
 * Scenario 4: a handler that burns 5 ms of CPU on the event loop (200 requests/s at most on one
 * core), in five 1 ms slices with a turn of the event loop between them, as a handler that parses,
 * awaits, computes and renders does. (A handler that burns all 5 ms in one synchronous go never has
 * two requests in flight at once, so no gauge of any size could refuse anything there.)
 * Variants: no limit, a fail-fast gauge of 1, 2 or 4 (`limit1`, `limit2`, `limit4`), or a fail-fast
 * gauge with an adaptive limit, defaults (`gradient2`, `vegas`, `aimd`; issue 10).
 */
export const CPU_CAPACITY_PER_SECOND = 200;

/** One request's 5 ms of CPU in 1 ms slices (also scenario 10's work). */
export async function work(): Promise<string> {
  counter.enter();
  try {
    for (let slice = 0; slice < 5; slice++) {
      burnCpu(1);
      await yieldToLoop();
    }
    return 'ok';
  } finally {
    counter.leave();
  }
}

/** The root module for one variant. */
export function cpuModule(variant: string): Type {
  if (variant === 'none') return workModule(work, undefined);
  if (variant === 'gradient2') return workModule(work, { limit: lib.gradient2() });
  if (variant === 'vegas') return workModule(work, { limit: lib.vegas() });
  if (variant === 'aimd') return workModule(work, { limit: lib.aimd() });
  const limit = Number(/^limit(\d+)$/.exec(variant)?.[1]);
  if (!Number.isInteger(limit)) throw new Error(`cpu: unknown variant ${variant}`);
  return workModule(work, { limit });
}
