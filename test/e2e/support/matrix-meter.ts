import type { LoggerService } from '@nestjs/common';
import { Observable, type Subscriber } from 'rxjs';

/** Per gauge: handler runs in progress now, the most ever at once, and how many ran in all. */
interface Count {
  running: number;
  peak: number;
  runs: number;
}

/**
 * Counts handler executions per gauge, from the handlers themselves: what the invariant is about,
 * whatever the interceptor believes. A run starts when the handler body starts (for an Observable
 * handler, when its Observable is subscribed) and ends when its own work ends: the promise
 * settles, the Observable completes, errors or is unsubscribed, the file stream ends or closes.
 */
export class RunMeter {
  private readonly counts = new Map<string, Count>();

  /** A run of `gauge`'s handler starts now. */
  begin(gauge: string): Run {
    return new Run(this, gauge);
  }

  /** `source`, each subscription of which is one run of `gauge`'s handler. */
  observe<T>(gauge: string, source: Observable<T>): Observable<T> {
    return new Observable<T>((subscriber) => this.begin(gauge).pipeTo(source, subscriber, true));
  }

  running(gauge: string): number {
    return this.count(gauge).running;
  }

  peak(gauge: string): number {
    return this.count(gauge).peak;
  }

  runs(gauge: string): number {
    return this.count(gauge).runs;
  }

  /** @internal A run (re)starts working. */
  enter(gauge: string, fresh: boolean): void {
    const count = this.count(gauge);
    count.running++;
    if (fresh) count.runs++;
    if (count.running > count.peak) count.peak = count.running;
  }

  /** @internal A run stops working. */
  leave(gauge: string): void {
    this.count(gauge).running--;
  }

  private count(gauge: string): Count {
    let count = this.counts.get(gauge);
    if (!count) this.counts.set(gauge, (count = { running: 0, peak: 0, runs: 0 }));
    return count;
  }
}

/**
 * One handler run. It is in progress while anything of it works: its body (from `begin` to `end`),
 * and each part handed on with `hold` or `pipeTo` (a returned Observable while subscribed, a
 * stream until it ends). If its body ends before a returned Observable is subscribed, it stops
 * and starts again then: a stream that starts working after its slot was given away counts.
 */
export class Run {
  private refs = 1;
  private ended = false;

  constructor(
    private readonly meter: RunMeter,
    private readonly gauge: string,
  ) {
    meter.enter(gauge, true);
  }

  /** The handler's body is over (idempotent). */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.drop();
  }

  /** Keeps the run in progress until the returned function is called (once). */
  hold(): () => void {
    if (this.refs++ === 0) this.meter.enter(this.gauge, false);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.drop();
    };
  }

  /** `source`, whose subscriptions keep the run in progress. */
  during<T>(source: Observable<T>): Observable<T> {
    return new Observable<T>((subscriber) => this.pipeTo(source, subscriber, false));
  }

  /**
   * Subscribes `subscriber` to `source` while holding the run; the hold is dropped before the
   * subscriber hears of the end, so the run is over before whoever waits for it learns so.
   */
  pipeTo<T>(source: Observable<T>, subscriber: Subscriber<T>, own: boolean) {
    const release = own ? () => this.end() : this.hold();
    const inner = source.subscribe({
      next: (value) => subscriber.next(value),
      error: (error: unknown) => {
        release();
        subscriber.error(error);
      },
      complete: () => {
        release();
        subscriber.complete();
      },
    });
    return () => {
      inner.unsubscribe();
      release();
    };
  }

  private drop(): void {
    if (--this.refs === 0) this.meter.leave(this.gauge);
  }
}

const EVENTS = ['uncaughtException', 'unhandledRejection'] as const;
type Listener = (...args: unknown[]) => void;
const TCP_CLIENT_GONE = 'The invalid received message from tcp server';

/**
 * Errors nobody handled: `uncaughtException` / `unhandledRejection` of the real process (jest's
 * `process` is a copy whose listeners never fire), and what Nest logs as an error (an exception
 * that became a 500 — also when its client had already gone and never saw it — or a failure
 * Nest caught outside any request). Each entry names the phase it happened in.
 */
export class ErrorLog implements LoggerService {
  readonly entries: string[] = [];
  phase = 'start';
  private readonly process = realProcess();
  private readonly setAside: Partial<Record<(typeof EVENTS)[number], Listener[]>> = {};
  private readonly onUncaught = (error: unknown) => this.add('uncaughtException', error);
  private readonly onRejection = (error: unknown) => this.add('unhandledRejection', error);

  /**
   * Takes over the process's `uncaughtException` and `unhandledRejection` events until
   * `uninstall`: jest's own listeners are set aside meanwhile (and put back then), so a crash of
   * the app under test is recorded here, attributed to its phase, instead of failing whichever
   * test happens to run (or every test of the block) and instead of killing the process.
   */
  install(): void {
    for (const event of EVENTS) {
      this.setAside[event] = this.process.rawListeners(event) as Listener[];
      this.process.removeAllListeners(event);
    }
    this.process.on('uncaughtException', this.onUncaught);
    this.process.on('unhandledRejection', this.onRejection);
  }

  uninstall(): void {
    this.process.off('uncaughtException', this.onUncaught);
    this.process.off('unhandledRejection', this.onRejection);
    for (const event of EVENTS) {
      for (const listener of this.setAside[event] ?? []) this.process.on(event, listener);
      this.setAside[event] = [];
    }
  }

  /** Entries since `mark` (a previous `entries.length`). */
  since(mark: number): string[] {
    return this.entries.slice(mark);
  }

  error(message: unknown, ...rest: unknown[]): void {
    // The TCP microservice server logs the socket error of a client that hung up mid-call: what
    // the load's leaving RPC clients do on purpose.
    if (message instanceof Error && message.message === TCP_CLIENT_GONE) return;
    this.add('Nest logged an error', message, ...rest);
  }

  fatal(message: unknown, ...rest: unknown[]): void {
    this.add('Nest logged a fatal error', message, ...rest);
  }

  log(): void {}
  warn(): void {}
  debug(): void {}
  verbose(): void {}

  private add(kind: string, ...details: unknown[]): void {
    const text = details
      .map((detail) =>
        detail instanceof Error ? (detail.stack ?? String(detail)) : String(detail),
      )
      .join(' | ')
      .slice(0, 1500);
    this.entries.push(`[${this.phase}] ${kind}: ${text}`);
  }
}

/**
 * The process object of Node's main realm. Jest runs a test file in a VM context whose `process`
 * is a copy, with listeners of its own that the real process never calls; the timers jest hands
 * in come from the main realm, and so does their `Function` constructor.
 */
function realProcess(): NodeJS.Process {
  try {
    const MainFunction = (setTimeout as unknown as { constructor: FunctionConstructor })
      .constructor;
    const main = MainFunction('return typeof process === "object" ? process : undefined')() as
      NodeJS.Process | undefined;
    if (main && typeof main.on === 'function') return main;
  } catch {
    // not available: fall back to the test's own process object
  }
  return process;
}
