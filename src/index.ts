/*
 * The public API of `nestjs-backpressure`: every name here is deliberate, documented in the README
 * and covered by semver. Nothing else under src/ is public, even if exported from its file.
 *
 * This entry never reaches `ioredis`, not even in its types, so an app without it compiles with
 * `skipLibCheck: false`. The Redis store is the subpath `nestjs-backpressure/redis` (src/redis).
 */

// The Nest module and how handlers and services use it.
export { BackpressureModule } from './backpressure.module';
export {
  BACKPRESSURE_OPTIONS,
  type BackpressureModuleAsyncOptions,
  type BackpressureOptionsFactory,
} from './backpressure.module-definition';
export type {
  BackpressureModuleOptions,
  GaugeConfig,
  UnknownGaugesPolicy,
} from './backpressure-options.interface';
export type { BackpressureFeatureOptions } from './feature-gauges.interface';
export { Limited } from './limited.decorator';
export { Unlimited } from './unlimited.decorator';
export { InjectGauge } from './inject-gauge.decorator';
export { getGaugeToken, LIMITED_GAUGE } from './backpressure.constants';
export { GaugeRegistry, type GaugeKind } from './gauge.registry';
export { DEFAULT_MAX_DYNAMIC_GAUGES } from './module-options.validation';
export { BackpressureInterceptor } from './backpressure.interceptor';

// What clients see when a gauge says no.
export {
  BackpressureException,
  BackpressureUnavailableException,
  type RefusalReason,
  type RefusalStatus,
} from './backpressure.exception';
export { GaugeErrorFilter } from './gauge-error.filter';
export { BackpressureRefusal } from './backpressure-refusal.schema';
export type { RefusalHook, RefusalInfo, RefusalShape } from './refusal.hook';
export type { RefusalPayload } from './refusal-answer.util';
export {
  GaugeCapacityException,
  InvalidGaugeNameException,
  MAX_RUNTIME_GAUGE_NAME_LENGTH,
  type InvalidGaugeNameReason,
} from './gauge-lookup.exception';

// The framework-free core: gauges, stores, options, errors.
export type { AcquireOptions, Gauge, GaugeStats, Release } from './core/gauge.interface';
export { PressureGauge } from './core/pressure-gauge';
export type { GaugeStore } from './core/gauge-store.interface';
export { MemoryGaugeStore } from './core/memory-gauge.store';
export { DEFAULT_LIMIT, resolveGaugeOptions, type GaugeOptions } from './core/gauge-options';
export type { QueueOptions } from './core/queue-options';
export type { ResolvedGaugeOptions } from './core/resolved-gauge-options';
export type { StoreDownPolicy } from './core/store-down.policy';
export {
  GaugeAbortedError,
  GaugeConfigError,
  GaugeExhaustedError,
  GaugeUnavailableError,
  type ExhaustionReason,
} from './core/gauge.errors';
export {
  FixedLimit,
  type LimitPolicy,
  type LimitPolicyFactory,
  type LimitSample,
} from './core/limit-policy';
export { gradient2, type Gradient2Options } from './core/adaptive/gradient2.limit';
export { vegas, type VegasOptions } from './core/adaptive/vegas.limit';
export { aimd, type AimdOptions } from './core/adaptive/aimd.limit';
export type { AdaptiveLimitOptions } from './core/adaptive/adaptive-options';
export type { WindowOptions } from './core/adaptive/sample-window';
export type {
  GaugeEvent,
  GaugeEvents,
  GaugeListener,
  Outcome,
  RejectionReason,
  TimeoutReason,
} from './core/gauge-events';
export { classifyError, type OutcomeClassifier } from './core/outcome';
export { GaugeOverdueError } from './core/hold-watch';
export type { Work } from './core/work';
export { WorkSignal } from './work-signal.decorator';

// Who gets the slot under overload: priorities and queue disciplines.
export { Priority } from './priority.decorator';
export type { PriorityResolver } from './priority.resolver';
export {
  trustedPriorityHeader,
  type TrustedPriorityHeaderOptions,
  type TrustedRequest,
} from './priority-header.util';
export { PRIORITIES, type PriorityLevel } from './core/priority/priority.level';
export type { QueueDiscipline } from './core/queue-discipline';
export type { EventLoopOptions } from './core/pressure/loop-pressure';
export type { LoopReading, LoopSampler, LoopWatcher } from './core/pressure/event-loop.sampler';

// Per-key fairness: a gauge's slots shared between tenants, users, API keys or IPs.
export type { PartitionConfig, PartitionResolver } from './partition.resolver';
export type { PartitionOptions } from './core/partition/partition-options';
