import { describe, expect, it } from '@jest/globals';
import { StoreCommandError } from '../core/shared/command-error';
import { isScriptError, scriptFailure } from './redis-reply-error';

/** An error reply as ioredis surfaces it (a `ReplyError`, told by name). */
function reply(message: string): Error {
  const error = new Error(message);
  error.name = 'ReplyError';
  return error;
}

describe('Redis error replies', () => {
  it.each([
    'WRONGTYPE Operation against a key holding the wrong kind of value script: 1f0c, on @user_script:5.',
    'ERR user_script:3: attempt to compare nil with number script: 1f0c, on @user_script:3.',
    'ERR Error running script (call to f_1f0c): @user_script:3: bad',
  ])('counts %j as the script’s own error', (message) => {
    expect(isScriptError(reply(message))).toBe(true);
    const failure = scriptFailure('backpressureAcquire', reply(message));
    expect(failure).toBeInstanceOf(StoreCommandError);
    expect(failure).toMatchObject({ command: 'backpressureAcquire', reply: message });
  });

  it.each([
    "OOM command not allowed when used memory > 'maxmemory'.",
    'BUSY Redis is busy running a script.',
    'LOADING Redis is loading the dataset in memory',
    "READONLY You can't write against a read only replica.",
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'CLUSTERDOWN The cluster is down',
    'MASTERDOWN Link with MASTER is down',
    'MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist',
    'NOREPLICAS Not enough good replicas to write.',
    'NOAUTH Authentication required.',
    'MOVED 3999 127.0.0.1:6381',
    'ASK 3999 127.0.0.1:6381',
    'NOSCRIPT No matching script. Please use EVAL.',
    // Redis 6 and older wrap the reply of a command the script called in the script's error.
    "ERR Error running script (call to f_1f0c): @user_script:9: @user_script: 9: -OOM command not allowed when used memory > 'maxmemory'.",
    "ERR Error running script (call to f_1f0c): @user_script:4: -READONLY You can't write against a read only replica.",
  ])('counts %j as transient (an outage)', (message) => {
    const error = reply(message);
    expect(isScriptError(error)).toBe(false);
    expect(scriptFailure('backpressureAcquire', error)).toBe(error);
  });

  it('counts errors that are no reply (connection, timeout) as an outage', () => {
    for (const error of [new Error('Connection is closed.'), new Error('Command timed out'), 'x']) {
      expect(scriptFailure('backpressureRenew', error)).toBe(error);
    }
  });
});
