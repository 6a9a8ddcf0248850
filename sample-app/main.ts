import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { AppModule } from './app.module';
import { describeEndpoints } from './endpoints';

/** Starts the sample on `HOST`:`PORT` (default 127.0.0.1:3000) and prints what to try. */
async function bootstrap(): Promise<void> {
  const port = Number(process.env.PORT ?? 3000);
  const host = process.env.HOST ?? '127.0.0.1';
  const app = await NestFactory.create(AppModule);
  app.enableShutdownHooks();
  // Each @Limited route documents its 429 (503 on a Redis gauge) by itself: nothing to add here.
  const openApi = new DocumentBuilder().setTitle('nestjs-backpressure sample').build();
  SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, openApi));
  await app.listen(port, host);

  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const logger = new Logger('Sample');
  logger.log(`Listening on ${url}`);
  for (const line of describeEndpoints(url)) logger.log(line);
  logger.log('Fire a burst at it: npm run demo  (see npm run demo -- --help)');
}

void bootstrap();
