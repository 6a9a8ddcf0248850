import type { ExecutionContext } from '@nestjs/common';
import { describeValue as show, isPlainObject } from './core/config-value.util';
import { GaugeConfigError } from './core/gauge.errors';
import type { PartitionOptions } from './core/partition/partition-options';

/**
 * Says whose call this is, from its context (the gauge option `partition`): a tenant, a user, an
 * API key, a client IP. The gauge shares its slots fairly between keys: under overload a key over
 * its share is refused first (429, reason `key-over-share`) and a queue serves the others first.
 * Called once per call, before the slot is taken; keep it cheap. `undefined` means no key (such
 * calls share one partition); a resolver that throws or returns something else than a string
 * counts as no key (with one process warning), never a 500.
 */
export type PartitionResolver = (context: ExecutionContext) => string | undefined;

/**
 * Option `partition` in full: the resolver (`key`) plus the gauge's per-key settings. Without
 * `key`, routes pass no key and the settings serve the keys that code passes itself
 * (`gauge.process(fn, { key })`), so the core's `GaugeOptions` is a valid `GaugeConfig` too.
 */
export interface PartitionConfig extends PartitionOptions {
  /** Whose call it is (see `PartitionResolver`); absent: only code that passes a key has one. */
  key?: PartitionResolver | undefined;
}

/** Option `partition` checked: the resolver for the Nest layer, the rest for the core gauge. */
export interface ResolvedPartition {
  /** Absent: routes pass no key. */
  readonly key?: PartitionResolver;
  readonly options: PartitionOptions;
}

const warned = new WeakSet<PartitionResolver>();

/** The call's key, or undefined (no key) when the resolver gives none, throws or gives garbage. */
export function partitionKeyOf(
  resolver: PartitionResolver,
  context: ExecutionContext,
): string | undefined {
  let key: unknown;
  try {
    key = resolver(context);
  } catch (error) {
    warnOnce(resolver, () => `threw ${String(error)}`);
    return undefined;
  }
  if (typeof key === 'string') return key;
  if (key !== undefined && key !== null)
    warnOnce(resolver, () => `returned ${show(key)}, not a string`);
  return undefined;
}

/** `what` is rendered only for the first warning, and never throws (a value may refuse `String()`). */
function warnOnce(resolver: PartitionResolver, describe: () => string): void {
  if (warned.has(resolver)) return;
  warned.add(resolver);
  let what: string;
  try {
    what = describe();
  } catch {
    what = 'threw or returned a value that cannot be shown';
  }
  process.emitWarning(
    `A gauge's partition key resolver ${what}; the call (and any like it) counts as having no key`,
    'BackpressurePartitionWarning',
  );
}

/**
 * Checks the gauge option `partition` at bootstrap: a resolver, or `{ key?, limit?, maxKeys? }`
 * (the per-key settings are checked by the core, with the gauge).
 */
export function splitPartitionOption(where: string, value: unknown): ResolvedPartition {
  if (typeof value === 'function') return { key: value as PartitionResolver, options: {} };
  if (isPlainObject(value) && (typeof value.key === 'function' || value.key === undefined)) {
    const { key, ...options } = value as unknown as PartitionConfig;
    return key === undefined ? { options } : { key, options };
  }
  const got = isPlainObject(value) ? `an object whose "key" is ${show(value.key)}` : show(value);
  throw new GaugeConfigError(
    `${where}: option "partition" must be a function (context: ExecutionContext) => string | undefined, or { key?: that function, limit?, maxKeys? }, got ${got}`,
  );
}
