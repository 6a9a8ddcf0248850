import {
  Module,
  Scope,
  type DynamicModule,
  type FactoryProvider,
  type ModuleMetadata,
  type Provider,
} from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { getGaugeToken } from './backpressure.constants';
import {
  FEATURE_GAUGES,
  GAUGE_REGISTRY_REF,
  MODULE_OPTIONS_REF,
  ROOT_SOURCE,
} from './backpressure-core.tokens';
import { BACKPRESSURE_OPTIONS } from './backpressure.module-definition';
import { GaugeCatalog } from './gauge-config.catalog';
import { GaugeErrorFilter } from './gauge-error.filter';
import { GaugeRegistry } from './gauge.registry';
import type { FeatureGauges } from './module-feature-options.validation';
import { RouteGaugesExplorer } from './route-gauges.explorer';

/**
 * The hidden, always-global part of `BackpressureModule.forRoot()` / `forRootAsync()`: the one
 * `GaugeRegistry` of the application, its options, the bootstrap explorer and (unless turned off)
 * the global `GaugeErrorFilter`. It exports only internal tokens, so whether the application sees
 * `GaugeRegistry` everywhere is still decided by the root's `isGlobal`; `forFeature()` modules
 * reach the registry through it even when the root is not global (as `@nestjs/config`'s and
 * `@nestjs/typeorm`'s feature modules reach their core).
 */
@Module({})
export class BackpressureCoreModule {}

/** The providers and imports Nest's module builder made for the root's options. */
export type RootDefinition = Pick<ModuleMetadata, 'imports' | 'providers'>;

/** Builds the core module around the root's options providers. */
export function coreModule(
  definition: RootDefinition,
  source: 'forRoot' | 'forRootAsync',
  errorFilter: boolean,
): DynamicModule {
  const filter: Provider[] = errorFilter
    ? [{ provide: APP_FILTER, useClass: GaugeErrorFilter }]
    : [];
  return {
    module: BackpressureCoreModule,
    global: true,
    imports: definition.imports ?? [],
    providers: [
      ...(definition.providers ?? []),
      { provide: ROOT_SOURCE, useValue: source },
      GaugeCatalog,
      GaugeRegistry,
      RouteGaugesExplorer,
      { provide: GAUGE_REGISTRY_REF, useExisting: GaugeRegistry },
      { provide: MODULE_OPTIONS_REF, useExisting: BACKPRESSURE_OPTIONS },
      ...filter,
    ],
    exports: [GAUGE_REGISTRY_REF, MODULE_OPTIONS_REF],
  };
}

/**
 * The provider of gauge `name`'s injection token: the registry's gauge, so an injected gauge is
 * the very object `@Limited(name)` uses.
 *
 * @param lazy transient: built only for a class that injects it, so a name declared for the whole
 *   process (any `@InjectGauge` seen) creates no gauge in an application that does not use it
 */
export function gaugeProvider(name: string, lazy = false): FactoryProvider {
  return {
    provide: getGaugeToken(name),
    useFactory: (registry: GaugeRegistry) => registry.get(name),
    inject: [GAUGE_REGISTRY_REF],
    ...(lazy ? { scope: Scope.TRANSIENT } : {}),
  };
}

/** The module `forFeature()` returns: its declaration, its gauges' tokens and `GaugeRegistry`. */
export function featureModule(
  module: DynamicModule['module'],
  feature: FeatureGauges,
): DynamicModule {
  const gauges = feature.names.map((name) => gaugeProvider(name));
  return {
    module,
    providers: [
      { provide: FEATURE_GAUGES, useValue: feature },
      { provide: GaugeRegistry, useExisting: GAUGE_REGISTRY_REF },
      ...gauges,
    ],
    exports: [GaugeRegistry, ...gauges.map((provider) => provider.provide)],
  };
}
