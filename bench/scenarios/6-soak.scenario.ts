import { openLoop } from '../harness/open-loop';
import { sleep, type Aim, type Scenario } from '../harness/scenario';
import { ServerProcess } from '../harness/server-process';

const CAPACITY = 200;
const SAMPLE_EVERY = 100_000;

/**
 * Scenario 6: soak. The I/O server with a fail-fast gauge of 10 takes `soakRequests` requests at
 * 10× its capacity (mostly 429s). Heap after a full GC is sampled every 100k requests and must stay
 * within 2 MB of where it started; once the load stops, no handle or timer may be left behind.
 */
export const scenario: Scenario = {
  id: '6-soak',
  title: 'Soak: a million requests at 10× capacity',
  async run(ctx) {
    const rate = 10 * CAPACITY;
    const chunk = Math.min(SAMPLE_EVERY, Math.max(1, Math.floor(ctx.soakRequests / 2)));
    const settings = {
      requests: ctx.soakRequests,
      ratePerSecond: rate,
      sampleEvery: chunk,
      gauge: { limit: 10 },
      deadlineMs: 1000,
    };
    const server = await ServerProcess.start({ app: 'io', variant: 'failfast' });
    try {
      const load = (count: number) =>
        openLoop({
          url: server.url,
          rate,
          count,
          deadlineMs: 1000,
          maxSockets: 2500,
          keepLatencies: false,
        });
      await load(Math.min(20_000, chunk));
      await sleep(500);
      const start = await server.stats(true);
      const samples = [{ requests: 0, heapUsed: start.heapUsed! }];
      const byStatus: Record<string, number> = {};
      let sent = 0;
      let timedOut = 0;
      let errors = 0;
      let peak = 0;
      while (sent < ctx.soakRequests) {
        const result = await load(Math.min(chunk, ctx.soakRequests - sent));
        sent += result.sent;
        timedOut += result.timedOut;
        errors += result.errors;
        for (const [s, n] of Object.entries(result.byStatus)) byStatus[s] = (byStatus[s] ?? 0) + n;
        const stats = await server.stats(true, true);
        peak = Math.max(peak, stats.handler.peak);
        samples.push({ requests: sent, heapUsed: stats.heapUsed! });
        ctx.log(
          `  ${sent} requests: heap ${(stats.heapUsed! / 2 ** 20).toFixed(2)} MiB, ${JSON.stringify(byStatus)}`,
        );
      }
      await sleep(500);
      const { stats: end, idle } = await server.settle();
      const drift = Math.max(...samples.map((s) => Math.abs(s.heapUsed - start.heapUsed!)));
      const leftover = diff(end.resources, start.resources);
      const data = {
        samples,
        byStatus,
        timedOut,
        errors,
        peakInHandler: peak,
        startResources: start.resources,
        endResources: end.resources,
        gaugeAfter: end.gauge,
        idle,
      };
      const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
      const aims: Aim[] = [
        {
          what: `heap after GC, every ${chunk} requests`,
          target: '≤ 2 MB from start',
          value: `max drift ${mib(drift)}`,
          met: drift <= 2e6,
        },
        {
          what: 'handles/timers left after load',
          target: 'none beyond start',
          value: leftover.length ? leftover.join(', ') : 'none',
          met: leftover.length === 0,
        },
        {
          what: 'gauge idle after load',
          target: 'inFlight 0, queued 0',
          value: `inFlight ${end.gauge?.inFlight}, queued ${end.gauge?.queued}`,
          met: idle,
        },
        { what: 'peak handlers in flight', target: '≤ 10', value: String(peak), met: peak <= 10 },
      ];
      return { settings, data, aims };
    } finally {
      await server.stop();
    }
  },
};

/** Resources in `after` beyond those in `before` (as a multiset). */
function diff(after: string[], before: string[]): string[] {
  const left = [...before];
  return after.filter((r) => {
    const i = left.indexOf(r);
    if (i === -1) return true;
    left.splice(i, 1);
    return false;
  });
}
