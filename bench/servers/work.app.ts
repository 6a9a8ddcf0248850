import { Controller, Get, Module, type Type } from '@nestjs/common';
import type { GaugeConfig } from '../../src';
import { lib } from '../harness/lib';

/**
 * The root module of an overload server (scenarios 3, 4, 6): one GET route running `work`, bare
 * when `gauge` is undefined, else under `@Limited('bench')` with that configuration.
 */
export function workModule(work: () => Promise<string>, gauge: GaugeConfig | undefined): Type {
  if (gauge === undefined) {
    @Controller()
    class PlainController {
      @Get()
      get(): Promise<string> {
        return work();
      }
    }
    @Module({ controllers: [PlainController] })
    class PlainModule {}
    return PlainModule;
  }
  @Controller()
  class LimitedController {
    @Get()
    @lib.Limited('bench')
    get(): Promise<string> {
      return work();
    }
  }
  @Module({
    imports: [lib.BackpressureModule.forRoot({ gauges: { bench: gauge } })],
    controllers: [LimitedController],
  })
  class LimitedModule {}
  return LimitedModule;
}
