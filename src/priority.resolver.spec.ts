import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { ExecutionContext } from '@nestjs/common';
import { priorityOf, type PriorityResolver } from './priority.resolver';

const context = {} as ExecutionContext;

afterEach(() => {
  jest.restoreAllMocks();
});

describe('priorityOf', () => {
  it('gives the level a resolver returns, and the route level as is', () => {
    expect(priorityOf('low', context)).toBe('low');
    expect(priorityOf(() => 'critical', context)).toBe('critical');
  });

  it('garbage, a promise or a throw gives normal, with one warning per resolver', () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const garbage = [
      () => 'CRITICAL',
      () => Promise.resolve('critical'),
      () => 0,
      () => ['critical'],
      () => {
        throw new Error('bug');
      },
    ] as unknown as PriorityResolver[];
    for (const resolver of garbage) {
      expect(priorityOf(resolver, context)).toBe('normal');
      expect(priorityOf(resolver, context)).toBe('normal');
    }
    expect(warn).toHaveBeenCalledTimes(garbage.length);
  });

  it('a resolver that throws something unprintable, or returns a revoked proxy, gives normal', () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const unprintable = (() => {
      throw Object.create(null) as Error; // String() of it throws
    }) as PriorityResolver;
    expect(priorityOf(unprintable, context)).toBe('normal');
    expect(priorityOf((() => proxy) as unknown as PriorityResolver, context)).toBe('normal');
    expect(warn).toHaveBeenCalledTimes(2);
  });
});
