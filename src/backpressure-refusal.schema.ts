import type { RefusalReason } from './backpressure.exception';

/** Every `RefusalReason`, in the order the OpenAPI document lists them. */
export const REFUSAL_REASONS = [
  'full',
  'queue-full',
  'queue-timeout',
  'shed-delay',
  'shed-priority',
  'key-over-share',
  'shed-pressure',
  'aborted',
  'unavailable',
] as const satisfies readonly RefusalReason[];

// A reason added to `RefusalReason` but not listed above fails the type-check here.
type Unlisted = Exclude<RefusalReason, (typeof REFUSAL_REASONS)[number]>;
const everyReasonListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyReasonListed;

/** One property as `@nestjs/swagger`'s CLI plugin describes it (its `_OPENAPI_METADATA_FACTORY`). */
interface PropertyDoc {
  readonly required: true;
  readonly type: 'integer' | (() => StringConstructor);
  readonly enum?: readonly (number | string)[];
  readonly description: string;
  readonly example: number | string;
}

/**
 * The body of a 429 / 503 a gauge answers (`BackpressureException`,
 * `BackpressureUnavailableException`): Nest's error shape plus `reason`. It is also the OpenAPI
 * component `BackpressureRefusal` that `@Limited` routes document when `@nestjs/swagger` is
 * installed, and can be named in your own `@ApiResponse({ status: 429, type: BackpressureRefusal })`.
 * It imports nothing from `@nestjs/swagger`: its schema is the static factory swagger's CLI plugin
 * would have generated, which swagger reads when (and only if) it builds a document.
 */
export class BackpressureRefusal {
  /** 429 (no slot in time) or 503 (the gauge's shared store is down and it fails closed). */
  declare readonly statusCode: 429 | 503;
  /** `'Too many requests'` or `'Service unavailable'`: never the gauge's name. */
  declare readonly message: string;
  /** The status's name: `'Too Many Requests'` or `'Service Unavailable'`. */
  declare readonly error: 'Too Many Requests' | 'Service Unavailable';
  /** Why the gauge said no (`RefusalReason`); `unavailable` comes with 503, the others with 429. */
  declare readonly reason: RefusalReason;

  /**
   * The schema of each property, in the form `@nestjs/swagger` reads from classes its CLI plugin
   * compiled: swagger calls it when it first meets this class in a document.
   */
  static _OPENAPI_METADATA_FACTORY(): Record<keyof BackpressureRefusal, PropertyDoc> {
    return {
      statusCode: {
        required: true,
        type: 'integer',
        enum: [429, 503],
        description: '429: no slot in time; 503: the shared store is down (fail-closed gauge)',
        example: 429,
      },
      message: {
        required: true,
        type: () => String,
        description: 'A fixed text per status, never the gauge name',
        example: 'Too many requests',
      },
      error: {
        required: true,
        type: () => String,
        enum: ['Too Many Requests', 'Service Unavailable'],
        description: 'The status name',
        example: 'Too Many Requests',
      },
      reason: {
        required: true,
        type: () => String,
        enum: REFUSAL_REASONS,
        description:
          'full: no slot and no queue; queue-full: the wait queue is full; queue-timeout: no slot ' +
          'within the queue timeout; shed-delay: a standing (CoDel) queue gave up on it; ' +
          "shed-priority: room kept for higher priorities; key-over-share: the caller's key holds " +
          'its share; shed-pressure: the event loop is under ' +
          'pressure; aborted: the client left while waiting; ' +
          'unavailable (503): the shared store is down',
        example: 'full',
      },
    };
  }
}
