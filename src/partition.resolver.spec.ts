import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { ExecutionContext } from '@nestjs/common';
import { GaugeConfigError } from './core/gauge.errors';
import { partitionKeyOf, splitPartitionOption } from './partition.resolver';

const context = {} as ExecutionContext;

afterEach(() => {
  jest.restoreAllMocks();
});

describe('partitionKeyOf', () => {
  it('gives the string the resolver returns, and no key for undefined or null, silently', () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    expect(partitionKeyOf(() => 'tenant-1', context)).toBe('tenant-1');
    expect(partitionKeyOf(() => undefined, context)).toBeUndefined();
    expect(partitionKeyOf(() => null as never, context)).toBeUndefined();
    expect(warn).not.toHaveBeenCalled();
  });

  it('a resolver that returns a non-string gives no key, with one warning per resolver', () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const numeric = () => 42 as never;
    expect(partitionKeyOf(numeric, context)).toBeUndefined();
    expect(partitionKeyOf(numeric, context)).toBeUndefined();
    expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
      "A gauge's partition key resolver returned 42, not a string; the call (and any like it) counts as having no key",
    ]);
  });
});

describe('partitionKeyOf, hostile resolvers', () => {
  it('a resolver that throws something unprintable, or returns a revoked proxy, gives no key', () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const unprintable = () => {
      throw Object.create(null) as Error; // String() of it throws
    };
    expect(partitionKeyOf(unprintable, context)).toBeUndefined();
    expect(partitionKeyOf(() => proxy as never, context)).toBeUndefined();
    expect(warn).toHaveBeenCalledTimes(2);
  });
});

describe('splitPartitionOption', () => {
  it('takes a resolver alone or { key, ...settings }', () => {
    const key = () => 'k';
    expect(splitPartitionOption('Gauge "g"', key)).toEqual({ key, options: {} });
    expect(splitPartitionOption('Gauge "g"', { key, limit: 2, maxKeys: 9 })).toEqual({
      key,
      options: { limit: 2, maxKeys: 9 },
    });
  });

  it('refuses anything else, naming the gauge', () => {
    expect(() => splitPartitionOption('Gauge "g"', 'x-tenant')).toThrow(GaugeConfigError);
    expect(splitPartitionOption('Gauge "g"', { limit: 2 })).toEqual({ options: { limit: 2 } });
    expect(() => splitPartitionOption('Gauge "g"', { key: 'x' })).toThrow(
      /Gauge "g": option "partition" must be .* got an object whose "key" is "x"/,
    );
  });
});
