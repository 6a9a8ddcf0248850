import { SetMetadata } from '@nestjs/common';
import { GaugeConfigError } from './core/gauge.errors';
import { LIMITED_GAUGE } from './backpressure.constants';

/**
 * What `@Unlimited()` records under `LIMITED_GAUGE` on a method: "no gauge". Being defined (not
 * `undefined`), it wins over a class-level `@Limited` name in `Reflector.getAllAndOverride`.
 */
export const UNLIMITED = false;

/**
 * Exempts one handler from its controller's class-level `@Limited(name)` (or from a globally
 * registered `BackpressureInterceptor`): a health check or status route that must answer while
 * the class's gauge is full. The handler takes no slot and is never refused.
 *
 * ```ts
 * @Controller('reports')
 * @Limited('reports')
 * export class ReportsController {
 *   @Get('health')
 *   @Unlimited()
 *   health() { return 'ok'; }
 * }
 * ```
 *
 * A method cannot carry both `@Limited(name)` and `@Unlimited()`: that throws a
 * `GaugeConfigError` where the class is declared.
 */
export function Unlimited(): MethodDecorator {
  const mark = SetMetadata(LIMITED_GAUGE, UNLIMITED);
  return (target: object, key: string | symbol, descriptor: PropertyDescriptor) => {
    const owner = typeof target === 'function' ? target.name : target.constructor?.name;
    const where = `@Unlimited() on ${owner}.${String(key)}`;
    const handler: unknown = descriptor?.value;
    if (typeof handler !== 'function') {
      throw new GaugeConfigError(`${where}: it goes on a handler method`);
    }
    const name: unknown = Reflect.getOwnMetadata(LIMITED_GAUGE, handler);
    if (name !== undefined && name !== UNLIMITED) {
      throw new GaugeConfigError(
        `${where}: the method also has @Limited(${JSON.stringify(name)}); keep one of them`,
      );
    }
    mark(target, key, descriptor);
  };
}
