import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { getGaugeToken } from './backpressure.constants';
import { GAUGE_REGISTRY_REF, MODULE_OPTIONS_REF } from './backpressure-core.tokens';
import {
  coreModule,
  featureModule,
  gaugeProvider,
  type RootDefinition,
} from './backpressure-core.module';
import {
  BACKPRESSURE_OPTIONS,
  ConfigurableBackpressureModule,
  type BackpressureModuleAsyncOptions,
  type OptionalModuleExtras,
  type BackpressureModuleRootOptions,
} from './backpressure.module-definition';
import { BackpressureInterceptor } from './backpressure.interceptor';
import type { BackpressureFeatureOptions } from './feature-gauges.interface';
import { GaugeRegistry } from './gauge.registry';
import { injectedGaugeNames } from './inject-gauge.decorator';
import { assertAsyncOptions, validatedOptionsProvider } from './module-async-options.validation';
import { validateFeatureOptions } from './module-feature-options.validation';
import { validateForRootOptions } from './module-options.validation';

/**
 * Provides the application's pressure gauges. `forRoot(25)` sets the default limit;
 * `forRoot({ defaultLimit, gauges, store, maxDynamicGauges, unknownGauges })` configures gauges by
 * name; `forRootAsync` takes the same from a factory, class or existing provider. The root is
 * global by default (`isGlobal: false` to import it where needed). `forFeature({ gauges })` lets a
 * feature module configure its own gauges and inject them, in the application's one registry.
 *
 * Options are checked where they are declared (`forRoot`, `forFeature`) or produced (the async
 * factory), and every gauge the app names — configured, `@Limited`, `@InjectGauge` — is built
 * while the app starts, so a bad option or a store that cannot work fails the bootstrap with a
 * `GaugeConfigError`, never a request. `GaugeErrorFilter` is registered globally (unless
 * `errorFilter: false`), so `gauge.process()` refused in a service answers 429 / 503, not 500.
 */
@Module({})
export class BackpressureModule extends ConfigurableBackpressureModule {
  /**
   * The application's gauges, configured here: `forRoot()` (every gauge gets the default limit,
   * 10), `forRoot(25)` (every gauge gets 25) or `forRoot({ defaultLimit, gauges, store,
   * maxDynamicGauges, unknownGauges, isGlobal, errorFilter })`. Call it once, in the root module.
   * The options are checked here: a bad one throws a `GaugeConfigError` naming it.
   *
   * @example
   * BackpressureModule.forRoot({
   *   defaultLimit: 50,
   *   gauges: { pdf: { limit: 4, queue: { size: 20, timeoutMs: 2_000 } } },
   * })
   */
  static override forRoot(options?: number | BackpressureModuleRootOptions): DynamicModule {
    validateForRootOptions(options);
    if (typeof options === 'number') options = { defaultLimit: options };
    const { isGlobal, errorFilter, ...rest } = options ?? {};
    const definition = super.forRoot(rest);
    return rootModule(
      definition,
      'forRoot',
      { isGlobal, errorFilter },
      Object.keys(rest.gauges ?? {}),
    );
  }

  /**
   * `forRoot()` with the options from a provider: exactly one of `useFactory` (with `inject` and
   * `imports`), `useClass` or `useExisting` (a `BackpressureOptionsFactory`). `isGlobal` and
   * `errorFilter` are given here, not by the factory. What the factory produces is checked while
   * the app starts, so a bad option fails the bootstrap, never a request.
   *
   * @example
   * BackpressureModule.forRootAsync({
   *   imports: [ConfigModule],
   *   inject: [ConfigService],
   *   useFactory: (config: ConfigService) => ({
   *     defaultLimit: Number(config.get('MAX_CONCURRENT') ?? 10),
   *   }),
   * })
   */
  static override forRootAsync(options: BackpressureModuleAsyncOptions): DynamicModule {
    assertAsyncOptions(options);
    const { isGlobal, errorFilter, ...rest } = options;
    const definition = super.forRootAsync(rest);
    const providers = (definition.providers ?? []).map((provider) =>
      isOptionsProvider(provider) ? validatedOptionsProvider(options) : provider,
    );
    return rootModule({ ...definition, providers }, 'forRootAsync', { isGlobal, errorFilter }, []);
  }

  /**
   * A feature module's gauges: `forFeature({ gauges: { pdf: { limit: 4 } } })` configures `pdf`,
   * `forFeature({ gauges: ['reports'] })` only names gauges configured elsewhere. The importing
   * module can inject each one (`@InjectGauge`) and `GaugeRegistry`, also when the root is not
   * global. Every feature's gauges join the application's one registry at bootstrap; a name
   * configured in two places with different options fails the start, naming both.
   */
  static forFeature(options?: BackpressureFeatureOptions): DynamicModule {
    return featureModule(BackpressureModule, validateFeatureOptions(options));
  }
}

function isOptionsProvider(provider: Provider): boolean {
  return typeof provider === 'object' && provider.provide === BACKPRESSURE_OPTIONS;
}

/**
 * The root module: the hidden global core (registry, options, explorer, filter) and, visible as
 * `isGlobal` says, `GaugeRegistry`, `BACKPRESSURE_OPTIONS`, the interceptor and the gauges' tokens.
 *
 * Tokens: one per gauge configured in `forRoot`'s `gauges`, and a lazy one per other name used
 * with `@InjectGauge` in the process. The latter are read when Nest scans the module (not when
 * `forRoot` is called), so a service whose file loads after the root module still finds its
 * gauge; being transient, only a class that injects one builds its gauge, so an application never
 * builds another's injected gauges.
 */
function rootModule(
  definition: RootDefinition,
  source: 'forRoot' | 'forRootAsync',
  extras: OptionalModuleExtras,
  configured: readonly string[],
): DynamicModule {
  const providers: Provider[] = [
    { provide: GaugeRegistry, useExisting: GAUGE_REGISTRY_REF },
    { provide: BACKPRESSURE_OPTIONS, useExisting: MODULE_OPTIONS_REF },
    BackpressureInterceptor,
    ...configured.map((name) => gaugeProvider(name)),
  ];
  const exported = [GaugeRegistry, BackpressureInterceptor, BACKPRESSURE_OPTIONS];
  const lazyNames = () => [...injectedGaugeNames].filter((name) => !configured.includes(name));
  const module: DynamicModule = {
    module: BackpressureModule,
    global: extras.isGlobal ?? true,
    imports: [coreModule(definition, source, extras.errorFilter ?? true)],
  };
  return Object.defineProperties(module, {
    providers: {
      enumerable: true,
      configurable: true,
      get: () => [...providers, ...lazyNames().map((name) => gaugeProvider(name, true))],
    },
    exports: {
      enumerable: true,
      configurable: true,
      get: () => [...exported, ...[...configured, ...lazyNames()].map(getGaugeToken)],
    },
  });
}
