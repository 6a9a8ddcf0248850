import { describeValue as show, isPlainObject } from './core/config-value.util';
import { GaugeConfigError } from './core/gauge.errors';
import {
  assertDefaultLimit,
  assertGaugeName,
  DEFAULT_LIMIT,
  GAUGE_OPTION_KEYS,
  resolveGaugeOptions,
} from './core/gauge-options';
import type { ResolvedGaugeOptions } from './core/resolved-gauge-options';
import type { GaugeStore } from './core/gauge-store.interface';
import type { GaugeConfig, UnknownGaugesPolicy } from './backpressure-options.interface';
import { splitPartitionOption, type PartitionResolver } from './partition.resolver';
import { assertPriorityResolver, type PriorityResolver } from './priority.resolver';
import { assertRefusalHook, type RefusalHook } from './refusal.hook';

/** Gauges created at run time (names first seen after bootstrap) kept at most, by default. */
export const DEFAULT_MAX_DYNAMIC_GAUGES = 1000;

/** One configured gauge, checked: where it counts (undefined: the module's store) and how. */
export interface ValidatedGauge {
  readonly store: GaugeStore | undefined;
  readonly options: ResolvedGaugeOptions;
  /** The gauge's `priority` resolver; undefined: every call is `normal` unless its route says. */
  readonly priority?: PriorityResolver | undefined;
  /** The gauge's own `onRefusal`; undefined: the module's, if any. */
  readonly onRefusal?: RefusalHook | undefined;
  /** The gauge's partition key resolver; undefined: calls carry no key. */
  readonly partition?: PartitionResolver | undefined;
}

/** The module's options, checked and with defaults: what the registry is built from. */
export interface ValidatedModuleOptions {
  readonly defaultLimit: number;
  /** Undefined: in memory. */
  readonly store: GaugeStore | undefined;
  readonly maxDynamicGauges: number;
  readonly gauges: ReadonlyMap<string, ValidatedGauge>;
  /** As given; undefined: decided from whether anything is configured (see `GaugeCatalog`). */
  readonly unknownGauges: UnknownGaugesPolicy | undefined;
  /** The module's `onRefusal`, for gauges without their own. */
  readonly onRefusal?: RefusalHook | undefined;
  /** Whether `@Limited` routes document their refusals for `@nestjs/swagger` (default true). */
  readonly openApi: boolean;
}

/** Options `forRoot()` / `forRootAsync()` take for the module definition itself, not the gauges. */
export const MODULE_EXTRAS = ['isGlobal', 'errorFilter'] as const;

/** The values of option `unknownGauges`. */
export const UNKNOWN_GAUGES_POLICIES: readonly UnknownGaugesPolicy[] = ['warn', 'error', 'ignore'];

const WHERE = 'BackpressureModule';
const MODULE_KEYS = [
  'defaultLimit',
  'gauges',
  'store',
  'maxDynamicGauges',
  'unknownGauges',
  'onRefusal',
  'openApi',
];
const GAUGE_CONFIG_KEYS = [...GAUGE_OPTION_KEYS, 'store', 'priority', 'onRefusal'];
const SHAPE = `{ ${MODULE_KEYS.map((key) => `${key}?`).join(', ')} }`;

/**
 * Checks what `forRoot()` was given — nothing, a default limit, or an options object that may
 * carry Nest's `isGlobal` extra — so a mistake fails where the module is declared.
 */
export function validateForRootOptions(value: unknown): ValidatedModuleOptions {
  if (value === undefined) return validateModuleOptions({});
  if (typeof value === 'number') {
    assertDefaultLimit(value);
    return validateModuleOptions({ defaultLimit: value });
  }
  if (!isPlainObject(value)) {
    throw new GaugeConfigError(
      `${WHERE}.forRoot() takes a default limit (a number) or an options object ${SHAPE}, got ${show(value)}`,
    );
  }
  const { isGlobal, errorFilter, ...options } = value;
  assertExtras({ isGlobal, errorFilter }, WHERE);
  return validateModuleOptions(options, `${WHERE}.forRoot(): the options`, [...MODULE_EXTRAS]);
}

/** Checks the module-definition extras (`isGlobal`, `errorFilter`): booleans when given. */
export function assertExtras(extras: Record<string, unknown>, where: string): void {
  for (const key of MODULE_EXTRAS) {
    const value = extras[key];
    if (value !== undefined && typeof value !== 'boolean') {
      throw new GaugeConfigError(`${where}: option "${key}" must be a boolean, got ${show(value)}`);
    }
  }
}

/**
 * Checks the module's whole options object in one place: every key known, every value of the
 * right type, every configured gauge resolvable. Throws `GaugeConfigError` naming the option and
 * showing the value given, so a typo or a bad environment variable fails the bootstrap instead of
 * booting an app whose every request is a 500.
 *
 * @param source what produced `value`, for the message when it is not an object at all
 * @param extraKeys keys the caller already took out (listed as known in messages)
 */
