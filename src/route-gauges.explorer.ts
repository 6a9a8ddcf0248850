import { Injectable } from '@nestjs/common';
import { ModulesContainer, Reflector } from '@nestjs/core';
import { GaugeConfigError } from './core/gauge.errors';
import { LIMITED_GAUGE } from './backpressure.constants';
import { GaugeRegistry } from './gauge.registry';

/** What the explorer reads of a Nest module: its controllers and providers, as Nest wraps them. */
interface ScannedModule {
  readonly controllers: ReadonlyMap<unknown, ClassWrapper>;
  readonly providers: ReadonlyMap<unknown, ClassWrapper>;
}

/** The part of Nest's InstanceWrapper used here: the class, and `inject` set for factories. */
interface ClassWrapper {
  readonly metatype?: unknown;
  readonly inject?: unknown;
}

type Class = abstract new (...args: never[]) => unknown;

/**
 * Builds, while the app starts, every gauge a `@Limited` names, so a gauge's store is checked
 * before the first request: a store whose driver is missing (ioredis not installed) or that
 * cannot build the gauge fails the bootstrap with a `GaugeConfigError` naming the gauge and the
 * handler, instead of a 500 on the first request. It also pins those gauges: the interceptor
 * keeps them, so they must never be evicted as dynamic.
 *
 * It reads the metadata of every controller (HTTP routes, microservice `@MessagePattern` /
 * `@EventPattern` handlers) and every class provider (WebSocket gateways' `@SubscribeMessage`
 * handlers) from the class itself, so it works at construction, before any lifecycle hook: the
 * failure happens in `NestFactory.create()` / `compile()`.
 */
@Injectable()
export class RouteGaugesExplorer {
  constructor(registry: GaugeRegistry, modules: ModulesContainer, reflector: Reflector) {
    for (const [name, where] of limitedGaugeNames(modules.values(), reflector)) {
      try {
        registry.get(name as string);
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        throw new GaugeConfigError(`${where}: ${why}`, { cause: error });
      }
    }
  }
}

/**
 * Every gauge name carried by `@Limited` in `modules`, with the first place it is used (for the
 * error message). Method names are collected along the prototype chain, so an inherited handler
 * counts, and through property descriptors, so no getter is ever run.
 */
export function limitedGaugeNames(
  modules: Iterable<ScannedModule>,
  reflector: Reflector,
): Map<unknown, string> {
  const names = new Map<unknown, string>();
  const note = (name: unknown, where: string) => {
    if (name !== undefined && !names.has(name)) {
      names.set(name, `@Limited(${JSON.stringify(name) ?? String(name)}) on ${where}`);
    }
  };
  const seen = new Set<Class>();
  for (const module of modules) {
    for (const wrapper of [...module.controllers.values(), ...module.providers.values()]) {
      const type = wrapper.metatype;
      // Factory providers' metatype is the factory; value providers have none.
      if (typeof type !== 'function' || wrapper.inject || seen.has(type as Class)) continue;
      const cls = type as Class;
      seen.add(cls);
      note(reflector.get<unknown>(LIMITED_GAUGE, cls), cls.name);
      for (const [key, method] of methodsOf(cls)) {
        note(reflector.get<unknown>(LIMITED_GAUGE, method), `${cls.name}.${key}`);
      }
    }
  }
  return names;
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
