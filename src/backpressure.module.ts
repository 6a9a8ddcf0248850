import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import type { BackpressureModuleOptions } from './backpressure-options.interface';
import { getGaugeToken } from './backpressure.constants';
import {
  BACKPRESSURE_ASYNC_OPTIONS_TYPE,
  BACKPRESSURE_OPTIONS_TYPE,
  BACKPRESSURE_OPTIONS,
  ConfigurableBackpressureModule,
} from './backpressure.module-definition';
import { BackpressureInterceptor } from './backpressure.interceptor';
import { assertDefaultLimit } from './core/gauge-options';
import { GaugeRegistry } from './gauge.registry';
import { injectedGaugeNames } from './inject-gauge.decorator';

/**
 * Provides the application's pressure gauges (global by default). `forRoot(25)` sets the default
 * limit; `forRoot({ defaultLimit, gauges, store })` configures gauges by name; `forRootAsync` takes
 * the same from a factory, class or existing provider.
 */
@Module({
  providers: [GaugeRegistry, BackpressureInterceptor],
  exports: [GaugeRegistry, BackpressureInterceptor, BACKPRESSURE_OPTIONS],
})
export class BackpressureModule extends ConfigurableBackpressureModule {
  static override forRoot(options: number | typeof BACKPRESSURE_OPTIONS_TYPE = {}): DynamicModule {
    if (typeof options === 'number') {
      assertDefaultLimit(options);
      options = { defaultLimit: options } satisfies BackpressureModuleOptions;
    }
    return withGaugeProviders(super.forRoot(options));
  }

  static override forRootAsync(options: typeof BACKPRESSURE_ASYNC_OPTIONS_TYPE): DynamicModule {
    return withGaugeProviders(super.forRootAsync(options));
  }
}

/**
 * Adds a provider per `@InjectGauge` name. Read when Nest scans the module (not when `forRoot` is
 * called), so a service whose file loads after the root module still finds its gauge.
 */
function withGaugeProviders(module: DynamicModule): DynamicModule {
  const base = module.providers ?? [];
  const exported = module.exports ?? [];
  const gaugeProviders = (): Provider[] =>
    [...injectedGaugeNames].map((name) => ({
      provide: getGaugeToken(name),
      useFactory: (registry: GaugeRegistry) => registry.get(name),
      inject: [GaugeRegistry],
    }));
  return Object.defineProperties(module, {
    providers: { enumerable: true, configurable: true, get: () => [...base, ...gaugeProviders()] },
    exports: {
      enumerable: true,
      configurable: true,
      get: () => [...exported, ...[...injectedGaugeNames].map(getGaugeToken)],
    },
  });
}
