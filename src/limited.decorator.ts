import { applyDecorators, SetMetadata, UseInterceptors } from '@nestjs/common';
import { assertGaugeName } from './core/gauge-options';
import { LIMITED_GAUGE } from './backpressure.constants';
import { BackpressureInterceptor } from './backpressure.interceptor';

/**
 * Runs the handler (or every handler of the controller) inside a slot of gauge `name`; a request
 * that finds none in time gets 429. The method's gauge wins over the class's, and a request is
 * counted once even when both apply. No `@UseInterceptors` needed.
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
    decorate(target, key as string | symbol, descriptor as PropertyDescriptor);
  };
}
