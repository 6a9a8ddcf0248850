import { SetMetadata } from '@nestjs/common';
import { assertPriority, type PriorityLevel } from './core/priority/priority.level';
import { PRIORITY_LEVEL } from './backpressure.constants';

/**
 * Gives every call of a handler (on a method) or of a controller's handlers (on the class) a
 * fixed priority for its gauge: the common case, with no resolver to write. Under overload a
 * queue serves higher levels first and a fail-fast gauge keeps room for them while it refuses
 * lower ones (`shed-priority`). A method's `@Priority` wins over its class's, and either wins
 * over the gauge's `priority` resolver.
 *
 * ```ts
 * @Controller('checkout')
 * @Limited('api')
 * @Priority('critical')
 * export class CheckoutController {}
 * ```
 *
 * A level that is not one of `critical`, `high`, `normal`, `low` throws a `GaugeConfigError`
 * where the class is declared.
 */
export function Priority(level: PriorityLevel): ClassDecorator & MethodDecorator {
  assertPriority('@Priority(level): the level', level);
  return SetMetadata(PRIORITY_LEVEL, level);
}
