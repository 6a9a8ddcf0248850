import {
  ConfigurableModuleBuilder,
  type ConfigurableModuleAsyncOptions,
  type ConfigurableModuleCls,
  type ConfigurableModuleOptionsFactory,
} from '@nestjs/common';
import type { BackpressureModuleOptions } from './backpressure-options.interface';

/**
 * Options of the module definition itself, given to `forRoot` / `forRootAsync` beside the gauges'
 * options (not from a factory: they shape the module before any factory runs).
 */
export interface BackpressureModuleExtras {
  /** `false`: `GaugeRegistry`, the interceptor and the tokens are visible only where imported. */
  isGlobal: boolean;
  /** `false`: do not register `GaugeErrorFilter` globally (answer gauge errors yourself). */
  errorFilter: boolean;
}

/**
 * `isGlobal` / `errorFilter` as `forRoot` / `forRootAsync` take them: each may be left out or
 * given as `undefined` (the default then applies).
 */
export type OptionalModuleExtras = {
  [K in keyof BackpressureModuleExtras]?: BackpressureModuleExtras[K] | undefined;
};

/** What `forRoot()` takes as an object: the module's options plus `isGlobal` / `errorFilter`. */
export type BackpressureModuleRootOptions = BackpressureModuleOptions & OptionalModuleExtras;

/**
 * What `forRootAsync()` takes: `useFactory` (with `inject`, `imports`), `useClass` or
 * `useExisting`, plus `isGlobal` / `errorFilter`.
 */
export type BackpressureModuleAsyncOptions = ConfigurableModuleAsyncOptions<
  BackpressureModuleOptions,
  'createBackpressureOptions'
> &
  OptionalModuleExtras;

/**
 * Builds `forRoot` / `forRootAsync` (useFactory, useClass, useExisting) the way Nest's own
 * packages do. `BackpressureModule` takes the providers it makes and assembles the module itself
 * (see `backpressure-core.module.ts`), so the definition is returned untouched here.
 */
const definition = new ConfigurableModuleBuilder<BackpressureModuleOptions>()
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createBackpressureOptions')
  .setExtras<BackpressureModuleExtras>(
    { isGlobal: true, errorFilter: true },
    (definition) => definition,
  )
  .build();

/**
 * The class `BackpressureModule` extends: Nest's `forRoot` / `forRootAsync` for the options.
 *
 * Typed with names imported from `@nestjs/common` (not inferred), so the emitted declarations
 * import them plainly instead of through `import("@nestjs/common", { with: ... })`, which older
 * TypeScript versions cannot read.
 */
export const ConfigurableBackpressureModule: ConfigurableModuleCls<
  BackpressureModuleOptions,
  'forRoot',
  'createBackpressureOptions',
  BackpressureModuleExtras
> = definition.ConfigurableModuleClass;

/**
 * DI token of the module's `BackpressureModuleOptions` as given to `forRoot()` or produced by the
 * `forRootAsync()` factory (without `isGlobal` / `errorFilter`). Exported by the module, so your
 * own providers can read the configuration: `@Inject(BACKPRESSURE_OPTIONS) options:
 * BackpressureModuleOptions`.
 */
export const BACKPRESSURE_OPTIONS: string | symbol = definition.MODULE_OPTIONS_TOKEN;

/** A class for `forRootAsync({ useClass })` / `useExisting`: `createBackpressureOptions()`. */
export type BackpressureOptionsFactory = ConfigurableModuleOptionsFactory<
  BackpressureModuleOptions,
  'createBackpressureOptions'
>;
