import type { FactoryProvider, InjectionToken, OptionalFactoryDependency } from '@nestjs/common';
import { describeValue as show, isPlainObject } from './core/config-value.util';
import { GaugeConfigError } from './core/gauge.errors';
import type { BackpressureModuleOptions } from './backpressure-options.interface';
import { BACKPRESSURE_OPTIONS } from './backpressure.module-definition';
import { assertExtras, MODULE_EXTRAS, validateModuleOptions } from './module-options.validation';

const WHERE = 'BackpressureModule.forRootAsync()';
const SOURCES = ['useFactory', 'useClass', 'useExisting'] as const;
const KNOWN = [...SOURCES, 'imports', 'inject', 'provideInjectionTokensFrom', ...MODULE_EXTRAS];
const FACTORY_METHOD = 'createBackpressureOptions';

/** What `forRootAsync()` may be given, as far as this module reads it. */
interface AsyncOptions {
  useFactory?: ((...args: never[]) => unknown) | undefined;
  useClass?: unknown;
  useExisting?: unknown;
  inject?: Array<InjectionToken | OptionalFactoryDependency> | undefined;
}

/**
 * Checks `forRootAsync()`'s own argument where the module is declared: exactly one source of
 * options, of the right type, and no unknown key. Nest's builder would otherwise take a typo
 * (`useFactroy`) for an extra and fail later with an unrelated DI error.
 */
export function assertAsyncOptions(value: unknown): void {
  if (!isPlainObject(value)) {
    throw new GaugeConfigError(
      `${WHERE} takes { useFactory, inject?, imports? } (or useClass / useExisting), got ${show(value)}`,
    );
  }
  for (const key of Object.keys(value)) {
    if (!KNOWN.includes(key)) {
      throw new GaugeConfigError(`${WHERE}: unknown option "${key}" (known: ${KNOWN.join(', ')})`);
    }
  }
  const given = SOURCES.filter((key) => value[key] !== undefined);
  if (given.length !== 1) {
    throw new GaugeConfigError(
      `${WHERE} needs exactly one of useFactory, useClass, useExisting, got ${given.length === 0 ? 'none' : given.join(' and ')}`,
    );
  }
  const [source] = given;
  if ((source === 'useFactory' || source === 'useClass') && typeof value[source] !== 'function') {
    throw new GaugeConfigError(
      `${WHERE}: option "${source}" must be a ${source === 'useClass' ? 'class' : 'function'}, got ${show(value[source])}`,
    );
  }
  if (source === 'useExisting' && value.useExisting === null) {
    throw new GaugeConfigError(`${WHERE}: option "useExisting" must be a provider token, got null`);
  }
  for (const key of ['imports', 'inject'] as const) {
    if (value[key] !== undefined && !Array.isArray(value[key])) {
      throw new GaugeConfigError(
        `${WHERE}: option "${key}" must be an array, got ${show(value[key])}`,
      );
    }
  }
  assertExtras(value, WHERE);
}

/**
 * The provider of the module's options for `forRootAsync()`: the same sources Nest's builder
 * supports, plus a check of what they produce, so a factory that returns `25`, `null` or a typo
 * fails the bootstrap with a message saying what it must return. Resolves to the value given, so
 * `@Inject(BACKPRESSURE_OPTIONS)` sees the application's own object.
 */
export function validatedOptionsProvider(options: AsyncOptions): FactoryProvider {
  const { useFactory } = options;
  if (useFactory !== undefined) {
    return {
      provide: BACKPRESSURE_OPTIONS,
      inject: options.inject ?? [],
      useFactory: async (...args: never[]) =>
        checked(await useFactory(...args), `${WHERE}: the value useFactory returned`),
    };
  }
  const token = (options.useClass ?? options.useExisting) as InjectionToken;
  const how = options.useClass !== undefined ? 'useClass' : 'useExisting';
  return {
    provide: BACKPRESSURE_OPTIONS,
    inject: [token],
    useFactory: async (factory: Record<string, unknown> | null | undefined) => {
      const method = factory?.[FACTORY_METHOD];
      const label = `${how} ${tokenName(token)}`;
      if (typeof method !== 'function') {
        throw new GaugeConfigError(`${WHERE}: ${label} has no ${FACTORY_METHOD}() method`);
      }
      const value: unknown = await (method as () => unknown).call(factory);
      return checked(value, `${WHERE}: the value ${label}.${FACTORY_METHOD}() returned`);
    },
  };
}

function checked(value: unknown, source: string): BackpressureModuleOptions {
  validateModuleOptions(value, source);
  return value as BackpressureModuleOptions;
}

function tokenName(token: InjectionToken): string {
  if (typeof token === 'function') return token.name || 'an anonymous class';
  return String(token);
}
