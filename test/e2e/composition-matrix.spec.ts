import 'reflect-metadata';
import { INTERCEPTORS_METADATA } from '@nestjs/common/constants';
import { Redis } from 'ioredis';
import { BackpressureInterceptor } from '../../src';
import { RedisGaugeStore } from '../../src/redis';
import { Logs } from '../redis/support/helpers';
import {
  closeClient,
  deleteKeys,
  describeWithRedis,
  REDIS_URL,
  uniquePrefix,
} from '../redis/support/redis-env';
import { PLATFORMS } from './support/apps';
import { LIMIT, MatrixGateway, TimeoutTo504, Work } from './support/matrix-app';
import {
  Findings,
  LOAD,
  loadHttp,
  loadRpc,
  loadWs,
  loneHttp,
  loneRpc,
  loneWs,
  refusalHttp,
  seeded,
  settle,
  warmUp,
} from './support/matrix-load';
import { ErrorLog, RunMeter } from './support/matrix-meter';
import { sleep } from '../support/wait';
import {
  ALL_GAUGES,
  HTTP_ROUTES,
  isRemote,
  KINDS,
  RPC_ROUTES,
  startMatrixApp,
  VARIANTS,
  WS_ROUTES,
  type Cell,
  type MatrixApp,
} from './support/matrix-routes';

/**
 * Issue 8's invariant, black-box: at most `limit` runs of a gauge's handler are in progress at
 * once, whatever sits around the handler, and no request breaks that or the process.
 *
 * Rows: every construct that can sit around a handler (interceptors outside and inside @Limited:
 * timeout, catchError, retry, a cache that never calls the handler, race, take; a guard, pipes, a
 * filter, @Res(), sync and async @Sse(), StreamableFile, Observable handlers; WebSocket and TCP
 * microservice handlers), each a route with a gauge of its own (limit 2). Columns: Express and
 * Fastify × fail fast / queue, in memory / on Redis × @Limited alone or BackpressureInterceptor
 * also registered globally (outermost). One app per column.
 *
 * Per app: each route alone first (its answer and handler runs are certain, so no cell passes by
 * being miswired), then all of them at once under load with ~30% of the clients leaving at random
 * moments. The handlers count their own runs (`RunMeter`). Verdicts, per route: the most runs at
 * once ≤ limit; every answer allowed (never a 500: timeouts answer 504); after the load every slot
 * is back, no waiter is left, no run is in progress (and no lease in Redis); and per app no
 * uncaught exception, unhandled rejection or error logged by Nest. Timing shapes the load only.
 *
 * MATRIX_SEED=n replays a load shape; MATRIX_REPORT=1 prints per-gauge peaks and answers.
 */

const SEED = Number(process.env.MATRIX_SEED ?? Math.floor(Math.random() * 2 ** 31));
const REPORT = process.env.MATRIX_REPORT === '1';
const errors = new ErrorLog();
const describeRedis = describeWithRedis();

beforeAll(() => errors.install());
afterAll(() => errors.uninstall());

it('composes the interceptors as the rows say (method decorators: the lower one runs outside)', () => {
  const order = (method: keyof MatrixGateway) =>
    Reflect.getMetadata(INTERCEPTORS_METADATA, MatrixGateway.prototype[method]) as unknown[];
  expect(order('innerTimeout')).toEqual([BackpressureInterceptor, TimeoutTo504]);
  expect(order('outerTimeout')).toEqual([TimeoutTo504, BackpressureInterceptor]);
});

const CELLS: Cell[] = PLATFORMS.flatMap((platform) =>
  KINDS.flatMap((kind) => VARIANTS.map((variant) => ({ platform, kind, variant }))),
);

