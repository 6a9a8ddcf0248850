import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * Open-loop load: requests leave at a fixed arrival rate whatever the server does, as independent
 * users do. A closed loop (autocannon's connections) slows down with the server and hides collapse;
 * this does not. Each request has a client deadline: past it the client gives up (destroys the
 * request, as an HTTP/1.1 client must). Latency counts from the scheduled send time, so a late send
 * is charged to the server (no coordinated omission).
 */
export interface OpenLoopOptions {
  url: string;
  /** Requests per second offered. */
  rate: number;
  /** How many requests to send in all (duration = count / rate). */
  count: number;
  deadlineMs: number;
  /** Sockets at most; further requests wait for one (and may miss their deadline doing so). */
  maxSockets: number;
  /** Keep per-request latencies (off for the soak's million requests). */
  keepLatencies?: boolean;
  /**
   * Seconds of load before the measured window opens (default 0). Figures below count only what
   * happened inside the window [t0 + rampSeconds, last send]: the ramp lets a backlog build to its
   * steady state, and the drain after the last send (free capacity no steady load has) is excluded.
   */
  rampSeconds?: number;
  /**
   * Called for every request's end (scenario 9's time series): when it was scheduled and when it
   * ended, in ms since the load's start (`onStart`), and how: an HTTP status, `timeout` (the client
   * gave up at its deadline) or `error`.
   */
  onOutcome?: (sentAt: number, endedAt: number, status: number | 'timeout' | 'error') => void;
  /** Called once with the load's start on the `performance.now()` clock, before the first send. */
  onStart?: (t0: number) => void;
  /** Request headers sent with every request (scenario 11: a tenant key); none by default. */
  headers?: Record<string, string>;
}

export interface OpenLoopResult {
  sent: number;
  /** Responses by status (whenever they came). */
  byStatus: Record<string, number>;
  /** 2xx that arrived within the deadline, in the window. */
  okInDeadline: number;
  /** Requests the client gave up on at the deadline, in the window. */
  timedOut: number;
  /** Connection errors other than our own abort (whenever). */
  errors: number;
  /** Length of the measured window. */
  seconds: number;
  /** Responses, timeouts and errors in the window. */
  outcomes: number;
  okLatenciesMs: number[];
  rejectedLatenciesMs: number[];
  /** p99 of the generator's own event-loop delay (ms): its share of any latency it reports. */
  loopDelayP99Ms: number;
}

interface InFlight {
  req: http.ClientRequest;
  deadline: number;
  done: boolean;
}

export function openLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const target = new URL(options.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets });
  const keep = options.keepLatencies ?? true;
  const result: OpenLoopResult = {
    sent: 0,
    byStatus: {},
    okInDeadline: 0,
    timedOut: 0,
    errors: 0,
    seconds: options.count / options.rate - (options.rampSeconds ?? 0),
    outcomes: 0,
    okLatenciesMs: [],
    rejectedLatenciesMs: [],
    loopDelayP99Ms: NaN,
  };
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const outstanding: InFlight[] = [];
  let head = 0;
  let open = 0;
  const interval = 1000 / options.rate;
  const t0 = performance.now() + 5;
  const windowStart = t0 + (options.rampSeconds ?? 0) * 1000;
  const windowEnd = t0 + (options.count / options.rate) * 1000;
  const inWindow = (t: number) => t >= windowStart && t <= windowEnd;
  const onOutcome = options.onOutcome;
  options.onStart?.(t0);

  return new Promise((resolve) => {
    const send = (scheduled: number) => {
      const entry: InFlight = {
        req: undefined as unknown as http.ClientRequest,
        deadline: scheduled + options.deadlineMs,
        done: false,
      };
      open++;
      const finish = () => {
        entry.done = true;
        open--;
      };
      entry.req = http.get(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path: target.pathname,
          ...(options.headers && { headers: options.headers }),
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (entry.done) return;
            finish();
            const now = performance.now();
            const latency = now - scheduled;
            const status = res.statusCode ?? 0;
            onOutcome?.(scheduled - t0, now - t0, status);
            result.byStatus[status] = (result.byStatus[status] ?? 0) + 1;
            if (!inWindow(now)) return;
            result.outcomes++;
            if (status >= 200 && status < 300) {
              if (latency <= options.deadlineMs) result.okInDeadline++;
              if (keep) result.okLatenciesMs.push(latency);
            } else if (status === 429 && keep) {
              result.rejectedLatenciesMs.push(latency);
            }
          });
        },
      );
      entry.req.on('error', () => {
        if (entry.done) return;
        finish();
        result.errors++;
        onOutcome?.(scheduled - t0, performance.now() - t0, 'error');
        if (inWindow(performance.now())) result.outcomes++;
      });
      outstanding.push(entry);
    };

    const tick = () => {
      const now = performance.now();
      const due = Math.min(options.count, Math.floor((now - t0) / interval) + 1);
      while (result.sent < due) send(t0 + result.sent++ * interval);
      // Deadlines grow in send order, so the expired ones are at the front.
      for (;;) {
        const entry = outstanding[head];
        if (entry === undefined || !(entry.done || entry.deadline <= now)) break;
        head++;
        if (!entry.done) {
          entry.done = true;
          open--;
          onOutcome?.(entry.deadline - options.deadlineMs - t0, now - t0, 'timeout');
          if (inWindow(now)) {
            result.timedOut++;
            result.outcomes++;
          }
          entry.req.destroy();
        }
      }
      if (head > 4096) {
        outstanding.splice(0, head);
        head = 0;
      }
      if (result.sent >= options.count && open === 0) {
        clearInterval(timer);
        agent.destroy();
        loopDelay.disable();
        result.loopDelayP99Ms = loopDelay.percentile(99) / 1e6;
        resolve(result);
      }
    };
    const timer = setInterval(tick, 1);
  });
}
