import type { ContextType, ExecutionContext } from '@nestjs/common';
import type { AbstractHttpAdapter } from '@nestjs/core';
import { from, mergeMap, throwError, type Observable } from 'rxjs';
import { BackpressureException, BackpressureUnavailableException } from './backpressure.exception';
import {
  GaugeAbortedError,
  GaugeExhaustedError,
  GaugeUnavailableError,
  withoutStackTrace,
} from './core/gauge.errors';
import type { Gauge } from './core/gauge.interface';
import { endStartedResponse, headersSent } from './client-connection.util';
import type { RefusalHook } from './refusal.hook';
import { keepRetryAfterForErrors } from './retry-after-header.util';
import { answerRefusal, payloadOf, type Refusal } from './refusal-answer.util';

export type { RefusalPayload } from './refusal-answer.util';

/*
 * Refusals: what a call a gauge turned away ends with, in its own context. A gauge error
 * (`GaugeExhaustedError`, `GaugeAbortedError`, `GaugeUnavailableError`) becomes
 *   - `refusalFor`: the HTTP exception (429 `BackpressureException`, 503
 *     `BackpressureUnavailableException`);
 *   - `translateRefusal`: that exception as an `RpcException` / `WsException` carrying a
 *     `RefusalPayload`, for microservice and WebSocket contexts;
 *   - `refusalError` / `refuse`: either, for the interceptor, with `Retry-After` set on an HTTP
 *     response whose head is unsent,
 *   - with the gauge's `onRefusal` hook, as it reshaped them (`answerRefusal`).
 * Any other error passes through untouched.
 */

type ErrorClass = new (payload: object) => Error;
const loaded: Partial<Record<'rpc' | 'ws', ErrorClass>> = {};

/**
 * The HTTP exception for a gauge error: 429 `BackpressureException` or 503
 * `BackpressureUnavailableException`, built without a stack trace; undefined for an error that is
 * not about the gauge. `translateRefusal` turns it into its RPC / WebSocket form.
 */
export function refusalFor(
  error: unknown,
  gauge: Pick<Gauge, 'name' | 'retryAfterSeconds'>,
): BackpressureException | BackpressureUnavailableException | undefined {
  // A 429 is an answer, not a bug: no stack trace, whose capture was the largest cost of a refusal.
  return withoutStackTrace(() => buildRefusal(error, gauge));
}

function buildRefusal(
  error: unknown,
  gauge: Pick<Gauge, 'name' | 'retryAfterSeconds'>,
): BackpressureException | BackpressureUnavailableException | undefined {
  if (error instanceof GaugeExhaustedError) {
    return new BackpressureException(gauge.name, error.reason, error.retryAfterSeconds);
  }
  if (error instanceof GaugeAbortedError) {
    return new BackpressureException(gauge.name, 'aborted', gauge.retryAfterSeconds);
  }
  if (error instanceof GaugeUnavailableError) {
    return new BackpressureUnavailableException(gauge.name, error.retryAfterSeconds);
  }
  return undefined;
}

/**
 * Turns an HTTP refusal into the error type the RPC or WebSocket exception filters understand
 * (`RpcException` / `WsException`, loaded lazily: an app only has those packages if it uses them),
 * carrying `payload` (default: the refusal's `RefusalPayload`).
 */
export async function translateRefusal(
  type: ContextType,
  refusal: Refusal,
  payload: object = payloadOf(refusal),
): Promise<Error> {
  if (type !== 'rpc' && type !== 'ws') return refusal;
  const ErrorType = (loaded[type] ??= await load(type));
  return new ErrorType(payload);
}

async function load(type: 'rpc' | 'ws'): Promise<ErrorClass> {
  if (type === 'rpc') return (await import('@nestjs/microservices')).RpcException;
  return (await import('@nestjs/websockets')).WsException;
}

/**
 * The error a refused call ends with, in its context: for HTTP the exception (with `Retry-After`
 * set on the response while its head is unsent), elsewhere its RPC / WebSocket form, which may take
 * a lazy import the first time. Other errors pass through untouched. Never throws: it runs in
 * promise callbacks and teardowns, where a throw would escape Nest and stop the process.
 */
export function refusalError(
  error: unknown,
  gauge: Gauge,
  context: ExecutionContext,
  httpAdapter: AbstractHttpAdapter | undefined,
  streamed = false,
  hook?: RefusalHook,
): unknown {
  const found = refusalFor(error, gauge);
  if (!found) return error;
  const type = context.getType();
  if (type === 'http') {
    // An SSE stream or a `@Res()` handler may have sent the head already: an SSE stream then ends
    // through Nest's error handling (an error event); any other response is ended here.
    const started = headersSent(context);
    const { refusal } = answerRefusal(found, type, context, hook, started);
    if (started) {
      if (!streamed) endStartedResponse(context);
    } else {
      try {
        const response: unknown = context.switchToHttp().getResponse();
        httpAdapter?.setHeader(response, 'Retry-After', String(refusal.retryAfterSeconds));
        keepRetryAfterForErrors(context);
      } catch {
        // The head went out in between: the status and body still tell the client.
      }
    }
    return refusal;
  }
  const { refusal, payload } = answerRefusal(found, type, context, hook);
  const cached = loaded[type as 'rpc' | 'ws'];
  if (cached !== undefined) return new cached(payload ?? payloadOf(refusal));
  return translateRefusal(type, refusal, payload).catch(() => refusal);
}

/** `refusalError` as an Observable that errors, for the interceptor's own subscriber. */
export function refuse(
  error: unknown,
  gauge: Gauge,
  context: ExecutionContext,
  httpAdapter: AbstractHttpAdapter | undefined,
  streamed = false,
  hook?: RefusalHook,
): Observable<never> {
  const refused = refusalError(error, gauge, context, httpAdapter, streamed, hook);
  if (!(refused instanceof Promise)) return throwError(() => refused);
  return from(refused).pipe(mergeMap((translated) => throwError(() => translated)));
}

/**
 * Takes back the `Retry-After` a refused run set, when the call is answered after all (an inner
 * `catchError` turned the refusal into a fallback): a 200 must not tell the client to wait.
 */
export function withdrawRetryAfter(context: ExecutionContext): void {
  if (context.getType() !== 'http' || headersSent(context)) return;
  const response = context
    .switchToHttp()
    .getResponse<{ removeHeader?: (name: string) => unknown }>();
  try {
    response.removeHeader?.('Retry-After');
  } catch {
    // The head went out in between: nothing to take back.
  }
}
