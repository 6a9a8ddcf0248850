import 'reflect-metadata';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { closedLoop, type ClosedLoopResult } from '../harness/closed-loop';
import { lib, redisLib } from '../harness/lib';
import { interleaved, type Aim, type Scenario } from '../harness/scenario';
import { pairwise, round, show, spread } from '../harness/stats';

/**
 * Scenario 7: the Redis gauge store. (1) What an admitted request costs on Redis next to the
 * in-memory gauge (ample limit, nothing refused), and how many Redis commands it sends, from
 * `INFO commandstats` of a private redis-server (nobody else's commands in the count). (2) Three
 * server processes sharing one gauge of 10 under load: the global peak of handlers running at
 * once (from the handlers' own start/end times on the machine-wide monotonic clock).
 *
 * Self-contained: this file is also the server (forked with BENCH_REDIS_ROLE=server), since the
 * shared bench servers know nothing of Redis.
 */
export const scenario: Scenario = {
  id: '7-redis',
  title: 'Redis gauge store: overhead, commands per request, global peak with 3 instances',
  async run(ctx) {
    const settings = {
      connections: ctx.quick ? 4 : 20,
      seconds: ctx.quick ? 1 : 3,
      reps: ctx.quick ? 1 : Math.max(ctx.reps, 5),
      sharedLimit: 10,
      instances: 3,
      connectionsPerInstance: ctx.quick ? 10 : 30,
      workMs: 5,
    };
    const redis = await RedisServer.start().catch((error: Error) => error);
    if (redis instanceof Error) {
      ctx.log(`  skipped: ${redis.message}`);
      return { settings, data: { skipped: redis.message }, aims: [] };
    }
    const servers: BenchServer[] = [];
    const inspect = new Redis(redis.url);
    try {
      // (1) Overhead and commands per admitted request, in-memory and Redis side by side.
      const memory = await BenchServer.start({ STORE: 'memory', LIMIT: '100000' });
      const onRedis = await BenchServer.start({ STORE: redis.url, LIMIT: '100000' });
      servers.push(memory, onRedis);
      for (const server of [memory, onRedis])
        await closedLoop({ url: server.url, connections: settings.connections, seconds: 1 });
      const commands: number[] = [];
      const runs = await interleaved(settings.reps, ['memory', 'redis'] as const, async (v) => {
        const server = v === 'memory' ? memory : onRedis;
        const before = await counts(inspect, server);
        const result = await closedLoop({
          url: server.url,
          connections: settings.connections,
          seconds: settings.seconds,
        });
        if (v === 'redis') {
          const after = await counts(inspect, server);
          commands.push((after.scripts - before.scripts) / (after.admitted - before.admitted));
        }
        ctx.log(`  ${v}: ${Math.round(result.rps)} req/s, p50 ${result.p50Ms} ms`);
        return result;
      });
      const of = (v: 'memory' | 'redis') => runs.get(v)!;
      const ratio = spread(pairwise(of('redis'), of('memory'), (r, m) => r.rps / m.rps));
      const addedP50 = spread(pairwise(of('redis'), of('memory'), (r, m) => r.p50Ms - m.p50Ms));
      const perRequest = spread(commands);
      const breakdown = await inspect.info('commandstats');

      // (2) Three instances, one gauge of 10, far more clients than slots.
      const shared = await Promise.all(
        Array.from({ length: settings.instances }, () =>
          BenchServer.start({
            STORE: redis.url,
            LIMIT: String(settings.sharedLimit),
            QUEUE: '1000',
            WORK_MS: String(settings.workMs),
            RECORD: '1',
          }),
        ),
      );
      servers.push(...shared);
      await inspect.config('RESETSTAT');
      const loads = await Promise.all(
        shared.map((server) =>
          closedLoop({
            url: server.url,
            connections: settings.connectionsPerInstance,
            seconds: settings.seconds * 2,
          }),
        ),
      );
      const stats = await Promise.all(shared.map((server) => server.stats(true)));
      const intervals = stats.flatMap((s) => s.intervals ?? []);
      const peak = maxOverlap(intervals);
      const admitted = stats.reduce((n, s) => n + s.admitted, 0);
      const saturated = scripts(await inspect.info('commandstats')) / admitted;
      const non200 = loads.reduce(
        (n, r) => n + r.requests - (r.rpsByStatus['200'] ?? 0) * r.seconds,
        0,
      );
      ctx.log(`  3 instances: peak ${peak} of ${settings.sharedLimit}, ${admitted} admitted`);

      const data = {
        overhead: {
          memory: summarise(of('memory')),
          redis: summarise(of('redis')),
          ratio,
          addedP50,
        },
        commandsPerAdmitted: perRequest,
        commandstatsAfterOverhead: breakdown.split('\r\n').filter((l) => l.startsWith('cmdstat_')),
        shared: {
          peak,
          admitted,
          non200: round(non200),
          rps: round(loads.reduce((n, r) => n + r.rps, 0)),
          commandsPerAdmittedSaturated: round(saturated),
        },
      };
      const aims: Aim[] = [
        {
          what: 'Redis commands per admitted request (steady state)',
          target: '≤ 2 (a renewal, one call per interval, may add a few thousandths)',
          value: show(perRequest, 4),
          met: round(perRequest.median, 3) <= 2,
        },
        {
          what: `global peak in-flight, ${settings.instances} instances sharing a gauge of ${settings.sharedLimit}`,
          target: `≤ ${settings.sharedLimit}`,
          value: String(peak),
          met: peak <= settings.sharedLimit,
        },
        {
          what: 'Redis req/s ÷ in-memory req/s, admitted requests (information)',
          target: 'none: measured',
          value: show(ratio),
          met: true,
        },
        {
          what: 'p50 latency added by Redis, ms (information)',
          target: 'none: measured',
          value: show(addedP50),
          met: true,
        },
      ];
      return { settings, data, aims };
    } finally {
      for (const server of servers) await server.stop();
      await inspect.quit().catch(() => inspect.disconnect());
      await redis.stop();
    }
  },
};

