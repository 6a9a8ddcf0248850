import { Injectable } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { InjectGauge, type Gauge } from '../src';

/**
 * Work limited outside a controller: the service runs it inside a slot of the `reports` gauge.
 * `process` gives the slot back however the work ends, and rejects with `GaugeExhaustedError`
 * when there is no slot (turned into 429 by `the library's `GaugeErrorFilter``).
 */
@Injectable()
export class ReportsService {
  constructor(@InjectGauge('reports') private readonly gauge: Gauge) {}

  build(): Promise<string> {
    return this.gauge.process(async () => {
      await sleep(1000);
      return `report built at ${new Date().toISOString()}`;
    });
  }
}