CELLS.forEach((cell, index) => {
  const remote = isRemote(cell.kind);
  const title = `${cell.variant === 'global' ? 'global BackpressureInterceptor' : '@Limited'} on ${cell.platform}, ${cell.kind}`;
  (remote ? describeRedis : describe)(title, () => {
    const seed = SEED + index;
    const meter = new RunMeter();
    const findings = new Findings();
    let app: MatrixApp | undefined;
    let redis: Redis | undefined;
    const prefix = uniquePrefix('matrix');
    let loaded = false;
    let busy = new Map<string, string>();
    const leases = new Map<string, number>();
    let errorMark = 0;

    beforeAll(async () => {
      errorMark = errors.entries.length;
      errors.phase = `${title}: start`;
      let store: RedisGaugeStore | undefined;
      if (remote) {
        redis = new Redis(REDIS_URL);
        store = new RedisGaugeStore({ redis: REDIS_URL, keyPrefix: prefix, logger: new Logs() });
      }
      app = await startMatrixApp(cell, new Work(meter, seeded(seed)), errors, store);
      if (remote) await warmUp(app, ALL_GAUGES);
    });

    afterAll(async () => {
      const mark = errors.entries.length;
      errors.phase = `${title}: close`;
      await app?.close();
      if (redis) {
        await deleteKeys(redis, prefix);
        await closeClient(redis);
      }
      const late = errors.since(mark);
      if (late.length > 0) throw new Error(`errors while closing:\n${late.join('\n')}`);
    });

    it('lone requests, then the load; every gauge drains', async () => {
      const running = app!;
      const random = seeded(seed * 7 + 1);
      const t0 = Date.now();
      errors.phase = `${title}: lone requests`;
      await Promise.all([
        ...HTTP_ROUTES.map((route) => loneHttp(running, meter, route, remote, findings)),
        loneWs(running, meter, WS_ROUTES, remote, findings),
        loneRpc(running, meter, RPC_ROUTES, remote, findings),
      ]);
      await refusalHttp(running, meter, findings);

      const t1 = Date.now();
      errors.phase = `${title}: load (seed ${seed})`;
      await Promise.all([
        loadHttp(running, HTTP_ROUTES, remote, random, findings),
        loadWs(running, WS_ROUTES, remote, random, findings),
        loadRpc(running, RPC_ROUTES, remote, random, findings),
      ]);

      const t2 = Date.now();
      errors.phase = `${title}: after the load`;
      busy = await settle(running, meter, ALL_GAUGES);
      if (redis) {
        const count = async () => {
          for (const gauge of ALL_GAUGES) {
            leases.set(gauge, await redis!.zcard(`${prefix}{${gauge}}:leases`));
          }
          return [...leases.values()].every((n) => n === 0);
        };
        const deadline = Date.now() + LOAD.settleWithinMs;
        while (!(await count()) && Date.now() < deadline) {
          await sleep(20);
        }
      }
      loaded = true;
      if (REPORT) {
        report(title, seed);
        process.stdout.write(
          `lone ${t1 - t0} ms, load ${t2 - t1} ms, settle ${Date.now() - t2} ms\n`,
        );
      }
    }, 120_000);

    /** Everything wrong with `gauge`'s route, one line each. */
    const verdict = (gauge: string): string[] => {
      if (!loaded) return ['the load did not run to its end (see the test above)'];
      const problems = [...findings.of(gauge)];
      if (meter.peak(gauge) > LIMIT) {
        problems.unshift(`${meter.peak(gauge)} handler runs at once (limit ${LIMIT})`);
      }
      if (busy.has(gauge)) problems.push(`after the load: ${busy.get(gauge)}`);
      if (leases.get(gauge)) problems.push(`after the load: ${leases.get(gauge)} leases in Redis`);
      if (problems.length > 0) problems.push(`(load seed ${seed}: MATRIX_SEED=${SEED} replays it)`);
      return problems;
    };

    /** A row's test: its gauge, its construct, and where it sits in this column. */
    const rows = (routes: readonly { gauge: string; construct: string; outer?: boolean }[]) =>
      routes.map((route) => [
        route.gauge,
        route.outer && cell.variant === 'global'
          ? `${route.construct}, BackpressureInterceptor also global`
          : route.construct,
      ]);

    it.each(rows(HTTP_ROUTES))('HTTP %s: %s', (gauge) => {
      expect(verdict(gauge)).toEqual([]);
    });

    it.each(rows(WS_ROUTES))('WS %s: %s', (gauge) => {
      expect(verdict(gauge)).toEqual([]);
    });

    it.each(rows(RPC_ROUTES))('RPC %s: %s', (gauge) => {
      expect(verdict(gauge)).toEqual([]);
    });

    it('no uncaught exception, unhandled rejection or error logged by Nest', () => {
      expect(errors.since(errorMark)).toEqual([]);
    });

    function report(name: string, usedSeed: number) {
      const lines = ALL_GAUGES.map(
        (gauge) =>
          `${gauge.padEnd(22)} peak ${meter.peak(gauge)}  runs ${String(meter.runs(gauge)).padStart(3)}  ${JSON.stringify(findings.statuses.get(gauge) ?? {})}`,
      );
      process.stdout.write(`\n${name} (seed ${usedSeed})\n${lines.join('\n')}\n`);
    }
  });
});
