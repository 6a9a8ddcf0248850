// A consumer that documents its API with @nestjs/swagger, compiled by ../consumer-build.mjs with
// @nestjs/swagger and @nestjs/platform-express installed and `skipLibCheck: false`: the
// `BackpressureRefusal` class works as swagger's response `type`, and `main()` prints the
// responses swagger generated for a limited route and for one that documents its own 429 with
// that class (swagger then infers no 200 for it), and what `openApi: false` leaves.
import 'reflect-metadata';
import { Controller, Get, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ApiResponse, DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { BackpressureModule, BackpressureRefusal, Limited } from 'nestjs-backpressure';

@Controller('reports')
class ReportsController {
  @Get()
  @Limited('pdf')
  list(): string {
    return 'reports';
  }

  @Get('own')
  @Limited('pdf')
  @ApiResponse({ status: 429, type: BackpressureRefusal, description: 'Busy, said by us' })
  own(): string {
    return 'own';
  }
}

async function responses(openApi: boolean): Promise<string> {
  @Module({
    imports: [BackpressureModule.forRoot({ openApi, gauges: { pdf: { limit: 1 } } })],
    controllers: [ReportsController],
  })
  class AppModule {}
  const app: INestApplication = await NestFactory.create(AppModule, { logger: false });
  try {
    await app.init();
    const document = SwaggerModule.createDocument(app, new DocumentBuilder().build());
    const codes = (path: string): string =>
      Object.keys(document.paths[path]?.get?.responses ?? {}).join(',');
    const schema = document.components?.schemas?.['BackpressureRefusal'] ? 'schema' : 'no-schema';
    return `${codes('/reports')} ${codes('/reports/own')} ${schema}`;
  } finally {
    await app.close();
  }
}

export async function main(): Promise<string> {
  return `${await responses(true)} | ${await responses(false)}`;
}
