import {
  Injectable,
  StreamableFile,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { SSE_METADATA } from '@nestjs/common/constants';
import { HttpAdapterHost, Reflector } from '@nestjs/core';
import { Observable, Subscription, type Subscriber, type TeardownLogic } from 'rxjs';
import { GaugeAbortedError } from './core/gauge.errors';
import type { Gauge, Release } from './core/gauge.interface';
import { LIMITED_GAUGE } from './backpressure.constants';
import { refuse } from './context-errors';
import { GaugeRegistry } from './gauge.registry';
import { discardUnsent, rawResponse, releaseWhenSent, type RawResponse } from './raw-response.util';

/**
 * Marks an execution context whose request holds a slot right now, so the second interceptor of a
 * class- and method-level `@Limited` passes through. Cleared on release: an outer interceptor that
 * retries the call must take a slot again.
 */
const ADMITTED = Symbol('backpressure.admitted');
type Marked = ExecutionContext & { [ADMITTED]?: boolean };

/** What the interceptor needs to know of a limited handler, looked up once per handler. */
interface LimitedRoute {
  readonly gauge: Gauge;
  /** An SSE handler: its stream stops when unsubscribed, so its slot is free then. */
  readonly streamed: boolean;
}

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
  /** Per controller, per handler: its gauge and kind, or null when neither carries `@Limited`. */
  private readonly routes = new WeakMap<object, WeakMap<object, LimitedRoute | null>>();

  constructor(
    private readonly registry: GaugeRegistry,
    private readonly reflector: Reflector,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if ((context as Marked)[ADMITTED]) return next.handle();
    const route = this.routeOf(context);
    if (route === null) return next.handle();
    const { gauge } = route;
    // The slot is taken on subscription, not here: an outer interceptor that never subscribes
    // (a cache hit, a `race`) must not leave a slot taken that nothing would release.
    if (!gauge.mayWait) {
      return new Observable((subscriber) => {
        let release: Release;
        try {
          release = gauge.acquire() as Release;
        } catch (error) {
          return refuse(error, gauge, context, this.adapterHost.httpAdapter).subscribe(subscriber);
        }
        return this.runInSlot(subscriber, next, release, context, route.streamed);
      });
    }
    return new Observable((subscriber) => this.waitThenRun(route, next, context, subscriber));
  }

  /** Queue path: waits for a slot, leaving the queue if the client goes away first. */
  private waitThenRun(
    { gauge, streamed }: LimitedRoute,
    next: CallHandler,
    context: ExecutionContext,
    subscriber: Subscriber<unknown>,
  ): TeardownLogic {
    const waiting = new AbortController();
    let response: RawResponse | undefined;
    const onClose = () => waiting.abort();
    let cancelled = false;
    let running: TeardownLogic;
    const start = (release: Release) => {
      response?.off('close', onClose);
      if (cancelled) return release();
      if (waiting.signal.aborted) {
        // Granted as the client left (or by a store that ignores the signal): the handler must not
        // run, and the request must still end, or Nest would wait for it forever.
        release();
        return fail(new GaugeAbortedError(gauge.name));
      }
      running = this.runInSlot(subscriber, next, release, context, streamed);
    };
    const fail = (error: unknown) => {
      response?.off('close', onClose);
      if (!cancelled)
        refuse(error, gauge, context, this.adapterHost.httpAdapter).subscribe(subscriber);
    };

    // A client already gone is turned away before it can take a slot or a place in the queue.
    if (rawResponse(context)?.closed) waiting.abort();
    try {
      const slot = gauge.acquire(waiting.signal);
      if (typeof slot === 'function') {
        start(slot);
      } else {
        // Only a caller that really waits watches for its client leaving.
        response = rawResponse(context);
        response?.once('close', onClose);
        slot.then(start, fail);
      }
    } catch (error) {
      fail(error);
    }
    return () => {
      cancelled = true;
      waiting.abort();
      if (typeof running === 'function') running();
      else running?.unsubscribe();
    };
  }

  /**
   * Runs the handler in the slot, forwarding to `subscriber`, and releases the slot once when the
   * handler's work is over. Returns the teardown for `subscriber`'s unsubscription.
   */
  private runInSlot(
    subscriber: Subscriber<unknown>,
    next: CallHandler,
    release: Release,
    context: ExecutionContext,
    streamed: boolean,
  ): TeardownLogic {
    const marked = context as Marked;
    let held = true;
    const done = () => {
      if (!held) return;
      held = false;
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
          marked[ADMITTED] = false;
          done();
          subscriber.error(error);
        },
        complete: () => {
          ended = true;
          marked[ADMITTED] = false;
          if (!sending) done();
          subscriber.complete();
        },
      }),
    );
    // Unsubscribed before the work ended (client gone, an outer timeout or take): a stream that
    // has started (SSE, or any handler that has emitted) stops with its subscription, so its
    // slot is free. A handler still pending goes on (a promise cannot be cancelled), so `work`
    // stays subscribed and frees the slot when that work ends, or, for a stream, at its first
    // value. A StreamableFile being sent keeps its slot until the send is over. Either way this
    // attempt is over for the caller: an outer retry must take a slot of its own.
    return () => {
      marked[ADMITTED] = false;
      if (!ended && (streamed || (emitted && !sending))) stop();
    };
  }

  /** This handler's gauge (the method's `@Limited` name wins over the class's) and kind, or null. Cached. */
  private routeOf(context: ExecutionContext): LimitedRoute | null {
    const controller = context.getClass();
    const handler = context.getHandler();
    let byHandler = this.routes.get(controller);
    if (!byHandler) this.routes.set(controller, (byHandler = new WeakMap()));
    let route = byHandler.get(handler);
    if (route === undefined) {
      // No `@Limited` (the interceptor registered globally): such handlers are not limited.
      const name = this.reflector.getAllAndOverride<string | undefined>(LIMITED_GAUGE, [
        handler,
        controller,
      ]);
      route =
        name === undefined
          ? null
          : {
              gauge: this.registry.get(name),
              streamed: this.reflector.get<boolean | undefined>(SSE_METADATA, handler) === true,
            };
      byHandler.set(handler, route);
    }
    return route;
  }
}
