import { describe, expect, it } from '@jest/globals';
import type { ExecutionContext } from '@nestjs/common';
import { GaugeConfigError } from './core/gauge.errors';
import { trustedPriorityHeader, type TrustedRequest } from './priority-header.util';

/** An HTTP execution context around `request` (all the helper reads of it). */
function httpContext(request: TrustedRequest): ExecutionContext {
  return {
    getType: () => 'http',
    switchToHttp: () => ({ getRequest: () => request }),
  } as unknown as ExecutionContext;
}

const critical = { headers: { 'x-priority': 'critical' } };

describe('trustedPriorityHeader', () => {
  it('reads the level of a trusted request, any case and padding', () => {
    const resolve = trustedPriorityHeader({ trust: () => true, fallback: 'low' });
    expect(resolve(httpContext({ headers: { 'x-priority': ' High ' } }))).toBe('high');
    expect(resolve(httpContext(critical))).toBe('critical');
  });

  it('a repeated header (joined by Node) or an array is not a level: the fallback', () => {
    const resolve = trustedPriorityHeader({ trust: () => true, fallback: 'low' });
    expect(resolve(httpContext({ headers: { 'x-priority': 'critical, critical' } }))).toBe('low');
    expect(resolve(httpContext({ headers: { 'x-priority': ['critical'] } }))).toBe('low');
  });

  it('a trust check that throws gives the fallback, not normal (a client must not rise by breaking it)', () => {
    const resolve = trustedPriorityHeader({
      trust: (request) => (request.headers['x-token'] as string).startsWith('secret'),
      fallback: 'low',
    });
    expect(resolve(httpContext(critical))).toBe('low');
    expect(resolve(httpContext({ headers: { ...critical.headers, 'x-token': 'secret-1' } }))).toBe(
      'critical',
    );
  });

  it('only true trusts: an async check (a promise) or another truthy value does not', () => {
    for (const answer of [Promise.resolve(false), 'yes', 1, {}]) {
      const resolve = trustedPriorityHeader({
        trust: () => answer as unknown as boolean,
        fallback: 'low',
      });
      expect(resolve(httpContext(critical))).toBe('low');
    }
  });

  it('refuses a header name that is not a string at bootstrap, naming the option', () => {
    for (const header of [42, {}, true]) {
      expect(() => trustedPriorityHeader({ trust: () => true, header: header as never })).toThrow(
        GaugeConfigError,
      );
      expect(() => trustedPriorityHeader({ trust: () => true, header: header as never })).toThrow(
        /option "header" must be a header name/,
      );
    }
  });
});
