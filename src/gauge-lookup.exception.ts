import { BadRequestException, ServiceUnavailableException } from '@nestjs/common';

/** Longest gauge name the registry creates at run time: a name is a key, not a payload. */
export const MAX_RUNTIME_GAUGE_NAME_LENGTH = 256;

/** Why a name asked of the registry at run time was refused. */
export type InvalidGaugeNameReason = 'not-a-string' | 'empty' | 'blank' | 'too-long';

const MESSAGES: Record<InvalidGaugeNameReason, string> = {
  'not-a-string': 'Invalid gauge name: it must be a single string',
  empty: 'Invalid gauge name: it must not be empty',
  blank: 'Invalid gauge name: it must not be blank',
  'too-long': `Invalid gauge name: it must be at most ${MAX_RUNTIME_GAUGE_NAME_LENGTH} characters`,
};

/**
 * The 400 `GaugeRegistry.get(name)` throws after bootstrap for a name it cannot create a gauge
 * for: not a string (a missing or repeated query parameter), empty, blank, or over
 * `MAX_RUNTIME_GAUGE_NAME_LENGTH` characters. A name chosen by a client is the client's mistake,
 * not a 500. The body (Nest's shape) says what is wrong without echoing the name, which may be
 * huge or hostile.
 */
export class InvalidGaugeNameException extends BadRequestException {
  constructor(
    /** What is wrong with the name: not a string, empty, blank or too long. */
    readonly reason: InvalidGaugeNameReason,
  ) {
    super(MESSAGES[reason]);
  }

  /** The reason `name` cannot name a gauge created at run time, or undefined if it can. */
  static check(name: unknown): InvalidGaugeNameReason | undefined {
    if (typeof name !== 'string') return 'not-a-string';
    if (name === '') return 'empty';
    if (name.length > MAX_RUNTIME_GAUGE_NAME_LENGTH) return 'too-long';
    if (name.trim() === '') return 'blank';
    return undefined;
  }
}

/**
 * The 503 `GaugeRegistry.get(name)` throws when a new name needs a gauge while `maxDynamicGauges`
 * gauges created at run time exist and every one of them is busy (a slot held or a caller
 * queued): busy gauges are never evicted, so the bound holds, and the service — not the name —
 * is what is saturated.
 */
export class GaugeCapacityException extends ServiceUnavailableException {
  constructor(
    /** The `maxDynamicGauges` option in force. */
    readonly maxDynamicGauges: number,
  ) {
    super(
      `Gauge capacity reached: the cap of ${maxDynamicGauges} gauges created at run time ` +
        '(option "maxDynamicGauges") is reached and none of them is idle',
    );
  }
}
