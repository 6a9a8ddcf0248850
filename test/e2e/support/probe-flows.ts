import { until } from '../../support/wait';
import type { Running } from './apps';
import { send, type Call } from './http';
import type { Probe } from './probe';

/** The app under test and its probe, read at each step: suites start a fresh pair per test. */
export type ProbedApp = () => { running: Running; probe: Probe };

/** The steps "who gets the slot" suites are written in, on the app `current` returns. */
export interface ProbeFlows {
  /** Sends `path` and waits until its handler runs (held until `probe.pass(id)`). */
  runs(path: string, id: string, headers?: Record<string, string>): Promise<Call>;
  /** Sends `path` and waits until it waits in gauge `name` (queued, or in a brief wait). */
  waits(name: string, path: string, headers?: Record<string, string>): Promise<Call>;
  /** Waits until every one of the suite's gauges holds nothing and queues nothing. */
  drained(): Promise<void>;
  /** Teardown: lets every handler go (and every later one pass), then closes the app. */
  close(): Promise<void>;
}

/** The probe flows over `current()`, draining `gauges`. */
export function probeFlows(current: ProbedApp, gauges: readonly string[]): ProbeFlows {
  const sendWith = (path: string, headers?: Record<string, string>): Call =>
    send(current().running.url, path, headers === undefined ? {} : { headers });
  return {
    async runs(path, id, headers) {
      const { probe } = current();
      const entered = probe.entered.length;
      const call = sendWith(path, headers);
      await until(() => probe.entered.length === entered + 1, `${id} runs`);
      return call;
    },
    async waits(name, path, headers) {
      const queuedIn = () => current().running.gauge(name).queued;
      const queued = queuedIn();
      const call = sendWith(path, headers);
      await until(() => queuedIn() === queued + 1, `${path} waits`);
      return call;
    },
    async drained() {
      const { running } = current();
      await until(
        () =>
          gauges.every((name) => running.gauge(name).inFlight + running.gauge(name).queued === 0),
        () =>
          `every gauge drains (${gauges.map((n) => `${n}: ${running.gauge(n).inFlight}/${running.gauge(n).queued}`).join(', ')})`,
      );
    },
    async close() {
      const { running, probe } = current();
      probe.openAll();
      await running.close();
    },
  };
}
