import { Controller, Get, Header } from '@nestjs/common';
import { register } from 'prom-client';

/**
 * `GET /metrics`: prom-client's default registry, where `BackpressurePrometheusModule` registers
 * the gauges' metrics (an app using @willsoto/nestjs-prometheus gets this endpoint from it).
 */
@Controller()
export class MetricsController {
  @Get('metrics')
  @Header('Content-Type', register.contentType)
  metrics(): Promise<string> {
    return register.metrics();
  }
}
