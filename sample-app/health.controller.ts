import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { GaugeHealthIndicator } from '../src/terminus';

/**
 * `GET /health`: a readiness probe. 503 once a gauge has been saturated (every slot held, or
 * refusing callers) for 10 s, or while its shared store is down (with `REDIS_URL`); 200 otherwise.
 */
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly gauges: GaugeHealthIndicator,
  ) {}

  @Get('health')
  @HealthCheck()
  ready(): Promise<HealthCheckResult> {
    return this.health.check([() => this.gauges.areHealthy()]);
  }
}
