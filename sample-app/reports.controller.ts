import { Controller, Get } from '@nestjs/common';
import { ReportsService } from './reports.service';

/** No `@Limited` here: the service limits its own work, so every caller of it is limited too. */
@Controller()
export class ReportsController {
  constructor(private readonly reports: ReportsService) {}

  @Get('report')
  report(): Promise<string> {
    return this.reports.build();
  }
}
