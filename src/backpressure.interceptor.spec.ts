import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { CallHandler, ExecutionContext } from '@nestjs/common';
import { HttpAdapterHost, Reflector } from '@nestjs/core';
import { Observable, type Subscription } from 'rxjs';
import { flush } from '../test/support/wait';
import { LIMITED_GAUGE } from './backpressure.constants';
import { BackpressureInterceptor } from './backpressure.interceptor';
import type { Release } from './core/gauge.interface';
import { PressureGauge } from './core/pressure-gauge';
import type { GaugeRegistry } from './gauge.registry';

/*
 * The interceptor's wait (a queue) ending for two reasons at once: the subscriber leaves in the
 * same tick as the grant or the refusal, before the wait's `.then` ran. Driven without an app
 * (an RPC context: no connection to watch), on a real in-memory gauge.
 */
beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
});
afterEach(() => {
  jest.useRealTimers();
});

class Handlers {
  run(): string {
    return 'ran';
  }
}
Reflect.defineMetadata(LIMITED_GAUGE, 'q', Handlers.prototype.run);

function setup() {
  const gauge = new PressureGauge({ name: 'q', limit: 1, queue: { size: 5, timeoutMs: 1000 } });
  const registry = {
    get: () => gauge,
    priorityResolver: () => undefined,
    refusalHook: () => undefined,
    partitionResolver: () => undefined,
  } as unknown as GaugeRegistry;
  const interceptor = new BackpressureInterceptor(registry, new Reflector(), new HttpAdapterHost());
  const context = () =>
    ({
      getClass: () => Handlers,
      getHandler: () => Handlers.prototype.run,
      getType: () => 'rpc',
      getArgByIndex: () => ({}),
      getArgs: () => [],
    }) as unknown as ExecutionContext;
  let handled = 0;
  const next: CallHandler = {
    handle: () =>
      new Observable<string>((subscriber) => {
        handled++;
        subscriber.next('ran');
        subscriber.complete();
      }),
  };
  const call = () => {
    const seen = { values: [] as unknown[], error: undefined as unknown, done: false };
    const subscription: Subscription = interceptor.intercept(context(), next).subscribe({
      next: (value) => seen.values.push(value),
      error: (error: unknown) => (seen.error = error),
      complete: () => (seen.done = true),
    });
    return { seen, subscription };
  };
  return { gauge, call, handled: () => handled };
}

describe('BackpressureInterceptor, a wait ending two ways at once', () => {
  it('unsubscribed after the grant but before its `.then` ran: the slot goes back, the handler never runs', async () => {
    const { gauge, call, handled } = setup();
    const held = gauge.acquire() as Release;
    const waiting = call();
    expect(gauge.queued).toBe(1);
    held(); // the slot is handed to the waiter (its promise resolved)...
    waiting.subscription.unsubscribe(); // ...and the caller leaves in the same tick
    await flush();
    expect(handled()).toBe(0);
    expect([gauge.inFlight, gauge.queued, gauge.admitted, gauge.aborted]).toEqual([0, 0, 2, 0]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('unsubscribed while waiting: the waiter leaves (aborted), nothing is held', async () => {
    const { gauge, call, handled } = setup();
    const held = gauge.acquire() as Release;
    const waiting = call();
    waiting.subscription.unsubscribe();
    held();
    await flush();
    expect(handled()).toBe(0);
    expect([gauge.inFlight, gauge.queued, gauge.aborted]).toEqual([0, 0, 1]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('unsubscribed after the timeout but before its `.then` ran: nothing held, nothing answered', async () => {
    const { gauge, call, handled } = setup();
    const held = gauge.acquire() as Release;
    const waiting = call();
    jest.advanceTimersByTime(1000); // refused (timeout)...
    waiting.subscription.unsubscribe(); // ...as the caller leaves
    await flush();
    expect(handled()).toBe(0);
    expect(waiting.seen.error).toBeUndefined();
    expect([gauge.inFlight, gauge.queued, gauge.timedOut, gauge.aborted]).toEqual([1, 0, 1, 0]);
    held();
    expect(gauge.inFlight).toBe(0);
  });

  it('granted after waiting, the chain runs once and its slot is released once', async () => {
    const { gauge, call, handled } = setup();
    const held = gauge.acquire() as Release;
    const waiting = call();
    held();
    await flush();
    expect(handled()).toBe(1);
    expect(waiting.seen).toMatchObject({ values: ['ran'], done: true });
    waiting.subscription.unsubscribe(); // a teardown after the end frees nothing more
    expect([gauge.inFlight, gauge.queued, gauge.admitted]).toEqual([0, 0, 2]);
  });
});
