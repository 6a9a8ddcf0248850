import {
  Injectable,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { SSE_METADATA } from '@nestjs/common/constants';
import { HttpAdapterHost, Reflector } from '@nestjs/core';
import { defer, Observable, type Subscriber, type TeardownLogic } from 'rxjs';
import { GaugeAbortedError } from './core/gauge.errors';
import type { Release } from './core/gauge.interface';
import type { PriorityLevel } from './core/priority/priority.level';
import { LIMITED_GAUGE, LIMITED_RUNNER, PRIORITY_LEVEL } from './backpressure.constants';
import { connectionOf, isGone, watchGone } from './client-connection.util';
import { refuse, refusalError } from './refusal.factory';
import { GaugeRegistry } from './gauge.registry';
import { LimitedCall } from './limited.call';
import { holdingCall } from './limited-calls.registry';
import type { LimitedRoute } from './limited-route.interface';
import { isLinkedRoute } from './limited-run.link';

/**
 * Takes a slot of the handler's gauge before the handler's chain (inner interceptors, pipes, the
 * handler) starts, and turns "no slot in time" into 429 (HTTP) or the RPC / WebSocket equivalent.
 *
 * The slot then belongs to the handler's run (see `LimitedCall`): it goes back when the run's own
 * work ends — promise settled, Observable finalized, file sent — not when an interceptor inside or
 * outside times out, catches or drops the chain. A client that leaves while queued leaves the
 * queue, and a handler whose client has gone before it starts never runs.
 */
@Injectable()
export class BackpressureInterceptor implements NestInterceptor {
  /** Per controller, per handler: its route, or null when neither carries `@Limited`. */
  private readonly routes = new WeakMap<object, WeakMap<object, LimitedRoute | null>>();
  private readonly refuser = (error: unknown, call: LimitedCall): unknown =>
    refusalError(
      error,
      call.route.gauge,
      call.context,
      this.adapterHost.httpAdapter,
      call.route.streamed,
      call.route.onRefusal,
    );

  constructor(
    private readonly registry: GaugeRegistry,
    private readonly reflector: Reflector,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const route = this.routeOf(context);
    // No `@Limited` (the interceptor registered globally): pass through.
    if (route === null) return next.handle();
    // Another copy of this interceptor (class and method level, or global too) holds this call:
    // pass through, in the call's context again (an interceptor between may have left it).
    const holder = holdingCall(context);
    if (holder !== undefined) return defer(() => holder.enter(() => next.handle()));
    // The slot is taken on subscription, not here: an outer interceptor that never subscribes
    // (a cache hit, a `race`) must not leave a slot taken that nothing would release.
    return new Observable((subscriber) => {
      const call = new LimitedCall(route, context, connectionOf(context), this.refuser);
      return this.admit(call, next, subscriber);
    });
  }

  /** Takes the call's slot (at once, or after waiting), then starts the chain. */
  private admit(
    call: LimitedCall,
    next: CallHandler,
    subscriber: Subscriber<unknown>,
  ): TeardownLogic {
    const { gauge } = call.route;
    const fail = (error: unknown) =>
      refuse(
        error,
        gauge,
        call.context,
        this.adapterHost.httpAdapter,
        call.route.streamed,
        call.route.onRefusal,
      ).subscribe(subscriber);
    // A client already gone is turned away before it can take a slot or a place in the queue
    // (through the gauge, which counts it as aborted).
    if (isGone(call.connection)) return this.turnAway(call, fail);
    if (!gauge.mayWait) {
      let release: Release;
      try {
        release = gauge.acquire(call.acquireOptions()) as Release;
      } catch (error) {
        return fail(error);
      }
      return this.start(call, release, next, subscriber);
    }

    const waiting = new AbortController();
    let stop: TeardownLogic;
    let unwatch: (() => void) | undefined;
    /** The wait is over (granted or refused): nothing listens to `waiting` any more. */
    let settled = false;
    const granted = (release: Release) => {
      settled = true;
      unwatch?.();
      // No work runs in such a slot: `ignored`, nothing for a limit policy or hold time to learn.
      if (!call.isOpen) return release('ignored');
      if (waiting.signal.aborted) {
        // Granted as the client left (or by a store that ignores the signal): the handler must
        // not run, and the request must still end, or Nest would wait for it forever.
        release('ignored');
        return fail(new GaugeAbortedError(gauge.name));
      }
      stop = this.start(call, release, next, subscriber);
    };
    const refused = (error: unknown) => {
      settled = true;
      unwatch?.();
      if (call.isOpen) fail(error);
    };
    try {
      const slot = gauge.acquire(call.acquireOptions(waiting.signal));
      if (typeof slot === 'function') return this.start(call, slot, next, subscriber);
      // Only a caller that really waits watches for its client leaving.
      if (call.connection) unwatch = watchGone(call.connection, () => waiting.abort());
      slot.then(granted, refused).catch((error: unknown) => subscriber.error(error));
    } catch (error) {
      return fail(error);
    }
    return () => {
      call.end();
      // Only a wait still going on is left; aborting a settled one would only build an AbortError.
      if (!settled) waiting.abort();
      unwatch?.();
      unsubscribe(stop);
    };
  }

  private turnAway(call: LimitedCall, fail: (error: unknown) => TeardownLogic): TeardownLogic {
    try {
      const slot = call.route.gauge.acquire({ signal: AbortSignal.abort() });
      // A gauge that grants even so: the slot goes straight back.
      if (typeof slot === 'function') slot('ignored');
      else
        slot.then(
          (release) => release('ignored'),
          () => undefined,
        );
    } catch (error) {
      return fail(error);
    }
    return fail(new GaugeAbortedError(call.route.gauge.name));
  }

  /** Hands the slot to the call and runs the chain under it, forwarding to `subscriber`. */
  private start(
    call: LimitedCall,
    release: Release,
    next: CallHandler,
    subscriber: Subscriber<unknown>,
  ): TeardownLogic {
    call.hold(release);
    const chain = call.enter(() =>
      next.handle().subscribe({
        next: (value) => {
          call.answered();
          subscriber.next(value);
        },
        error: (error: unknown) => {
          call.end();
          subscriber.error(error);
        },
        complete: () => {
          call.end();
          subscriber.complete();
        },
      }),
    );
    return () => {
      call.end();
      chain.unsubscribe();
    };
  }

  /** This handler's gauge (the method's `@Limited` name wins over the class's), or null. Cached. */
  private routeOf(context: ExecutionContext): LimitedRoute | null {
    const controller = context.getClass();
    const handler = context.getHandler();
    let byHandler = this.routes.get(controller);
    if (!byHandler) this.routes.set(controller, (byHandler = new WeakMap()));
    let route = byHandler.get(handler);
    if (route === undefined) {
      const name = this.reflector.getAllAndOverride<string | false | undefined>(LIMITED_GAUGE, [
        handler,
        controller,
      ]);
      // No name: not limited; `false`: exempted with `@Unlimited()` under a class-level `@Limited`.
      route =
        typeof name !== 'string'
          ? null
          : {
              gauge: this.registry.get(name),
              runner: this.reflector.get<object | undefined>(LIMITED_RUNNER, handler),
              streamed: this.reflector.get<boolean | undefined>(SSE_METADATA, handler) === true,
              linked: context.getType() === 'http' && isLinkedRoute(controller, handler),
              priority:
                this.reflector.getAllAndOverride<PriorityLevel | undefined>(PRIORITY_LEVEL, [
                  handler,
                  controller,
                ]) ?? this.registry.priorityResolver(name),
              onRefusal: this.registry.refusalHook(name),
              partition: this.registry.partitionResolver(name),
            };
      byHandler.set(handler, route);
    }
    return route;
  }
}

function unsubscribe(teardown: TeardownLogic): void {
  if (typeof teardown === 'function') teardown();
  else teardown?.unsubscribe();
}
