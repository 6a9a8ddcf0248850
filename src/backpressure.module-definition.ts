import { ConfigurableModuleBuilder, type ConfigurableModuleOptionsFactory } from '@nestjs/common';
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
 * Builds `forRoot` / `forRootAsync` (useFactory, useClass, useExisting) the way Nest's own
 * packages do. `BackpressureModule` takes the providers it makes and assembles the module itself
 * (see `backpressure-core.module.ts`), so the definition is returned untouched here.
 */
export const {
  ConfigurableModuleClass: ConfigurableBackpressureModule,
  MODULE_OPTIONS_TOKEN: BACKPRESSURE_OPTIONS,
  OPTIONS_TYPE: BACKPRESSURE_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: BACKPRESSURE_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<BackpressureModuleOptions>()
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createBackpressureOptions')
  .setExtras<BackpressureModuleExtras>(
    { isGlobal: true, errorFilter: true },
    (definition) => definition,
  )
  .build();

/** What `forRoot()` takes as an object: the module's options plus `isGlobal` / `errorFilter`. */
export type BackpressureModuleRootOptions = typeof BACKPRESSURE_OPTIONS_TYPE;

/**
 * What `forRootAsync()` takes: `useFactory` (with `inject`, `imports`), `useClass` or
 * `useExisting`, plus `isGlobal` / `errorFilter`.
 */
export type BackpressureModuleAsyncOptions = typeof BACKPRESSURE_ASYNC_OPTIONS_TYPE;

/** A class for `forRootAsync({ useClass })` / `useExisting`: `createBackpressureOptions()`. */
export type BackpressureOptionsFactory = ConfigurableModuleOptionsFactory<
  BackpressureModuleOptions,
  'createBackpressureOptions'
>;
