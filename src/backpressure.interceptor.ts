import {
  Injectable,
  StreamableFile,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { SSE_METADATA } from '@nestjs/common/constants';
import { HttpAdapterHost, Reflector } from '@nestjs/core';
import { from, mergeMap, Observable, Subscription, throwError, type Subscriber } from 'rxjs';
import { GaugeAbortedError } from './core/gauge.errors';
import type { Gauge, Release } from './core/gauge.interface';
import { LIMITED_GAUGE } from './backpressure.constants';
import { refusalFor, translateRefusal } from './context-errors';
import { GaugeRegistry } from './gauge.registry';
import { discardUnsent, rawResponse, releaseWhenSent } from './raw-response.util';

/**
 * Marks an execution context whose request holds a slot right now, so the second interceptor of a
 * class- and method-level `@Limited` passes through. Cleared on release: an outer interceptor that
 * retries the call must take a slot again.
 */
const ADMITTED = Symbol('backpressure.admitted');
type Marked = ExecutionContext & { [ADMITTED]?: boolean };

/**
 * Holds a slot of the handler's gauge for as long as the handler's work runs, and turns "no slot in
 * time" into 429 (HTTP) or the RPC / WebSocket equivalent.
 *
 * The slot is released exactly once, when the work is really over: the handler's value emitted and
 * completed, an error thrown or emitted, a `StreamableFile` fully sent, or an SSE stream ended. A
 * client that disconnects does not free the slot while the handler still runs — that would let more
 * than `limit` handlers run — but a client that disconnects while queued leaves the queue and its
 * handler never runs. A stream that is unsubscribed (client gone, an outer `take`) stops and frees
 * its slot: an SSE stream at once, any other (e.g. a WebSocket handler's) once it has emitted.
 */
@Injectable()
export class BackpressureInterceptor implements NestInterceptor {
  /** Per controller, per handler: its gauge, or null when neither carries `@Limited`. */
  private readonly gauges = new WeakMap<object, WeakMap<object, Gauge | null>>();

  constructor(
    private readonly registry: GaugeRegistry,
    private readonly reflector: Reflector,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if ((context as Marked)[ADMITTED]) return next.handle();

    const gauge = this.gaugeFor(context);
    if (gauge === null) return next.handle();
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
    if (response?.closed) waiting.abort();
    else response?.once('close', onClose);

    let cancelled = false;
    let running: { unsubscribe(): void } | undefined;
    const start = (release: Release) => {
      stopWatching();
      if (cancelled) return release();
      if (waiting.signal.aborted) {
        // Granted as the client left (or by a store that ignores the signal): the handler must not
        // run, and the request must still end, or Nest would wait for it forever.
        release();
        return fail(new GaugeAbortedError(gauge.name));
      }
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

  /** Runs the handler in the slot and releases it (once) when the handler's work is over. */
  private run(next: CallHandler, release: Release, context: ExecutionContext): Observable<unknown> {
    const streamed =
      this.reflector.get<boolean | undefined>(SSE_METADATA, context.getHandler()) === true;
    const marked = context as Marked;
    return new Observable((subscriber) => {
      let held = true;
      const done = () => {
        if (!held) return;
        held = false;
        marked[ADMITTED] = false;
        release();
      };
      marked[ADMITTED] = true;
      let ended = false;
      let emitted = false;
      let sending = false;
      // A holder, so `stop` works even if called while `subscribe` has not returned yet.
      const work = new Subscription();
      const stop = () => {
        work.unsubscribe();
        done();
      };
      work.add(
        next.handle().subscribe({
          next: (value) => {
            emitted = true;
            if (subscriber.closed && !sending) {
              // Nobody will send this value: a file's stream would hold what it reads from.
              discardUnsent(value);
              return stop();
            }
            if (value instanceof StreamableFile) {
              sending = true;
              releaseWhenSent(value, rawResponse(context), done);
            }
            subscriber.next(value);
          },
          error: (error: unknown) => {
            ended = true;
            done();
            subscriber.error(error);
          },
          complete: () => {
            ended = true;
            if (!sending) done();
            subscriber.complete();
          },
        }),
      );
      // Unsubscribed before the work ended (client gone, an outer timeout or take): a stream that
      // has started (SSE, or any handler that has emitted) stops with its subscription, so its
      // slot is free. A handler still pending goes on (a promise cannot be cancelled), so `work`
      // stays subscribed and frees the slot when that work ends, or, for a stream, at its first
      // value. A StreamableFile being sent keeps its slot until the send is over.
      return () => {
        if (!ended && (streamed || (emitted && !sending))) stop();
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

  /** The gauge for this handler (the method's `@Limited` name wins over the class's), or null. Cached. */
  private gaugeFor(context: ExecutionContext): Gauge | null {
    const controller = context.getClass();
    const handler = context.getHandler();
    let byHandler = this.gauges.get(controller);
    if (!byHandler) this.gauges.set(controller, (byHandler = new WeakMap()));
    let gauge = byHandler.get(handler);
    if (gauge === undefined) {
      // No `@Limited` (the interceptor registered globally): such handlers are not limited.
      const name = this.reflector.getAllAndOverride<string | undefined>(LIMITED_GAUGE, [
        handler,
        controller,
      ]);
      gauge = name === undefined ? null : this.registry.get(name);
      byHandler.set(handler, gauge);
    }
    return gauge;
  }
}

/**
 * A 429 is an answer, not a bug: its exception is built without a stack trace, whose capture was
 * the largest cost of a refusal (docs/benchmarks.md, rejection cost).
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
