import { Catch, HttpStatus, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { GaugeExhaustedError } from '../src';

/**
 * Turns a `GaugeExhaustedError` thrown by a service's `gauge.process()` into the same 429 and
 * `Retry-After` that `@Limited` handlers answer. HTTP only; works with Express and Fastify.
 */
@Catch(GaugeExhaustedError)
export class GaugeExhaustedFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: GaugeExhaustedError, host: ArgumentsHost): void {
    const { httpAdapter } = this.adapterHost;
    const response: unknown = host.switchToHttp().getResponse();
    httpAdapter.setHeader(response, 'Retry-After', String(error.retryAfterSeconds));
    httpAdapter.reply(
      response,
      {
        statusCode: HttpStatus.TOO_MANY_REQUESTS,
        message: 'Too many requests',
        error: 'Too Many Requests',
      },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}
