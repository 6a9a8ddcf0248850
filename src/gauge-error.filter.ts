import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { GaugeAbortedError, GaugeExhaustedError, GaugeUnavailableError } from './core/gauge.errors';
import { refusalFor } from './context-errors';

/**
 * Answers the gauge errors that `gauge.process()` / `gauge.acquire()` throw in services the way
 * `@Limited` handlers answer: 429 (or 503 for an unreachable shared store) with `Retry-After` and
 * Nest's error body. Without it such errors reach Nest's default filter as a 500. HTTP only:
 * register it with `APP_FILTER` or `app.useGlobalFilters(new GaugeErrorFilter(adapterHost))`.
 */
@Catch(GaugeExhaustedError, GaugeAbortedError, GaugeUnavailableError)
export class GaugeErrorFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(
    error: GaugeExhaustedError | GaugeAbortedError | GaugeUnavailableError,
    host: ArgumentsHost,
  ): void {
    // An aborted wait has no hint of its own: 1 s, the fail-fast default.
    const refusal = refusalFor(error, { name: error.gauge, retryAfterSeconds: 1 })!;
    const { httpAdapter } = this.adapterHost;
    const response: unknown = host.switchToHttp().getResponse();
    httpAdapter.setHeader(response, 'Retry-After', String(refusal.retryAfterSeconds));
    httpAdapter.reply(response, refusal.getResponse(), refusal.getStatus());
  }
}
