import { Controller, Get, Header, Req } from '@nestjs/common';
import { GaugeRegistry, type GaugeStats } from '../src';
import { describeEndpoints } from './endpoints';

/** The app's front page and a live view of its gauges (what a health check or metrics would read). */
@Controller()
export class HomeController {
  constructor(private readonly registry: GaugeRegistry) {}

  @Get()
  @Header('Content-Type', 'text/plain; charset=utf-8')
  home(@Req() request: { headers: { host?: string } }): string {
    const base = request.headers.host ? `http://${request.headers.host}` : '';
    return [
      'nestjs-backpressure sample app',
      '',
      ...describeEndpoints(base),
      '',
      'Try: npm run demo  (30 concurrent GET /request: 10 x 200 after ~2 s, 20 x 429 at once)',
      '',
    ].join('\n');
  }

  @Get('gauges')
  gauges(): Record<string, GaugeStats> {
    const stats: Record<string, GaugeStats> = {};
    for (const g of this.registry.list()) {
      const { limit, inFlight, queued, admitted, rejected, timedOut, aborted } = g;
      stats[g.name] = { limit, inFlight, queued, admitted, rejected, timedOut, aborted };
    }
    return stats;
  }
}
