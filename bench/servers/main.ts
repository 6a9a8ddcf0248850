import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { GaugeRegistry } from '../../src';
import type { ServerStats } from '../harness/server-process';
import { lib } from '../harness/lib';
import { cpuModule } from './cpu.app';
import { counter } from './handler-counter';
import { ioModule } from './io.app';
import { metricsModule } from './metrics.app';
import { overheadModule } from './overhead.app';
import { pressureModule } from './pressure.app';
import { shiftControl, shiftModule } from './shift.app';
import { slotModule } from './slot.app';

/**
 * Entry point of a bench server process: builds the app named by BENCH_APP / BENCH_VARIANT on
 * BENCH_ADAPTER, listens on a loopback port, tells the parent where, then answers stats requests.
 */
/** Event-loop delay (1 ms resolution): tells a slow server apart from a slow load generator. */
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();

/** Whatever `NestFactory.create` accepts as a module, on NestJS 11 and 12 alike. */
type EntryModule = Parameters<typeof NestFactory.create>[0];

const apps: Record<string, (variant: string) => EntryModule> = {
  overhead: overheadModule,
  io: ioModule,
  cpu: cpuModule,
  shift: shiftModule,
  pressure: pressureModule,
  slot: slotModule,
  metrics: metricsModule,
};

/** Apps that take commands at run time (scenario 9 changes its dependency's width). */
const controls: Record<
  string,
  (registry: GaugeRegistry | undefined, variant: string, command: string, value: number) => void
> = {
  shift: shiftControl,
};

interface StatsMessage {
  type: 'stats';
  id: number;
  gc: boolean;
  resetPeak: boolean;
}
interface ControlMessage {
  type: 'control';
  id: number;
  command: string;
  value: number;
}

async function main(): Promise<void> {
  const { BENCH_APP = '', BENCH_VARIANT = '', BENCH_ADAPTER = 'express' } = process.env;
  const build = apps[BENCH_APP];
  if (!build) throw new Error(`unknown bench app "${BENCH_APP}"`);
  const module = build(BENCH_VARIANT);
  const app: INestApplication =
    BENCH_ADAPTER === 'fastify'
      ? await NestFactory.create(module, new FastifyAdapter(), {
          logger: false,
          abortOnError: false,
        })
      : await NestFactory.create(module, { logger: false, abortOnError: false });
  await app.listen(0, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');

  process.on('message', (msg: ControlMessage | StatsMessage) => {
    if (msg.type === 'control') {
      controls[BENCH_APP]?.(tryGet(app), BENCH_VARIANT, msg.command, msg.value);
      process.send?.({ type: 'control', id: msg.id });
      return;
    }
    if (msg.type !== 'stats') return;
    process.send?.({ type: 'stats', id: msg.id, stats: stats(app, msg.gc) });
    if (msg.resetPeak) {
      counter.peak = counter.running;
      loopDelay.reset();
    }
  });
  // A clean exit on SIGTERM, so `node --cpu-prof` writes its profile when profiling a server.
  process.once('SIGTERM', () => process.exit(0));
  process.send?.({ type: 'ready', url });
}

function stats(app: INestApplication, gc: boolean): ServerStats {
  const result: ServerStats = {
    handler: { running: counter.running, peak: counter.peak, calls: counter.calls },
    resources: process.getActiveResourcesInfo(),
    loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
  };
  const registry = tryGet(app);
  if (registry?.has('bench')) {
    const { limit, inFlight, queued, admitted, rejected, timedOut, aborted } =
      registry.get('bench');
    result.gauge = { limit, inFlight, queued, admitted, rejected, timedOut, aborted };
  }
  if (gc && typeof global.gc === 'function') {
    global.gc();
    global.gc();
    result.heapUsed = process.memoryUsage().heapUsed;
  }
  return result;
}

function tryGet(app: INestApplication) {
  try {
    return app.get(lib.GaugeRegistry, { strict: false });
  } catch {
    return undefined;
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
