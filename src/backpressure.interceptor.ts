import {
  Injectable,
  StreamableFile,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { SSE_METADATA } from '@nestjs/common/constants';
import { HttpAdapterHost, Reflector } from '@nestjs/core';
import { from, mergeMap, Observable, throwError, type Subscriber } from 'rxjs';
import type { Gauge, Release } from './core/gauge.interface';
import { LIMITED_GAUGE } from './backpressure.constants';
import { refusalFor, translateRefusal } from './context-errors';
import { GaugeRegistry } from './gauge.registry';

/** Marks an execution context whose request already holds a slot (class- and method-level `@Limited`). */
const ADMITTED = Symbol('backpressure.admitted');
type Marked = ExecutionContext & { [ADMITTED]?: true };

/** The Node response under Express (`res`) or Fastify (`reply.raw`), to see the client leave. */
interface RawResponse {
  readonly writableFinished: boolean;
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

/**
 * Holds a slot of the handler's gauge for as long as the handler's work runs, and turns "no slot in
 * time" into 429 (HTTP) or the RPC / WebSocket equivalent.
 *
 * The slot is released exactly once, when the work is really over: the handler's value emitted and
 * completed, an error thrown or emitted, a `StreamableFile` fully sent, or an SSE stream ended. A
 * client that disconnects does not free the slot while the handler still runs — that would let more
 * than `limit` handlers run — but a client that disconnects while queued leaves the queue and its
 * handler never runs.
 */
@Injectable()
export class BackpressureInterceptor implements NestInterceptor {
  private readonly gauges = new WeakMap<object, WeakMap<object, Gauge>>();

  constructor(
    private readonly registry: GaugeRegistry,
    private readonly reflector: Reflector,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const marked = context as Marked;
    if (marked[ADMITTED]) return next.handle();
    marked[ADMITTED] = true;

    const gauge = this.gaugeFor(context);
    if (!gauge.mayWait) {
      let release: Release;
      try {
        release = gauge.acquire() as Release;
      } catch (error) {
        return this.refuse(error, gauge, context);
      }
      return this.run(next, release, context);
    }
    return new Observable((subscriber) => this.waitThenRun(gauge, next, context, subscriber));
  }

  /** Queue path: waits for a slot, leaving the queue if the client goes away first. */
  private waitThenRun(
    gauge: Gauge,
    next: CallHandler,
    context: ExecutionContext,
    subscriber: Subscriber<unknown>,
  ) {
    const waiting = new AbortController();
    const response = rawResponse(context);
    const onClose = () => waiting.abort();
    const stopWatching = () => response?.off('close', onClose);
    if (response && !response.writableFinished) response.once('close', onClose);

    let cancelled = false;
    let running: { unsubscribe(): void } | undefined;
    const start = (release: Release) => {
      stopWatching();
      if (cancelled || waiting.signal.aborted) return release();
      running = this.run(next, release, context).subscribe(subscriber);
    };
    const fail = (error: unknown) => {
      stopWatching();
      if (!cancelled) this.refuse(error, gauge, context).subscribe(subscriber);
    };

    try {
      const slot = gauge.acquire(waiting.signal);
      if (typeof slot === 'function') start(slot);
      else slot.then(start, fail);
    } catch (error) {
      fail(error);
    }
    return () => {
      cancelled = true;
      waiting.abort();
      running?.unsubscribe();
    };
  }

  /** Runs the handler in the slot and releases it when the handler's work is over. */
  private run(next: CallHandler, release: Release, context: ExecutionContext): Observable<unknown> {
    const streamed =
      this.reflector.get<boolean | undefined>(SSE_METADATA, context.getHandler()) === true;
    return new Observable((subscriber) => {
      let releaseLater = false;
      const work = next.handle().subscribe({
        next: (value) => {
          if (value instanceof StreamableFile) {
            releaseLater = true;
            releaseWhenSent(value, rawResponse(context), release);
          }
          subscriber.next(value);
        },
        error: (error: unknown) => {
          release();
          subscriber.error(error);
        },
        complete: () => {
          if (!releaseLater) release();
          subscriber.complete();
        },
      });
      // Unsubscribed early (client gone, an outer timeout): an SSE stream stops with its subscription,
      // so its slot is free. Any other handler's work goes on after an unsubscribe (a promise cannot be
      // cancelled), so `work` stays subscribed and releases when that work really ends.
      return () => {
        if (streamed) {
          work.unsubscribe();
          release();
        }
      };
    });
  }

  private refuse(error: unknown, gauge: Gauge, context: ExecutionContext): Observable<never> {
    const refusal = withoutStackTrace(() => refusalFor(error, gauge));
    if (!refusal) return throwError(() => error);
    const type = context.getType();
    if (type === 'http') {
      const response: unknown = context.switchToHttp().getResponse();
      this.adapterHost.httpAdapter?.setHeader(
        response,
        'Retry-After',
        String(refusal.retryAfterSeconds),
      );
      return throwError(() => refusal);
    }
    return from(translateRefusal(type, refusal)).pipe(
      mergeMap((translated) => throwError(() => translated)),
    );
  }

  /** The gauge for this handler: the method's `@Limited` name wins over the class's. Cached. */
  private gaugeFor(context: ExecutionContext): Gauge {
    const controller = context.getClass();
    const handler = context.getHandler();
    let byHandler = this.gauges.get(controller);
    if (!byHandler) this.gauges.set(controller, (byHandler = new WeakMap()));
    let gauge = byHandler.get(handler);
    if (!gauge) {
      const name = this.reflector.getAllAndOverride<string | undefined>(LIMITED_GAUGE, [
        handler,
        controller,
      ]);
      if (name === undefined) {
        throw new Error(
          `BackpressureInterceptor on ${controller.name}.${handler.name} has no gauge: use @Limited('name') instead of @UseInterceptors(BackpressureInterceptor)`,
        );
      }
      gauge = this.registry.get(name);
      byHandler.set(handler, gauge);
    }
    return gauge;
  }
}

/**
 * A 429 is an answer, not a bug: its exception is built without a stack trace, whose capture cost
 * more than the rest of a rejection (see docs/benchmarks.md, rejection cost).
 */
function withoutStackTrace<T>(build: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return build();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function rawResponse(context: ExecutionContext): RawResponse | undefined {
  if (context.getType() !== 'http') return undefined;
  const response = context
    .switchToHttp()
    .getResponse<{ raw?: RawResponse } & Partial<RawResponse>>();
  const raw = response?.raw ?? response;
  return typeof raw?.once === 'function' ? (raw as RawResponse) : undefined;
}

/** A streamed body's work ends when the stream ends, fails, or the client stops reading it. */
function releaseWhenSent(
  file: StreamableFile,
  response: RawResponse | undefined,
  release: Release,
): void {
  const stream = file.getStream();
  stream.once('end', release);
  stream.once('close', release);
  stream.once('error', release);
  response?.once('close', release);
}
