/** Why a gauge turned a caller away; lets callers and metrics tell a full gauge from a slow one. */
export type ExhaustionReason =
  | 'full'
  | 'queue-full'
  | 'timeout'
  | 'shed-delay'
  | 'shed-priority'
  | 'key-over-share'
  | 'shed-pressure';

/**
 * Thrown when a gauge has no slot for the caller in time. It is the back-pressure signal itself:
 * catch it to shed load (the Nest layer turns it into HTTP 429 with `Retry-After`).
 */
export class GaugeExhaustedError extends Error {
  /** Always `'GaugeExhaustedError'` (survives minification, unlike the class name). */
  override readonly name = 'GaugeExhaustedError';

  constructor(
    /** The gauge that said no, so a log line or a 429 body can name it. */
    readonly gauge: string,
    /**
     * `full`: no queue, no slot; `queue-full`: the wait queue was at its size; `timeout`: waited
     * too long; `shed-delay`: a standing CoDel queue gave up on it; `shed-priority`: turned away
     * (or out of the queue) to keep room for a higher priority; `key-over-share`: the caller's key
     * holds its share (or its cap) while other keys need the remaining slots; `shed-pressure`:
     * turned away while the process's event loop is under pressure (gauge option `eventLoop`).
     */
    readonly reason: ExhaustionReason,
    /** A hint for clients on when to try again (whole seconds). */
    readonly retryAfterSeconds: number,
  ) {
    super(describe(gauge, reason));
  }

  /**
   * A refusal is flow control, not a bug, so gauges build it without a stack trace: capturing one
   * cost more than the rest of a rejection (see docs/benchmarks.md, rejection cost).
   */
  static withoutStack(
    gauge: string,
    reason: ExhaustionReason,
    retryAfterSeconds: number,
  ): GaugeExhaustedError {
    return withoutStackTrace(() => new GaugeExhaustedError(gauge, reason, retryAfterSeconds));
  }
}

function describe(gauge: string, reason: ExhaustionReason): string {
  switch (reason) {
    case 'full':
      return `Gauge "${gauge}" is at its limit`;
    case 'queue-full':
      return `Gauge "${gauge}" is at its limit and its wait queue is full`;
    case 'timeout':
      return `Gauge "${gauge}" had no free slot before the queue timeout`;
    case 'shed-delay':
      return `Gauge "${gauge}" shed a waiter from its standing queue`;
    case 'shed-priority':
      return `Gauge "${gauge}" keeps its remaining slots for higher priorities`;
    case 'shed-pressure':
      return `Gauge "${gauge}" sheds this priority while the event loop is under pressure`;
    case 'key-over-share':
      return `Gauge "${gauge}" keeps its remaining slots for keys under their share`;
  }
}

/** Thrown when a caller's AbortSignal fired while it waited: it never got a slot, so nothing to release. */
export class GaugeAbortedError extends Error {
  /** Always `'GaugeAbortedError'` (survives minification, unlike the class name). */
  override readonly name = 'GaugeAbortedError';

  constructor(
    /** The gauge the caller was waiting for. */
    readonly gauge: string,
  ) {
    super(`Wait for gauge "${gauge}" was aborted`);
  }

  /**
   * A caller that gave up waiting is flow control too (under overload clients time out by the
   * thousand), so gauges build it without a stack trace, as they build refusals.
   */
  static withoutStack(gauge: string): GaugeAbortedError {
    return withoutStackTrace(() => new GaugeAbortedError(gauge));
  }
}

/**
 * Thrown when a gauge cannot decide at all (e.g. its shared store is unreachable and the gauge is set
 * to fail closed). Distinct from exhaustion: the client should see 503, not 429.
 */
export class GaugeUnavailableError extends Error {
  /** Always `'GaugeUnavailableError'` (survives minification, unlike the class name). */
  override readonly name = 'GaugeUnavailableError';

  constructor(
    /** The gauge that could not decide. */
    readonly gauge: string,
    /** Why, e.g. the store's connection error; safe for logs, not meant for clients. */
    message: string,
    /** A hint for clients on when to try again (whole seconds), sent as `Retry-After` with the 503. */
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** Thrown at start-up for bad options, naming the gauge and the option so the fix is obvious. */
export class GaugeConfigError extends Error {
  /** Always `'GaugeConfigError'` (survives minification, unlike the class name). */
  override readonly name = 'GaugeConfigError';
}

/**
 * Builds an error without capturing a stack trace. Refusals are answers under overload, not bugs,
 * and the capture was the largest cost of a refusal (docs/benchmarks.md, rejection cost).
 */
export function withoutStackTrace<T>(build: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return build();
  } finally {
    Error.stackTraceLimit = limit;
  }
}
