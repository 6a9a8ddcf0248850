import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { SpiedFunction } from 'jest-mock';
import type { ArgumentsHost } from '@nestjs/common';
import { BackpressureException, BackpressureUnavailableException } from './backpressure.exception';
import { answerRefusal, type Refusal } from './refusal-answer.util';
import type { RefusalHook, RefusalInfo } from './refusal.hook';

const host = { getType: () => 'http' } as unknown as ArgumentsHost;
const full = () => new BackpressureException('api', 'full', 3);
const down = () => new BackpressureUnavailableException('db', 5);
const DEFAULT_429 = {
  message: 'Too many requests',
  error: 'Too Many Requests',
  statusCode: 429,
  reason: 'full',
};

/** What a client receives over HTTP: status and body of the (reshaped) exception. */
function http(hook: RefusalHook | undefined, refusal: Refusal = full(), started = false) {
  const { refusal: answered } = answerRefusal(refusal, 'http', host, hook, started);
  return { status: answered.getStatus(), body: answered.getResponse(), answered };
}

describe('onRefusal hooks (answerRefusal)', () => {
  let warn: SpiedFunction<typeof process.emitWarning>;
  beforeEach(() => {
    warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  });
  afterEach(() => warn.mockRestore());
  const warnings = () => warn.mock.calls.map((call) => String(call[0]));

  it('without a hook: the refusal itself, untouched', () => {
    const refusal = full();
    expect(http(undefined, refusal).answered).toBe(refusal);
  });

  it('tells an observe-only hook everything, and keeps the default answer', () => {
    const seen: RefusalInfo[] = [];
    const refusal = full();
    const answer = http((info) => void seen.push(info), refusal);
    expect(answer.answered).toBe(refusal);
    expect(seen).toEqual([
      {
        gauge: 'api',
        reason: 'full',
        status: 429,
        retryAfterSeconds: 3,
        body: DEFAULT_429,
        responseStarted: false,
      },
    ]);
    expect(warnings()).toEqual([]);
  });

  it('a hook that mutates the body it was given cannot change the default', () => {
    const answer = http((info) => {
      (info.body as Record<string, unknown>).message = 'mutated';
    });
    expect(answer.body).toEqual(DEFAULT_429);
  });

  it('status 503: the default body follows the status, the reason and Retry-After stay', () => {
    const answer = http(() => ({ status: 503 }));
    expect(answer.status).toBe(503);
    expect(answer.body).toEqual({
      message: 'Service unavailable',
      error: 'Service Unavailable',
      statusCode: 503,
      reason: 'full',
    });
    expect(answer.answered).toBeInstanceOf(BackpressureException);
    expect(answer.answered).toMatchObject({ gauge: 'api', reason: 'full', retryAfterSeconds: 3 });
    expect(answer.answered.stack).toBe('BackpressureException: Service unavailable'); // no frames
  });

  it('a 503 turned into a 429', () => {
    const answer = http(() => ({ status: 429 }), down());
    expect(answer).toMatchObject({ status: 429, body: { statusCode: 429, reason: 'unavailable' } });
    expect(answer.answered).toBeInstanceOf(BackpressureUnavailableException);
  });

  it('body replaces the body; message is written into it (or into the default)', () => {
    expect(http(() => ({ body: { code: 'BUSY' } })).body).toEqual({ code: 'BUSY' });
    expect(http(() => ({ body: { code: 'BUSY' }, message: 'later' })).body).toEqual({
      code: 'BUSY',
      message: 'later',
    });
    const answer = http(() => ({ message: 'Slow down' }));
    expect(answer.body).toEqual({ ...DEFAULT_429, message: 'Slow down' });
    expect(answer.answered.message).toBe('Slow down');
    expect(
      http((info) => ({ body: { ...info.body, retry: info.retryAfterSeconds } })).body,
    ).toEqual({ ...DEFAULT_429, retry: 3 });
  });

  it('once the head is out, only the message applies', () => {
    const seen: boolean[] = [];
    const answer = http(
      (info) => {
        seen.push(info.responseStarted);
        return { status: 503, body: { code: 'BUSY' }, message: 'busy' };
      },
      full(),
      true,
    );
    expect(seen).toEqual([true]);
    expect({ status: answer.status, message: answer.answered.message }).toEqual({
      status: 429,
      message: 'busy',
    });
  });

  it('RPC / WebSocket: the hook sees and shapes the RefusalPayload', () => {
    let body: unknown;
    const hook: RefusalHook = (info) => {
      body = info.body;
      return { status: 503, message: 'busy' };
    };
    const { payload } = answerRefusal(full(), 'rpc', host, hook);
    expect(body).toEqual({
      status: 'error',
      statusCode: 429,
      error: 'Too Many Requests',
      message: 'Too many requests',
      retryAfterSeconds: 3,
      reason: 'full',
    });
    expect(payload).toEqual({
      status: 'error',
      statusCode: 503,
      error: 'Service Unavailable',
      message: 'busy',
      retryAfterSeconds: 3,
      reason: 'full',
    });
    expect(answerRefusal(full(), 'ws', host, () => ({ body: { code: 1 } })).payload).toEqual({
      code: 1,
    });
  });

  it('a hook that throws: the default refusal and one warning per hook', () => {
    const hook: RefusalHook = () => {
      throw new Error('hook bug');
    };
    const refusal = full();
    expect(http(hook, refusal).answered).toBe(refusal);
    expect(http(hook).body).toEqual(DEFAULT_429);
    expect(warnings()).toEqual([
      "A gauge's onRefusal hook threw Error: hook bug; the default refusal was sent (this and any like it)",
    ]);
  });

  it.each<[string, unknown, string]>([
    ['status 500', { status: 500 }, 'status must be 429 or 503'],
    ['status "503"', { status: '503' }, 'status must be 429 or 503'],
    ['a string body', { body: 'busy' }, 'body must be a plain object'],
    ['a numeric message', { message: 42 }, 'message must be a string'],
    ['an unknown field', { headers: {} }, 'unknown field "headers"'],
    ['a number', 503, 'not an object'],
  ])('a hook that returns %s: the default refusal and a warning', (_case, returned, why) => {
    const answer = http(() => returned as never);
    expect(answer.status).toBe(429);
    expect(answer.body).toEqual(DEFAULT_429);
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toContain(why);
  });

  it('an async hook: not awaited, its rejection swallowed, one warning', async () => {
    const rejected = Promise.reject(new Error('async bug'));
    const answer = http(() => rejected as never);
    expect(answer.body).toEqual(DEFAULT_429);
    await new Promise((resolve) => setImmediate(resolve)); // an unhandled rejection would fail here
    expect(warnings()).toEqual([
      "A gauge's onRefusal hook returned a promise (hooks are synchronous; it was not awaited); the default refusal was sent (this and any like it)",
    ]);
  });
});
