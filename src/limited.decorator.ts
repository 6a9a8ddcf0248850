import { applyDecorators, SetMetadata, UseInterceptors } from '@nestjs/common';
import { assertGaugeName } from './core/gauge-options';
import { LIMITED_GAUGE } from './backpressure.constants';
import { BackpressureInterceptor } from './backpressure.interceptor';
import { wrapClassMethods, wrapMethod } from './limited-handler.wrapper';

/**
 * Runs the handler (or every handler of the controller) inside a slot of gauge `name`; a request
 * that finds none in time gets 429. The method's gauge wins over the class's, and a request is
 * counted once even when both apply. No `@UseInterceptors` needed.
 *
 * The handler is wrapped so that its slot is held for exactly as long as its own work runs (see
 * the README's Guarantees): put `@Limited` with the route decorators, in any order.
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
    if (key === undefined) wrapClassMethods(target as { prototype?: object });
    else wrapMethod(descriptor);
    decorate(target, key as string | symbol, descriptor as PropertyDescriptor);
  };
}
