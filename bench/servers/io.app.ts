import { Controller, Get, Module, type Type } from '@nestjs/common';
import { lib } from '../harness/lib';
import { Dependency } from './dependency';
import { counter } from './handler-counter';

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

@Controller()
class PlainController {
  @Get()
  get(): Promise<string> {
    return work();
  }
}

@Controller()
class LimitedController {
  @Get()
  @lib.Limited('bench')
  get(): Promise<string> {
    return work();
  }
}

/** The root module for one variant. */
export function ioModule(variant: string): Type {
  if (variant === 'control') {
    @Module({ controllers: [PlainController] })
    class ControlModule {}
    return ControlModule;
  }
  const queue = variant === 'queue' ? { size: 20, timeoutMs: 100 } : undefined;
  if (!queue && variant !== 'failfast') throw new Error(`io: unknown variant ${variant}`);
  @Module({
    imports: [lib.BackpressureModule.forRoot({ gauges: { bench: { limit: 10, queue } } })],
    controllers: [LimitedController],
  })
  class LimitedModule {}
  return LimitedModule;
}
