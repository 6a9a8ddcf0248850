/*
 * Waiting in tests: for a condition, for time to pass, for pending callbacks to run. One copy for
 * the unit specs under src, test/e2e and test/property.
 */

/** Resolves after `ms` of real time (or of fake time, under Jest's fake timers). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Lets pending I/O and timers run for `ms`, to show that something did NOT happen after a while.
 */
export function settle(ms = 50): Promise<void> {
  return sleep(ms);
}

/**
 * Lets every pending promise callback run: resolves on the next `setImmediate`, which Jest's fake
 * timers leave real when told (`doNotFake: ['setImmediate']`).
 */
export function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Polls (every 5 ms) until `condition` holds ("N handlers have started", "the slot is free").
 * Fails after `timeoutMs` naming `what` (a function is called then, to describe the state), so a
 * broken behaviour shows up as a readable failure, not a hung test.
 */
export async function until(
  condition: () => boolean,
  what: string | (() => string),
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      const described = typeof what === 'string' ? what : what();
      throw new Error(`Timed out after ${timeoutMs} ms waiting until ${described}`);
    }
    await sleep(5);
  }
}

/** `promise`, or a rejection naming `what` if it has not settled after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
