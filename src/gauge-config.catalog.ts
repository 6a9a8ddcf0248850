import { Inject, Injectable } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import { describeValue as show, isPlainObject } from './core/config-value.util';
import { isLimitPolicyFactory } from './core/limit-policy';
import { GaugeConfigError } from './core/gauge.errors';
import type {
  BackpressureModuleOptions,
  GaugeConfig,
  UnknownGaugesPolicy,
} from './backpressure-options.interface';
import { FEATURE_GAUGES, ROOT_SOURCE } from './backpressure-core.tokens';
import { BACKPRESSURE_OPTIONS } from './backpressure.module-definition';
import type { FeatureGauges } from './module-feature-options.validation';
import {
  validateGaugeConfig,
  validateModuleOptions,
  type ValidatedGauge,
  type ValidatedModuleOptions,
} from './module-options.validation';

/** What the catalog reads of a Nest module: what it imports, provides, and its class. */
interface ScannedModule {
  readonly metatype?: unknown;
  readonly imports: ReadonlySet<ScannedModule>;
  readonly providers: ReadonlyMap<unknown, { readonly instance?: unknown }>;
}

/** Where one gauge's options came from, for the message when another place disagrees. */
interface Origin {
  readonly where: string;
  readonly given: GaugeConfig;
}

/**
 * The application's gauge configuration, merged once at bootstrap before any gauge is built: the
 * root options (`forRoot` / `forRootAsync`) and what every `forFeature()` module configures or
 * lists. A name configured in two places with different options fails the start with a
 * `GaugeConfigError` naming both places; the same options given twice are fine.
 *
 * Feature declarations are read from the application's own module container, so nothing is kept
 * between applications of one process.
 */
@Injectable()
export class GaugeCatalog {
  /** The root options, checked, with `gauges` holding every configured gauge of the app. */
  readonly options: ValidatedModuleOptions;
  /** Every name configured in `gauges` or listed by a `forFeature()`. */
  readonly declared: ReadonlySet<string>;
  /** What to do with a name used but declared nowhere (the option, or its default). */
  readonly unknownGauges: UnknownGaugesPolicy;

  constructor(
    @Inject(BACKPRESSURE_OPTIONS) options: BackpressureModuleOptions,
    @Inject(ROOT_SOURCE) source: string,
    modules: ModulesContainer,
  ) {
    const root = validateModuleOptions(options);
    const gauges = new Map<string, ValidatedGauge>(root.gauges);
    const origins = new Map<string, Origin>();
    // The same entries `validateModuleOptions` checked (each a valid GaugeConfig by now).
    for (const [name, given] of Object.entries(options.gauges ?? {})) {
      origins.set(name, { where: `BackpressureModule.${source}()`, given });
    }
    const declared = new Set(root.gauges.keys());
    for (const { feature, where } of featuresIn(modules.values() as Iterable<ScannedModule>)) {
      for (const name of feature.names) declared.add(name);
      for (const [name, given] of Object.entries(feature.configured)) {
        const gauge = validateGaugeConfig(name, given, root.defaultLimit);
        const earlier = origins.get(name);
        if (earlier === undefined) {
          gauges.set(name, gauge);
          origins.set(name, { where, given });
        } else if (!sameGauge(gauges.get(name)!, gauge)) {
          throw new GaugeConfigError(
            `Gauge "${name}" is configured twice with different options: ` +
              `${describe(earlier.given)} in ${earlier.where}, and ${describe(given)} in ${where}. ` +
              'Configure it in one place (the others can list it by name: forFeature({ gauges: ["' +
              name +
              '"] }))',
          );
        }
      }
    }
    this.options = { ...root, gauges };
    this.declared = declared;
    this.unknownGauges = root.unknownGauges ?? (declared.size > 0 ? 'warn' : 'ignore');
  }
}

/** Every `forFeature()` module of the app, with the modules that import it (for messages). */
function* featuresIn(
  modules: Iterable<ScannedModule>,
): Iterable<{ feature: FeatureGauges; where: string }> {
  const all = [...modules];
  for (const module of all) {
    const feature = module.providers.get(FEATURE_GAUGES)?.instance as FeatureGauges | undefined;
    if (feature === undefined) continue;
    const importers = all
      .filter((other) => other.imports.has(module))
      .map((other) => (other.metatype as { name?: string } | undefined)?.name ?? 'a module');
    const where = `BackpressureModule.forFeature() in ${importers.join(', ') || 'a module'}`;
    yield { feature, where };
  }
}

function sameGauge(a: ValidatedGauge, b: ValidatedGauge): boolean {
  return (
    a.store === b.store &&
    a.priority === b.priority &&
    a.onRefusal === b.onRefusal &&
    a.partition === b.partition &&
    fingerprint(a.options) === fingerprint(b.options)
  );
}

/** Numbers the functions and non-plain objects seen, so a fingerprint can tell them apart. */
const identities = new WeakMap<object, number>();
let identified = 0;

/**
 * Resolved options as text that tells two gauges apart: data as JSON, a function or an instance
 * (a `classify`, a sampler) by identity — JSON alone drops functions, so two gauges differing
 * only there were taken as the same — and a limit policy factory by its policy and options.
 */
function fingerprint(options: object): string {
  const identity = (value: object) => {
    let id = identities.get(value);
    if (id === undefined) identities.set(value, (id = ++identified));
    return id;
  };
  return JSON.stringify(options, (_key, value: unknown) => {
    if (typeof value === 'function') return `[function #${identity(value)}]`;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
    if (isLimitPolicyFactory(value)) {
      return 'options' in value
        ? { policy: value.policy, options: value.options }
        : `[${value.policy} #${identity(value)}]`;
    }
    return isPlainObject(value) ? value : `[object #${identity(value)}]`;
  });
}

/** A gauge's options as given, its store (an instance, often big) only mentioned. */
function describe(config: GaugeConfig): string {
  const { store, ...options } = config;
  return store === undefined ? show(options) : `${show(options)} with its own store`;
}
