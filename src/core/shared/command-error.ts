import type { StoreLogger } from './store-health';

/*
 * A failed store command is one of two things. Most often the store could not be reached, or
 * could not serve anyone for a while (connection closed, timeout, out of memory, busy, loading,
 * read-only, fail-over): an outage, which the gauges ride out with their `whenStoreDown` policy.
 * But the store may also have answered, with an error of the command's own (a key holding the
 * wrong type, a script bug): the connection is fine and every other gauge works, so that is no
 * outage. The adapter (src/redis) knows its driver's errors and turns the second kind into a
 * `StoreCommandError`; everything else counts as an outage.
 */

/**
 * The store answered command `command` with an error of its own, not a connection or capacity
 * problem: a bug or a corrupted key. Thrown by a `LeaseClient` so the gauge refuses the caller
 * concerned (`GaugeUnavailableError`) instead of declaring the whole store down.
 */
export class StoreCommandError extends Error {
  /** Always `'StoreCommandError'` (survives minification, unlike the class name). */
  override readonly name = 'StoreCommandError';

  constructor(
    /** The command (script) that failed, as named in log lines: `backpressureAcquire`. */
    readonly command: string,
    /** The store's error reply. */
    readonly reply: string,
  ) {
    super(`${command} failed: ${reply}`);
  }
}

/** The most distinct errors remembered; past it, an error is logged again (bounded memory). */
const REMEMBERED = 100;

/**
 * Logs each distinct command error (command and reply) once per store, never per request: a
 * corrupted key fails every call that touches it, and one line says all there is to say.
 */
export class CommandErrorLog {
  private readonly seen = new Set<string>();

  constructor(
    private readonly logger: StoreLogger,
    /** What kind of store, for the log line (`Redis`). */
    private readonly kind: string,
  ) {}

  /** Logs `error` unless the same one was logged before. */
  report(error: StoreCommandError): void {
    const key = `${error.command}\n${error.reply}`;
    if (this.seen.has(key)) return;
    if (this.seen.size >= REMEMBERED) this.seen.clear();
    this.seen.add(key);
    this.logger.warn(
      `${this.kind} ${error.message}; the store stays up, but the calls concerned are refused ` +
        '(a bug, or a key of the gauge holding the wrong type) until it is fixed',
    );
  }
}
