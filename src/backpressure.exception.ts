import { HttpException, HttpStatus } from '@nestjs/common';
import type { ExhaustionReason } from './core/gauge.errors';

/**
 * The 429 a limited handler answers when its gauge has no slot in time. Its body has the shape of
 * Nest's own errors; the gauge and reason stay on the exception (for filters and logs), not in the
 * body, so internal names do not leak to clients.
 */
export class BackpressureException extends HttpException {
  constructor(
    /** The gauge that turned the request away. */
    readonly gauge: string,
    /** Why: no slot and no queue, queue full, queue timeout, or the client left while waiting. */
    readonly reason: ExhaustionReason | 'aborted',
    /** Seconds sent in `Retry-After`. */
    readonly retryAfterSeconds: number,
  ) {
    super(
      HttpException.createBody(
        'Too many requests',
        'Too Many Requests',
        HttpStatus.TOO_MANY_REQUESTS,
      ),
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}

/**
 * The 503 a limited handler answers when its gauge cannot decide (a shared store down and the
 * gauge set to fail closed): the service, not the client's rate, is the problem.
 */
export class BackpressureUnavailableException extends HttpException {
  constructor(
    /** The gauge that could not decide. */
    readonly gauge: string,
    /** Seconds sent in `Retry-After`. */
    readonly retryAfterSeconds: number,
  ) {
    super(
      HttpException.createBody(
        'Service unavailable',
        'Service Unavailable',
        HttpStatus.SERVICE_UNAVAILABLE,
      ),
      HttpStatus.SERVICE_UNAVAILABLE,
    );
  }
}