/** Scripts Redis ran (EVALSHA + EVAL: one per acquire, one per release, plus renewals). */
function scripts(info: string): number {
  const of = (cmd: string) =>
    Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return of('evalsha') + of('eval');
}

async function counts(inspect: Redis, server: BenchServer) {
  return {
    scripts: scripts(await inspect.info('commandstats')),
    admitted: (await server.stats()).admitted,
  };
}

function summarise(runs: ClosedLoopResult[]) {
  return {
    rps: spread(runs.map((r) => r.rps)),
    p50Ms: spread(runs.map((r) => r.p50Ms)),
    p99Ms: spread(runs.map((r) => r.p99Ms)),
  };
}

/** Most intervals open at once ([start, end] in ns as strings); touching ends do not overlap. */
function maxOverlap(intervals: [string, string][]): number {
  const events = intervals.flatMap(([s, e]) => [
    { at: BigInt(s), d: 1 },
    { at: BigInt(e), d: -1 },
  ]);
  events.sort((a, b) => (a.at === b.at ? a.d - b.d : a.at < b.at ? -1 : 1));
  let open = 0;
  let max = 0;
  for (const { d } of events) max = Math.max(max, (open += d));
  return max;
}

interface Stats {
  admitted: number;
  intervals?: [string, string][];
}

/** A bench server process running this file as a Nest app with one gauge, "bench". */
class BenchServer {
  private id = 0;
  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(env: Record<string, string>): Promise<BenchServer> {
    const child = fork(__filename, [], {
      env: { ...process.env, NODE_ENV: 'production', BENCH_REDIS_ROLE: 'server', ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const [message] = (await once(child, 'message')) as [{ url: string }];
    return new BenchServer(message.url, child);
  }

  async stats(takeIntervals = false): Promise<Stats> {
    const id = this.id++;
    this.child.send({ id, takeIntervals });
    for (;;) {
      const [reply] = (await once(this.child, 'message')) as [{ id: number; stats: Stats }];
      if (reply.id === id) return reply.stats;
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }
}

/** A private redis-server on a free loopback port, without persistence. */
class RedisServer {
  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(): Promise<RedisServer> {
    const binary = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';
    accessSync(binary, constants.X_OK);
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address() as { port: number };
    probe.close();
    const child = spawn(
      binary,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    const url = `redis://127.0.0.1:${port}`;
    const client = new Redis(url, {
      retryStrategy: (n) => (n > 100 ? null : 50),
      maxRetriesPerRequest: null,
    });
    client.on('error', () => undefined);
    await client.ping();
    await client.quit();
    return new RedisServer(url, child);
  }

  async stop(): Promise<void> {
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }
}

/** The server side: a Nest app whose GET / holds a slot of "bench" (in memory or on Redis). */
async function serve(): Promise<void> {
  const { STORE = 'memory', LIMIT = '10', QUEUE = '0', WORK_MS = '0', RECORD } = process.env;
  const workMs = Number(WORK_MS);
  const intervals: [string, string][] = [];
  const sleep = () => new Promise((resolve) => setTimeout(resolve, workMs));

  @Controller()
  class WorkController {
    @Get()
    @lib.Limited('bench')
    async work(): Promise<string> {
      const start = RECORD ? String(process.hrtime.bigint()) : '';
      if (workMs > 0) await sleep();
      if (RECORD) intervals.push([start, String(process.hrtime.bigint())]);
      return 'ok';
    }
  }
  const queue = Number(QUEUE) > 0 ? { size: Number(QUEUE), timeoutMs: 10_000 } : undefined;
  const store =
    STORE === 'memory'
      ? undefined
      : new (redisLib().RedisGaugeStore)({ redis: STORE, keyPrefix: 'bench:' });
  @Module({
    imports: [
      lib.BackpressureModule.forRoot({ store, gauges: { bench: { limit: Number(LIMIT), queue } } }),
    ],
    controllers: [WorkController],
  })
  class AppModule {}

  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const registry = app.get(lib.GaugeRegistry);
  process.on('message', (msg: { id: number; takeIntervals: boolean }) => {
    const stats: Stats = { admitted: registry.get('bench').admitted };
    if (msg.takeIntervals) stats.intervals = intervals.splice(0);
    process.send?.({ id: msg.id, stats });
  });
  process.send?.({ url: (await app.getUrl()).replace('[::1]', '127.0.0.1') });
}

if (process.env.BENCH_REDIS_ROLE === 'server') {
  serve().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
