import { StoreCommandError } from '../core/shared/command-error';

/**
 * Error replies that say Redis cannot serve anyone for now, not that the script is wrong: out of
 * memory, busy with a long script, loading its data, a read-only replica or failing-over, no
 * cluster, persistence failing, too few replicas, a connection not authenticated yet. They count
 * as an outage (the gauges' `whenStoreDown` policy). `MOVED`/`ASK` are followed by ioredis, and
 * `NOSCRIPT` is answered by ioredis with `EVAL`; should one surface all the same, it is transient.
 */
const TRANSIENT = [
  'OOM',
  'BUSY',
  'LOADING',
  'READONLY',
  'TRYAGAIN',
  'CLUSTERDOWN',
  'MASTERDOWN',
  'MISCONF',
  'NOREPLICAS',
  'NOAUTH',
  'MOVED',
  'ASK',
  'NOSCRIPT',
] as const;

/** A transient reply inside a script error (Redis 6 and older wrap what `redis.call` got). */
const WRAPPED_TRANSIENT = new RegExp(`@user_script: ?\\d+: -?(?:${TRANSIENT.join('|')})\\b`);

/**
 * Whether `error` is an error reply of Redis (ioredis's `ReplyError`, told by name so ioredis need
 * not be loaded) of the script's own — `WRONGTYPE`, `ERR` from a script, … — rather than a sign
 * that Redis is away (a connection error, a timeout, or a transient reply such as `OOM`).
 */
export function isScriptError(error: unknown): error is Error {
  if (!(error instanceof Error) || error.name !== 'ReplyError') return false;
  const prefix = error.message.split(' ', 1)[0] ?? '';
  if ((TRANSIENT as readonly string[]).includes(prefix)) return false;
  // Before Redis 7, an error of a command a script called comes back wrapped in the script's:
  // `ERR Error running script (call to f_…): @user_script:9: -OOM command not allowed …`.
  return !WRAPPED_TRANSIENT.test(error.message);
}

/**
 * What a failed call of `script` rejects with: a `StoreCommandError` for an error of the script's
 * own (the gauge refuses the caller concerned, the store stays up), else `error` unchanged (an
 * outage).
 */
export function scriptFailure(script: string, error: unknown): unknown {
  return isScriptError(error) ? new StoreCommandError(script, error.message) : error;
}
