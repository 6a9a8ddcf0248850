export * from './gauge.errors';
export * from './gauge.interface';
export * from './gauge-options';
export * from './pressure-gauge';
export * from './wait-queue';
export * from './wait-list';
export * from './gauge-store.interface';
export * from './redis';
