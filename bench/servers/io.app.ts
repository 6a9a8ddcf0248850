import type { Type } from '@nestjs/common';
import { Dependency } from './dependency';
import { counter } from './handler-counter';
import { workModule } from './work.app';

/**
 * Scenario 3 (and the soak): a handler awaiting a dependency that serves 10 calls at a time in
 * 50 ms, i.e. 200 calls/s at most. Variants: no limiter (control), a gauge of 10 failing fast, and
 * a gauge of 10 with a queue of 20 waiting at most 100 ms.
 */
export const IO_CAPACITY_PER_SECOND = 200;
const dependency = new Dependency(10, 50);

async function work(): Promise<string> {
  counter.enter();
  try {
    await dependency.call();
    return 'ok';
  } finally {
    counter.leave();
  }
}

/** The root module for one variant. */
export function ioModule(variant: string): Type {
  if (variant === 'control') return workModule(work, undefined);
  const queue = variant === 'queue' ? { size: 20, timeoutMs: 100 } : undefined;
  if (!queue && variant !== 'failfast') throw new Error(`io: unknown variant ${variant}`);
  return workModule(work, { limit: 10, queue });
}
