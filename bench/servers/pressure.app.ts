import { Controller, Get, Module, type Type } from '@nestjs/common';
import type { GaugeConfig } from '../../src';
import { lib } from '../harness/lib';
import { work } from './cpu.app';

/**
 * Scenario 10 (issue 11, part 4): scenario 4's CPU-bound handler (5 ms in 1 ms slices) on two
 * routes of one gauge: `GET /` at the default level (`normal`) and `GET /critical`. Variants:
 * `none` (no gauge), `limit4` (scenario 4's best static limit, with priority headroom) and
 * `eventLoop` (a gauge too wide to ever be full, `eventLoop: true`: only the process's own
 * event-loop pressure sheds).
 */
export function pressureModule(variant: string): Type {
  const gauge: GaugeConfig | undefined =
    variant === 'none'
      ? undefined
      : variant === 'limit4'
        ? { limit: 4 }
        : variant === 'eventLoop'
          ? { limit: 10_000, eventLoop: true }
          : fail(variant);
  const limited = gauge === undefined ? () => undefined : lib.Limited('bench');
  const critical = gauge === undefined ? () => undefined : lib.Priority('critical');

  @Controller()
  class PressureController {
    @Get()
    @limited
    normal(): Promise<string> {
      return work();
    }

    @Get('critical')
    @limited
    @critical
    critical(): Promise<string> {
      return work();
    }
  }
  @Module({
    imports:
      gauge === undefined ? [] : [lib.BackpressureModule.forRoot({ gauges: { bench: gauge } })],
    controllers: [PressureController],
  })
  class PressureModule {}
  return PressureModule;
}

function fail(variant: string): never {
  throw new Error(`pressure: unknown variant ${variant}`);
}
