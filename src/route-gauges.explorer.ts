import { Injectable, Logger, Optional } from '@nestjs/common';
import { PROPERTY_DEPS_METADATA, SELF_DECLARED_DEPS_METADATA } from '@nestjs/common/constants';
import { ModulesContainer, Reflector } from '@nestjs/core';
import { GaugeConfigError } from './core/gauge.errors';
import { describeThrown } from './core/gauge-events';
import { getGaugeToken, LIMITED_GAUGE } from './backpressure.constants';
import { GaugeCatalog } from './gauge-config.catalog';
import { GaugeRegistry } from './gauge.registry';
import { UNLIMITED } from './unlimited.decorator';
import { linkHttpRoutes } from './limited-run.link';
import { documentRefusals } from './refusal-responses.openapi';

/** What the explorer reads of a Nest module: its classes, as Nest wraps them. */
interface ScannedModule {
  readonly controllers: ReadonlyMap<unknown, ClassWrapper>;
  readonly providers: ReadonlyMap<unknown, ClassWrapper>;
  readonly injectables?: ReadonlyMap<unknown, ClassWrapper>;
}

/** The part of Nest's InstanceWrapper used here: the class, and `inject` set for factories. */
interface ClassWrapper {
  readonly metatype?: unknown;
  readonly inject?: unknown;
  readonly token?: unknown;
}

type Class = abstract new (...args: never[]) => unknown;

/** What every gauge token starts with; the rest is the gauge's name. */
const TOKEN_PREFIX = getGaugeToken('');

/**
 * Builds, while the app starts, every gauge a `@Limited` names or a class injects, so a gauge's
 * store is checked before the first request: a store whose driver is missing (ioredis not
 * installed) or that cannot build the gauge fails the bootstrap with a `GaugeConfigError` naming
 * the gauge and where it is used, instead of a 500 on the first request. It also pins those
 * gauges: the interceptor and the injected services keep them, so they must never be evicted as
 * dynamic.
 *
 * It reads the metadata of every controller (HTTP routes, microservice `@MessagePattern` /
 * `@EventPattern` handlers) and every class provider (WebSocket gateways' `@SubscribeMessage`
 * handlers, services with `@InjectGauge`) of this application, from the class itself, so it works
 * at construction, before any lifecycle hook: the failure happens in `NestFactory.create()` /
 * `compile()`. Methods exempted with `@Unlimited()` are skipped.
 *
 * Then it reports the names used but configured nowhere (option `unknownGauges`): a warning, or
 * with `'error'` a `GaugeConfigError` that fails the start. Last, it documents each limited HTTP
 * route's 429 / 503 for `@nestjs/swagger` (`refusal-responses.openapi`).
 */
@Injectable()
export class RouteGaugesExplorer {
  private readonly logger = new Logger('Backpressure');

  constructor(
    registry: GaugeRegistry,
    modules: ModulesContainer,
    reflector: Reflector,
    @Optional() catalog?: GaugeCatalog,
  ) {
    const scanned = [...(modules.values() as Iterable<ScannedModule>)];
    const controllers = scanned.flatMap((module) =>
      [...module.controllers.values()].map((c) => c.metatype),
    );
    // Before Nest reads the routes' argument metadata (at init): see `limited-run.link`.
    linkHttpRoutes(controllers);
    const uses = gaugeUses(scanned, reflector);
    if (catalog) this.reportUnknown(uses, catalog);
    for (const [name, where] of uses) {
      try {
        registry.get(name as string);
      } catch (error) {
        const why = error instanceof Error ? error.message : describeThrown(error);
        throw new GaugeConfigError(`${where}: ${why}`, { cause: error });
      }
    }
    // Before `SwaggerModule.createDocument()`, which apps call after `NestFactory.create()`.
    // With `openApi: false`, nothing (and what an earlier app of this process wrote is taken back).
    const documented = catalog?.options.openApi ?? true;
    documentRefusals(controllers, documented ? (name) => registry.get(name) : () => undefined);
  }

