export * from './core';
export * from './backpressure-options.interface';
export { getGaugeToken, LIMITED_GAUGE } from './backpressure.constants';
export * from './backpressure.exception';
export { BackpressureInterceptor } from './backpressure.interceptor';
export { BackpressureModule } from './backpressure.module';
export { BACKPRESSURE_OPTIONS } from './backpressure.module-definition';
export type { RefusalPayload } from './context-errors';
export { GaugeErrorFilter } from './gauge-error.filter';
export { GaugeRegistry } from './gauge.registry';
export { InjectGauge } from './inject-gauge.decorator';
export { Limited } from './limited.decorator';
export {
  GaugeCapacityException,
  InvalidGaugeNameException,
  MAX_RUNTIME_GAUGE_NAME_LENGTH,
  type InvalidGaugeNameReason,
} from './gauge-lookup.exception';
export { DEFAULT_MAX_DYNAMIC_GAUGES } from './module-options.validation';
export { WorkSignal } from './work-signal.decorator';
