import type { ModulesContainer } from '@nestjs/core';

/*
 * Nest has no hook for "the application finished starting": `onApplicationBootstrap` is called
 * module by module (deepest imports first, the root module last), and a provider that throws in a
 * later module fails `init()` without any shutdown hook for the modules already bootstrapped. A
 * metrics integration that took a registry or a meter in its own `onApplicationBootstrap` would
 * keep it after such a failure, and refuse the next app of the process. This is where it learns
 * that the whole bootstrap went through instead.
 */

/** The hook Nest calls on a module's class instance, after its providers'. */
type BootstrapHook = (() => unknown) | undefined;
interface ModuleClassInstance {
  onApplicationBootstrap?: BootstrapHook;
}

/**
 * Calls `done` once the application's last `onApplicationBootstrap` succeeded: the last module Nest
 * bootstraps (the root module, in Nest's order: by distance from it, stable) gets a class hook that
 * runs its own first (if any), then `done`; it is not called if any `onApplicationBootstrap` threw.
 * A throw from `done` fails the application's start.
 *
 * @returns false when it cannot watch (no container, or a module class Nest would not call, one
 *   with request-scoped dependencies): the caller then takes its own bootstrap as the end
 */
export function whenBootstrapEnds(
  modules: ModulesContainer | undefined,
  done: () => void,
): boolean {
  if (modules === undefined) return false;
  let last: ModuleRefLike | undefined;
  for (const module of modules.values() as Iterable<ModuleRefLike>) {
    // Nest sorts by distance, descending, with a stable sort: the last of the smallest is last.
    if (last === undefined || module.distance <= last.distance) last = module;
  }
  const host = last?.getProviderByKey?.(last.metatype);
  const instance = host?.instance as ModuleClassInstance | undefined;
  if (instance === undefined || instance === null || host?.isDependencyTreeStatic?.() !== true) {
    return false;
  }
  const own = instance.onApplicationBootstrap;
  let called = false;
  // An own property of this application's instance: the module's class (and any other application
  // of it) is untouched. Left in place afterwards: Nest calls it once per successful bootstrap.
  instance.onApplicationBootstrap = async function onApplicationBootstrap(this: unknown) {
    if (own !== undefined) await own.call(this);
    if (called) return;
    called = true;
    done();
  };
  return true;
}

/** What is read of Nest's `Module` (not exported under a stable path in Nest 11 and 12). */
interface ModuleRefLike {
  readonly distance: number;
  readonly metatype: unknown;
  getProviderByKey?(key: unknown): InstanceHostLike | undefined;
}

interface InstanceHostLike {
  readonly instance: unknown;
  isDependencyTreeStatic?(): boolean;
}