  private reportUnknown(uses: ReadonlyMap<unknown, string>, catalog: GaugeCatalog): void {
    if (catalog.unknownGauges === 'ignore') return;
    const unknown = [...uses].filter(
      ([name]) => typeof name === 'string' && !catalog.declared.has(name),
    );
    if (unknown.length === 0) return;
    const hint = `configure it in forRoot's "gauges" or list it in a BackpressureModule.forFeature()`;
    if (catalog.unknownGauges === 'error') {
      const list = unknown.map(([name, where]) => `"${String(name)}" (${where})`).join(', ');
      throw new GaugeConfigError(
        `Gauges used but configured nowhere (option unknownGauges: 'error'): ${list}. For each, ${hint}.`,
      );
    }
    const { defaultLimit } = catalog.options;
    for (const [name, where] of unknown) {
      this.logger.warn(
        `Gauge "${String(name)}" is used by ${where} but configured nowhere, so it gets the ` +
          `defaults (limit ${defaultLimit}). A typo? If not, ${hint}; ` +
          `unknownGauges: 'ignore' silences this, 'error' fails the start.`,
      );
    }
  }
}

/**
 * Every gauge name this application uses, with the first place it is used (for messages): names
 * carried by `@Limited` on a class or method (not `@Unlimited()` ones), and names injected with
 * `@InjectGauge` / `@Inject(getGaugeToken(name))` into a constructor, a property or a factory.
 * Method names are collected along the prototype chain, so an inherited handler counts, and
 * through property descriptors, so no getter is ever run.
 */
export function gaugeUses(
  modules: Iterable<ScannedModule>,
  reflector: Reflector,
): Map<unknown, string> {
  const names = new Map<unknown, string>();
  const limited = (name: unknown, where: string) => {
    if (name !== undefined && name !== UNLIMITED && !names.has(name)) {
      names.set(name, `@Limited(${JSON.stringify(name) ?? String(name)}) on ${where}`);
    }
  };
  const injected = (token: unknown, where: string) => {
    if (typeof token !== 'string' || !token.startsWith(TOKEN_PREFIX)) return;
    const name = token.slice(TOKEN_PREFIX.length);
    if (!names.has(name)) names.set(name, `@InjectGauge(${JSON.stringify(name)}) in ${where}`);
  };
  const seen = new Set<unknown>();
  for (const module of modules) {
    const wrappers = [
      ...module.controllers.values(),
      ...module.providers.values(),
      ...(module.injectables?.values() ?? []),
    ];
    for (const wrapper of wrappers) {
      const type = wrapper.metatype;
      if (typeof type !== 'function' || seen.has(type)) continue;
      seen.add(type);
      if (Array.isArray(wrapper.inject)) {
        // A factory provider: its metatype is the factory, its dependencies are `inject`.
        const where = `the factory of ${describeToken(wrapper.token)}`;
        for (const dependency of wrapper.inject as unknown[]) {
          injected(isOptionalDependency(dependency) ? dependency.token : dependency, where);
        }
        continue;
      }
      const cls = type as Class;
      for (const { param } of metadataList<{ param?: unknown }>(SELF_DECLARED_DEPS_METADATA, cls)) {
        injected(param, cls.name);
      }
      for (const { type: token } of metadataList<{ type?: unknown }>(PROPERTY_DEPS_METADATA, cls)) {
        injected(token, cls.name);
      }
      limited(reflector.get<unknown>(LIMITED_GAUGE, cls), cls.name);
      for (const [key, method] of methodsOf(cls)) {
        limited(reflector.get<unknown>(LIMITED_GAUGE, method), `${cls.name}.${key}`);
      }
    }
  }
  return names;
}

function metadataList<T>(key: string, cls: Class): T[] {
  const value: unknown = Reflect.getMetadata(key, cls);
  return Array.isArray(value) ? (value as T[]) : [];
}

function isOptionalDependency(value: unknown): value is { token: unknown } {
  return typeof value === 'object' && value !== null && 'token' in value;
}

function describeToken(token: unknown): string {
  if (typeof token === 'function') return token.name || 'an anonymous class';
  return String(token);
}

function* methodsOf(cls: Class): Iterable<[string, Class]> {
  const keys = new Set<string>();
  let proto: unknown = cls.prototype;
  while (proto !== null && typeof proto === 'object' && proto !== Object.prototype) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (key === 'constructor' || keys.has(key)) continue;
      keys.add(key);
      const { value } = Object.getOwnPropertyDescriptor(proto, key) ?? {};
      if (typeof value === 'function') yield [key, value as Class];
    }
    proto = Object.getPrototypeOf(proto);
  }
}
