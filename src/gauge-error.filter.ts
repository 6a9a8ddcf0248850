import { Catch, Optional, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { from, mergeMap, type Observable } from 'rxjs';
import { GaugeAbortedError, GaugeExhaustedError, GaugeUnavailableError } from './core/gauge.errors';
import { endStartedResponse, headersSent } from './client-connection.util';
import { GaugeRegistry } from './gauge.registry';
import { answerRefusal } from './refusal-answer.util';
import { refusalFor, translateRefusal } from './refusal.factory';

type GaugeError = GaugeExhaustedError | GaugeAbortedError | GaugeUnavailableError;

/**
 * Answers the gauge errors that `gauge.process()` / `gauge.acquire()` throw in services the way
 * `@Limited` handlers answer: over HTTP 429 (or 503 for an unreachable shared store) with
 * `Retry-After` and Nest's error body; to a microservice or WebSocket client the same
 * `RefusalPayload` a `@Limited` refusal sends, through Nest's own RPC / WebSocket filter; in any
 * other context (GraphQL) the `BackpressureException`, for that context's error handling.
 *
 * `BackpressureModule` registers it globally (`APP_FILTER`) unless `errorFilter: false`. It only
 * catches these three error classes, so it never answers another error. Nest asks global filters
 * from the last registered to the first and uses the first whose `@Catch` matches: a catch-all
 * filter of yours registered after it (`app.useGlobalFilters()`, or `APP_FILTER` in a module
 * imported after `BackpressureModule`) sees gauge errors first; one registered before it (an
 * `APP_FILTER` in the root module's own providers) sees every error but these.
 *
 * With the registry (injected, or given to `new GaugeErrorFilter(adapterHost, registry)`), the
 * gauge's `onRefusal` hook (its own, else the module's) sees and may reshape each refusal, as for
 * `@Limited`.
 */
@Catch(GaugeExhaustedError, GaugeAbortedError, GaugeUnavailableError)
export class GaugeErrorFilter implements ExceptionFilter<GaugeError> {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @Optional() private readonly registry?: GaugeRegistry,
  ) {}

  catch(error: GaugeError, host: ArgumentsHost): Observable<never> | Error | void {
    const found = refusalFor(error, { name: error.gauge, retryAfterSeconds: this.hint(error) })!;
    const type = host.getType<string>();
    const hook = this.registry?.refusalHook(error.gauge);
    // A `@Res()` handler that wrote before its service was refused: the head is out.
    const started = type === 'http' && headersSent(host);
    const { refusal, payload } = answerRefusal(found, type, host, hook, started);
    if (type === 'http') {
      if (started) return endStartedResponse(host); // no status or body can be sent any more
      const { httpAdapter } = this.adapterHost;
      const response: unknown = host.switchToHttp().getResponse();
      try {
        httpAdapter.setHeader(response, 'Retry-After', String(refusal.retryAfterSeconds));
        httpAdapter.reply(response, refusal.getResponse(), refusal.getStatus());
      } catch {
        endStartedResponse(host); // the head went out in between
      }
      return;
    }
    if (type === 'rpc') {
      // The packages are loaded already: the app serves this context with them.
      const loading = Promise.all([
        translateRefusal('rpc', refusal, payload),
        import('@nestjs/microservices'),
      ]);
      return from(loading).pipe(
        mergeMap(
          ([exception, { BaseRpcExceptionFilter }]) =>
            new BaseRpcExceptionFilter().catch(exception, host) as Observable<never>,
        ),
      );
    }
    if (type === 'ws') {
      void Promise.all([translateRefusal('ws', refusal, payload), import('@nestjs/websockets')])
        .then(([exception, { BaseWsExceptionFilter }]) =>
          new BaseWsExceptionFilter().catch(exception, host),
        )
        .catch(() => undefined); // the client is gone: nobody to answer
      return;
    }
    return refusal;
  }

  /**
   * `Retry-After` of an aborted wait, which carries no hint of its own: its gauge's (1 s, the
   * fail-fast default, without the registry or for a gauge it no longer has).
   */
  private hint(error: GaugeError): number {
    const { registry } = this;
    if (!(error instanceof GaugeAbortedError) || !registry?.has(error.gauge)) return 1;
    return registry.get(error.gauge).retryAfterSeconds;
  }
}