export function validateModuleOptions(
  value: unknown,
  source = `${WHERE}: the options`,
  extraKeys: readonly string[] = [],
): ValidatedModuleOptions {
  if (!isPlainObject(value)) {
    throw new GaugeConfigError(`${source} must be an options object ${SHAPE}, got ${show(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (MODULE_KEYS.includes(key)) continue;
    if ((MODULE_EXTRAS as readonly string[]).includes(key)) {
      throw new GaugeConfigError(
        `${WHERE}: option "${key}" (got ${show(value[key])}) is not a gauge option: ` +
          `pass it to forRoot({ ${key} }) or forRootAsync({ ${key}, useFactory }) itself`,
      );
    }
    const known = [...MODULE_KEYS, ...extraKeys].join(', ');
    throw new GaugeConfigError(`${WHERE}: unknown option "${key}" (known: ${known})`);
  }
  const defaultLimit = value.defaultLimit === undefined ? DEFAULT_LIMIT : value.defaultLimit;
  assertDefaultLimit(defaultLimit);
  const { store, maxDynamicGauges = DEFAULT_MAX_DYNAMIC_GAUGES } = value;
  if (store !== undefined) assertGaugeStore(store, `${WHERE}: option "store"`);
  if (
    typeof maxDynamicGauges !== 'number' ||
    !Number.isSafeInteger(maxDynamicGauges) ||
    maxDynamicGauges < 0
  ) {
    throw new GaugeConfigError(
      `${WHERE}: option "maxDynamicGauges" must be an integer from 0 to Number.MAX_SAFE_INTEGER, got ${show(maxDynamicGauges)}`,
    );
  }
  const { unknownGauges } = value;
  if (
    unknownGauges !== undefined &&
    !UNKNOWN_GAUGES_POLICIES.includes(unknownGauges as UnknownGaugesPolicy)
  ) {
    throw new GaugeConfigError(
      `${WHERE}: option "unknownGauges" must be one of ${UNKNOWN_GAUGES_POLICIES.map((p) => `'${p}'`).join(', ')}, got ${show(unknownGauges)}`,
    );
  }
  const { onRefusal } = value;
  if (onRefusal !== undefined) assertRefusalHook(WHERE, onRefusal);
  const { openApi = true } = value;
  if (typeof openApi !== 'boolean') {
    throw new GaugeConfigError(
      `${WHERE}: option "openApi" must be a boolean, got ${show(openApi)}`,
    );
  }
  const gauges = validateGauges(value.gauges, defaultLimit, WHERE);
  return {
    defaultLimit,
    store,
    maxDynamicGauges,
    gauges,
    unknownGauges: unknownGauges as UnknownGaugesPolicy | undefined,
    openApi,
    ...(onRefusal === undefined ? {} : { onRefusal }),
  };
}

/**
 * Checks option `gauges` (of `forRoot` or a `forFeature`): an object of gauge options by name,
 * each resolved with `defaultLimit`.
 *
 * @param where who was given it, for messages (`BackpressureModule`, `...forFeature()`)
 */
export function validateGauges(
  value: unknown,
  defaultLimit: number,
  where: string,
): Map<string, ValidatedGauge> {
  const gauges = new Map<string, ValidatedGauge>();
  if (value === undefined) return gauges;
  if (!isPlainObject(value)) {
    throw new GaugeConfigError(
      `${where}: option "gauges" must be an object of gauge options by name, such as { api: { limit: 5 } }, got ${show(value)}`,
    );
  }
  for (const [name, config] of Object.entries(value)) {
    assertGaugeName(name, `${where}: option "gauges": a gauge name`);
    gauges.set(name, validateGaugeConfig(name, config, defaultLimit));
  }
  return gauges;
}

/** Checks one gauge's `GaugeConfig` (options plus `store`) and resolves it with `defaultLimit`. */
export function validateGaugeConfig(
  name: string,
  config: unknown,
  defaultLimit: number,
): ValidatedGauge {
  const where = `Gauge "${name}"`;
  if (!isPlainObject(config)) {
    throw new GaugeConfigError(
      `${where}: options must be an object such as { limit: 5 }, got ${show(config)}`,
    );
  }
  for (const key of Object.keys(config)) {
    if (!GAUGE_CONFIG_KEYS.includes(key)) {
      throw new GaugeConfigError(
        `${where}: unknown option "${key}" (known: ${GAUGE_CONFIG_KEYS.join(', ')})`,
      );
    }
  }
  const { store, priority, onRefusal, partition, ...options } = config as GaugeConfig;
  if (store !== undefined) assertGaugeStore(store, `${where}: option "store"`);
  if (priority !== undefined) assertPriorityResolver(where, priority);
  if (onRefusal !== undefined) assertRefusalHook(where, onRefusal);
  const split = partition === undefined ? undefined : splitPartitionOption(where, partition);
  const core = split === undefined ? options : { ...options, partition: split.options };
  return {
    store,
    options: resolveGaugeOptions(name, core, defaultLimit),
    ...(priority === undefined ? {} : { priority }),
    ...(onRefusal === undefined ? {} : { onRefusal }),
    ...(split?.key === undefined ? {} : { partition: split.key }),
  };
}

/**
 * A store is anything with `createGauge()`: a URL string, an options object or the store class
 * itself (instead of an instance) would boot and then fail every request.
 */
function assertGaugeStore(value: unknown, where: string): asserts value is GaugeStore {
  const store = value as { createGauge?: unknown; close?: unknown } | null;
  const isObject = typeof value === 'object' && value !== null;
  if (isObject && typeof store?.createGauge === 'function') {
    if (store.close === undefined || typeof store.close === 'function') return;
    throw new GaugeConfigError(
      `${where}: the store's "close" must be a method, got ${show(store.close)}`,
    );
  }
  const hint =
    typeof value === 'string'
      ? '; for Redis pass new RedisGaugeStore({ redis: url }), not the URL'
      : typeof value === 'function'
        ? '; pass an instance (new ...()), not the class'
        : '';
  throw new GaugeConfigError(
    `${where} must be a GaugeStore (an object with a createGauge() method${hint}), got ${show(value)}`,
  );
}
