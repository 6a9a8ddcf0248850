import { applyDecorators, SetMetadata, UseInterceptors } from '@nestjs/common';
import { assertGaugeName } from './core/gauge-options';
import { LIMITED_GAUGE } from './backpressure.constants';
import { BackpressureInterceptor } from './backpressure.interceptor';
import { GaugeConfigError } from './core/gauge.errors';
import { wrapClassMethods, wrapMethod } from './limited-handler.wrapper';
import { UNLIMITED } from './unlimited.decorator';

/**
 * Runs the handler (or every handler of the controller) inside a slot of gauge `name`; a request
 * that finds none in time gets 429. The method's gauge wins over the class's, and a request is
 * counted once even when both apply. No `@UseInterceptors` needed.
 *
 * The handler is wrapped so that its slot is held for exactly as long as its own work runs (see
 * the README's Guarantees): put `@Limited` with the route decorators, in any order.
 *
 * `@Unlimited()` on a method exempts it from a class-level `@Limited` (a health route).
 */
export function Limited(name: string): ClassDecorator & MethodDecorator {
  const decorate = applyDecorators(
    SetMetadata(LIMITED_GAUGE, name),
    UseInterceptors(BackpressureInterceptor),
  );
  return (target: object, key?: string | symbol, descriptor?: PropertyDescriptor) => {
    const where =
      key === undefined
        ? `@Limited() on ${(target as { name?: string }).name ?? 'a class'}`
        : `@Limited() on ${(target.constructor as { name?: string }).name}.${String(key)}`;
    assertGaugeName(name, `${where}: the gauge name`);
    if (key !== undefined && isUnlimited(descriptor)) {
      throw new GaugeConfigError(`${where}: the method also has @Unlimited(); keep one of them`);
    }
    if (key === undefined) wrapClassMethods(target as { prototype?: object });
    else wrapMethod(descriptor);
    decorate(target, key as string | symbol, descriptor as PropertyDescriptor);
  };
}

/** Whether `@Unlimited()` was applied to the method already (it sits below `@Limited`). */
function isUnlimited(descriptor: PropertyDescriptor | undefined): boolean {
  const handler: unknown = descriptor?.value;
  return (
    typeof handler === 'function' && Reflect.getOwnMetadata(LIMITED_GAUGE, handler) === UNLIMITED
  );
}
