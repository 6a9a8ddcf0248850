import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { getGaugeToken } from './backpressure.constants';
import {
  BACKPRESSURE_ASYNC_OPTIONS_TYPE,
  BACKPRESSURE_OPTIONS_TYPE,
  BACKPRESSURE_OPTIONS,
  ConfigurableBackpressureModule,
} from './backpressure.module-definition';
import { BackpressureInterceptor } from './backpressure.interceptor';
import { GaugeRegistry } from './gauge.registry';
import { injectedGaugeNames } from './inject-gauge.decorator';
import { assertAsyncOptions, validatedOptionsProvider } from './module-async-options.validation';
import { validateForRootOptions } from './module-options.validation';
import { RouteGaugesExplorer } from './route-gauges.explorer';

/**
 * Provides the application's pressure gauges (global by default). `forRoot(25)` sets the default
 * limit; `forRoot({ defaultLimit, gauges, store, maxDynamicGauges })` configures gauges by name;
 * `forRootAsync` takes the same from a factory, class or existing provider.
 *
 * Options are checked where they are declared (`forRoot`) or produced (the async factory), and
 * every gauge the app names — configured, `@Limited`, `@InjectGauge` — is built while the app
 * starts, so a bad option or a store that cannot work fails the bootstrap with a
 * `GaugeConfigError`, never a request.
 */
@Module({
  providers: [GaugeRegistry, BackpressureInterceptor, RouteGaugesExplorer],
  exports: [GaugeRegistry, BackpressureInterceptor, BACKPRESSURE_OPTIONS],
})
export class BackpressureModule extends ConfigurableBackpressureModule {
  static override forRoot(options?: number | typeof BACKPRESSURE_OPTIONS_TYPE): DynamicModule {
    validateForRootOptions(options);
    if (typeof options === 'number') options = { defaultLimit: options };
    const { isGlobal, ...rest } = options ?? {};
    // An explicit `isGlobal: undefined` would make Nest's builder read it as false.
    return withGaugeProviders(super.forRoot(isGlobal === undefined ? rest : { ...rest, isGlobal }));
  }

  static override forRootAsync(options: typeof BACKPRESSURE_ASYNC_OPTIONS_TYPE): DynamicModule {
    assertAsyncOptions(options);
    const { isGlobal, ...rest } = options;
    const module = super.forRootAsync(isGlobal === undefined ? rest : options);
    const providers = (module.providers ?? []).map((provider) =>
      isOptionsProvider(provider) ? validatedOptionsProvider(options) : provider,
    );
    return withGaugeProviders({ ...module, providers });
  }
}

function isOptionsProvider(provider: Provider): boolean {
  return typeof provider === 'object' && provider.provide === BACKPRESSURE_OPTIONS;
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
