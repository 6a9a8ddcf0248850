import type { Redis, RedisOptions } from 'ioredis';
import { GaugeConfigError } from '../core/gauge.errors';
import { describeThrown } from '../core/gauge-events';

/** ioredis's client class, as the store needs it to connect to a URL. */
export type RedisConstructor = new (url: string, options: RedisOptions) => Redis;

/**
 * Loads ioredis only when a store is given a URL: it is an optional peer dependency, so an app that
 * never uses Redis must not need it installed. Synchronous under CommonJS (the published build), so
 * a missing package fails the bootstrap with a clear message; falls back to `import()` under ESM.
 */
export function loadIoredis(): RedisConstructor | Promise<RedisConstructor> {
  if (typeof require === 'function') {
    let loaded: unknown;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = require('ioredis');
    } catch (error) {
      throw missing(error);
    }
    return pick(loaded);
  }
  return import('ioredis').then(
    (loaded: unknown) => pick(loaded),
    (error: unknown) => {
      throw missing(error);
    },
  );
}

function pick(loaded: unknown): RedisConstructor {
  const module = loaded as { Redis?: unknown; default?: { Redis?: unknown } | unknown };
  const candidate =
    module.Redis ?? (module.default as { Redis?: unknown } | undefined)?.Redis ?? module.default;
  if (typeof candidate !== 'function') {
    throw new GaugeConfigError('RedisGaugeStore: the installed "ioredis" exports no Redis class');
  }
  return candidate as RedisConstructor;
}

function missing(error: unknown): GaugeConfigError {
  const why = error instanceof Error ? error.message : describeThrown(error);
  return new GaugeConfigError(
    `RedisGaugeStore was given a URL but "ioredis" could not be loaded (${why}). ` +
      'Install it (npm install ioredis) or pass a connected client as `redis`.',
  );
}
