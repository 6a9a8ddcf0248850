import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiTooManyRequestsResponse } from '@nestjs/swagger';
import { BackpressureRefusal } from '../src';
import { ReportsService } from './reports.service';

/** No `@Limited` here: the service limits its own work, so every caller of it is limited too. */
@Controller()
export class ReportsController {
  constructor(private readonly reports: ReportsService) {}

  @Get('report')
  @ApiOkResponse({ description: 'The report' })
  // Not a @Limited route, so not documented by itself: GaugeErrorFilter answers the service's refusal.
  @ApiTooManyRequestsResponse({
    description: 'The reports gauge is full',
    type: BackpressureRefusal,
  })
  report(): Promise<string> {
    return this.reports.build();
  }
}
