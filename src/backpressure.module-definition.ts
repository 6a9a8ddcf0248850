import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { BackpressureModuleOptions } from './backpressure-options.interface';

/** Builds `forRoot` / `forRootAsync` (useFactory, useClass, useExisting) the way Nest's own packages do. */
export const {
  ConfigurableModuleClass: ConfigurableBackpressureModule,
  MODULE_OPTIONS_TOKEN: BACKPRESSURE_OPTIONS,
  OPTIONS_TYPE: BACKPRESSURE_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: BACKPRESSURE_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<BackpressureModuleOptions>()
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createBackpressureOptions')
  .setExtras({ isGlobal: true }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
  }))
  .build();
