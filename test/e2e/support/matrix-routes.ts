import type { INestApplication, Type } from '@nestjs/common';
import { APP_INTERCEPTOR, NestFactory } from '@nestjs/core';
import { Transport, type MicroserviceOptions } from '@nestjs/microservices';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { WsAdapter } from '@nestjs/platform-ws';
import { createServer } from 'node:net';
import {
  BackpressureInterceptor,
  BackpressureModule,
  GaugeRegistry,
  type Gauge,
  type GaugeConfig,
  type GaugeStore,
} from '../../../src';
import type { Platform } from './apps';
import { moduleOf } from './apps';
import {
  GlobalTimeout,
  HTTP_CONTROLLERS,
  LIMIT,
  MatrixGateway,
  RPC_CONTROLLERS,
  Work,
  WS_PATH,
} from './matrix-app';
import type { ErrorLog } from './matrix-meter';

/** How the gauges count: in memory or on Redis, failing fast or queueing. */
export const KINDS = ['fail fast', 'queue', 'redis fail fast', 'redis queue'] as const;
export type Kind = (typeof KINDS)[number];

/**
 * Where BackpressureInterceptor sits: applied by `@Limited` only (`route`), or also registered as
 * the first APP_INTERCEPTOR (`global`), which puts it outside every other interceptor: the
 * controllers' class-level ones and the global timeout then run inside the slot.
 */
export const VARIANTS = ['route', 'global'] as const;
export type Variant = (typeof VARIANTS)[number];

export interface Cell {
  readonly platform: Platform;
  readonly kind: Kind;
  readonly variant: Variant;
}

export const QUEUE = { size: 3, timeoutMs: 100 };

export const isRemote = (kind: Kind) => kind.startsWith('redis');

/** A request sent alone to an idle app, whose answer is certain. */
export interface LoneRequest {
  readonly path: string;
  readonly status: number;
  /** Handler runs it causes. */
  readonly runs: number;
  readonly body?: string | RegExp;
  /**
   * A timeout or race may fire before a remote store grants a slot (its timer against a Redis
   * round trip), so on Redis a run may not have started: `runs` is then a maximum.
   */
  readonly raceWithStore?: boolean;
}

/** One construct around a handler: a route with a gauge of its own. */
export interface HttpRoute {
  readonly gauge: string;
  readonly construct: string;
  /** The construct sits outside @Limited (so inside the slot when BackpressureInterceptor is global). */
  readonly outer?: boolean;
  /** The path of the `i`th request of the load (`random` picks its variant: fail, hit, deny...). */
  load(i: number, random: () => number): string;
  /** Statuses an answer under load may have, besides refusals (429, and 503 on Redis). */
  readonly answers: readonly number[];
  readonly lone: readonly LoneRequest[];
  /** This route's load, where it differs from LOAD's (more requests, other aborts). */
  readonly shape?: { requests?: number; abortRate?: number; abortWithinMs?: number };
}

const outside = 'class @UseInterceptors, method @Limited';
const inside = 'class @Limited, method @UseInterceptors';
const chance = (random: () => number, p: number) => (random() < p ? '1' : '0');

/** Routes whose construct is the same in every variant except where the gauge sits. */
function interceptorRows(where: 'outer' | 'inner', placement: string): HttpRoute[] {
  const timed = where === 'outer';
  const rows: HttpRoute[] = [
    {
      gauge: `${where}-timeout`,
      construct: `rxjs timeout → 504 over a slower promise (${placement})`,
      load: () => (timed ? '/outer-timeout/promise' : '/inner-timeout'),
      answers: [504],
      lone: [
        {
          path: timed ? '/outer-timeout/promise' : '/inner-timeout',
          status: 504,
          runs: 1,
          raceWithStore: timed,
        },
      ],
    },
    {
      gauge: `${where}-timeout-file`,
      construct: `rxjs timeout → 504 over a StreamableFile returned late (${placement})`,
      load: () => (timed ? '/outer-timeout/file' : '/inner-timeout-file'),
      answers: [504],
      lone: [
        {
          path: timed ? '/outer-timeout/file' : '/inner-timeout-file',
          status: 504,
          runs: 1,
          raceWithStore: timed,
        },
      ],
    },
    {
      gauge: `${where}-fallback`,
      construct: `timeout + catchError → fallback value (${placement})`,
      load: () => `/${where}-fallback`,
      answers: [200],
      lone: [
        {
          path: `/${where}-fallback`,
          status: 200,
          runs: 1,
          body: 'fallback',
          raceWithStore: timed,
        },
      ],
    },
    {
      gauge: `${where}-retry`,
      construct: `retry(2) over a handler failing 0-3 times (${placement})`,
      load: (i, random) => `/${where}-retry?id=load-${i}&fail=${Math.floor(random() * 4)}`,
      answers: [200, 409],
      lone: [
        { path: `/${where}-retry?id=lone-1&fail=1`, status: 200, runs: 2, body: 'ok' },
        { path: `/${where}-retry?id=lone-3&fail=3`, status: 409, runs: 3 },
      ],
    },
    {
      gauge: `${where}-timeout-retry`,
      construct: `timeout + retry(1): a second run while the first still works (${placement})`,
      load: () => `/${where}-timeout-retry`,
      answers: [504],
      // The retry's run needs a slot of its own, taken while its timeout runs.
      lone: [{ path: `/${where}-timeout-retry`, status: 504, runs: 2, raceWithStore: true }],
    },
    {
      gauge: `${where}-cache`,
      construct: `a cache that answers ?hit=1 without calling the handler (${placement})`,
      load: (_i, random) => `/${where}-cache?hit=${chance(random, 0.5)}`,
      answers: [200],
      lone: [
        { path: `/${where}-cache?hit=1`, status: 200, runs: 0, body: 'cached' },
        { path: `/${where}-cache?hit=0`, status: 200, runs: 1, body: 'fresh' },
      ],
    },
    {
      gauge: `${where}-race`,
      construct: `race(handler, a faster cache) (${placement})`,
      load: () => `/${where}-race`,
      answers: [200],
      lone: [
        { path: `/${where}-race`, status: 200, runs: 1, body: 'cached', raceWithStore: timed },
      ],
    },
    {
      gauge: `${where}-take`,
      construct: `take(1) over an Observable stream (${placement})`,
      load: () => `/${where}-take`,
      answers: [200],
      lone: [{ path: `/${where}-take`, status: 200, runs: 1, body: 'tick0' }],
    },
  ];
  return rows.map((row) => ({ ...row, outer: timed }));
}

export const HTTP_ROUTES: readonly HttpRoute[] = [
  ...interceptorRows('outer', outside),
  {
    gauge: 'outer-timeout-stream',
    construct: `rxjs timeout → 504 over a stream slow to start (${outside})`,
    outer: true,
    load: () => '/outer-timeout/stream',
    answers: [504],
    lone: [{ path: '/outer-timeout/stream', status: 504, runs: 1, raceWithStore: true }],
  },
  {
    gauge: 'global-timeout',
    construct: 'APP_INTERCEPTOR timeout → 504 over a slower promise (method @Limited)',
    outer: true,
    load: () => '/global-timeout',
    answers: [504],
    lone: [{ path: '/global-timeout', status: 504, runs: 1, raceWithStore: true }],
  },
  ...interceptorRows('inner', inside),
  {
    gauge: 'plain',
    construct: 'a promise handler (baseline)',
    load: () => '/plain/promise',
    answers: [200],
    lone: [{ path: '/plain/promise', status: 200, runs: 1, body: 'done' }],
  },
  {
    gauge: 'observable',
    construct: 'an Observable handler (4 values)',
    load: () => '/plain/observable',
    answers: [200],
    lone: [{ path: '/plain/observable', status: 200, runs: 1, body: 'tick3' }],
  },
  {
    gauge: 'guarded',
    construct: 'an async guard that denies ?deny=1 (403)',
    load: (_i, random) => `/plain/guarded?deny=${chance(random, 0.3)}`,
    answers: [200, 403],
    lone: [
      { path: '/plain/guarded?deny=1', status: 403, runs: 0 },
      { path: '/plain/guarded?deny=0', status: 200, runs: 1, body: 'done' },
    ],
  },
  {
    gauge: 'pipe-int',
    construct: 'ParseIntPipe failing on /x (400)',
    load: (_i, random) => `/plain/pipe-int/${random() < 0.3 ? 'x' : '7'}`,
    answers: [200, 400],
    lone: [
      { path: '/plain/pipe-int/x', status: 400, runs: 0 },
      { path: '/plain/pipe-int/7', status: 200, runs: 1, body: '{"n":14}' },
    ],
  },
  {
    gauge: 'pipe-slow',
    construct: 'an async pipe that takes 20 ms',
    load: () => '/plain/pipe-slow?n=1',
    answers: [200],
    lone: [{ path: '/plain/pipe-slow?n=1', status: 200, runs: 1, body: 'n=1' }],
  },
  {
    gauge: 'filtered',
    construct: '@UseFilters(@Catch() filter) answering a failed handler with 409',
    load: (_i, random) => `/plain/filtered?fail=${chance(random, 0.4)}`,
    answers: [200, 409],
    lone: [
      { path: '/plain/filtered?fail=1', status: 409, runs: 1 },
      { path: '/plain/filtered?fail=0', status: 200, runs: 1, body: 'done' },
    ],
  },
  {
    gauge: 'res',
    construct: '@Res(): the handler sends the answer itself, late',
    load: () => '/plain/res',
    answers: [200],
    lone: [{ path: '/plain/res', status: 200, runs: 1, body: 'sent' }],
  },
  {
    gauge: 'sse-sync',
    construct: '@Sse() returning an interval stream',
    load: () => '/plain/sse-sync',
    answers: [200],
    lone: [{ path: '/plain/sse-sync', status: 200, runs: 1, body: /data: tick3/ }],
  },
  {
    gauge: 'sse-async',
    construct: 'async @Sse(): awaits, then returns a stream (clients leave while it awaits)',
    load: () => '/plain/sse-async',
    answers: [200],
    // Half the clients leave, most during the handler's 30-60 ms await.
    shape: { requests: 40, abortRate: 0.5, abortWithinMs: 70 },
    lone: [{ path: '/plain/sse-async', status: 200, runs: 1, body: /data: tick2/ }],
  },
  {
    gauge: 'file',
    construct: 'StreamableFile of a slow stream',
    load: () => '/plain/file',
    answers: [200],
    lone: [{ path: '/plain/file', status: 200, runs: 1, body: 'chunk1;chunk2;chunk3;chunk4;' }],
  },
];

/** A WebSocket message handler; each socket of the load sends one kind only. */
export interface WsRoute {
  readonly gauge: string;
  readonly construct: string;
  readonly outer?: boolean;
  /** Replies with several `tick`s, the last marked `last`, instead of one `done`. */
  readonly stream: boolean;
  /** statusCodes an `exception` may carry, besides refusals. */
  readonly answers: readonly number[];
  /** The lone message's reply: `done`, the ticks, or an exception with this statusCode. */
  readonly lone: { readonly exception?: number; readonly runs: number; raceWithStore?: boolean };
}

export const WS_ROUTES: readonly WsRoute[] = [
  {
    gauge: 'ws-plain',
    construct: '@SubscribeMessage promise handler',
    stream: false,
    answers: [],
    lone: { runs: 1 },
  },
  {
    gauge: 'ws-inner-timeout',
    construct: '@SubscribeMessage, timeout → 504 inside @Limited (method @UseInterceptors above)',
    stream: false,
    answers: [504],
    lone: { exception: 504, runs: 1 },
  },
  {
    gauge: 'ws-outer-timeout',
    construct: '@SubscribeMessage, timeout → 504 outside @Limited (method @UseInterceptors below)',
    outer: true,
    stream: false,
    answers: [504],
    lone: { exception: 504, runs: 1, raceWithStore: true },
  },
  {
    gauge: 'ws-stream',
    construct: '@SubscribeMessage returning a stream, sockets closing mid-stream',
    stream: true,
    answers: [],
    lone: { runs: 1 },
  },
];

/** A TCP microservice `@MessagePattern` handler. */
export interface RpcRoute {
  readonly gauge: string;
  readonly construct: string;
  readonly outer?: boolean;
  readonly answers: readonly number[];
  readonly lone: { readonly error?: number; readonly runs: number; raceWithStore?: boolean };
}

export const RPC_ROUTES: readonly RpcRoute[] = [
  {
    gauge: 'rpc-plain',
    construct: '@MessagePattern promise handler',
    answers: [],
    lone: { runs: 1 },
  },
  {
    gauge: 'rpc-inner-timeout',
    construct: '@MessagePattern, timeout → 504 inside @Limited (class @Limited)',
    answers: [504],
    lone: { error: 504, runs: 1 },
  },
  {
    gauge: 'rpc-outer-timeout',
    construct: '@MessagePattern, timeout → 504 outside @Limited (class @UseInterceptors)',
    outer: true,
    answers: [504],
    lone: { error: 504, runs: 1, raceWithStore: true },
  },
];

export const ALL_GAUGES = [
  ...HTTP_ROUTES.map((route) => route.gauge),
  ...WS_ROUTES.map((route) => route.gauge),
  ...RPC_ROUTES.map((route) => route.gauge),
];

/** Each gauge's config in `kind`. */
export function gaugeConfig(kind: Kind): GaugeConfig {
  return kind.endsWith('queue') ? { limit: LIMIT, queue: QUEUE } : { limit: LIMIT };
}

/** A started matrix app: HTTP, a WebSocket gateway and a TCP microservice. */
export interface MatrixApp {
  readonly app: INestApplication;
  readonly url: string;
  readonly wsUrl: string;
  readonly rpcPort: number;
  gauge(name: string): Gauge;
  close(): Promise<void>;
}

/** A free loopback port: listen on 0, read the port, close. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Builds and starts the app of `cell`, its handlers doing `work`, its errors logged to `log`. */
export async function startMatrixApp(
  cell: Cell,
  work: Work,
  log: ErrorLog,
  store?: GaugeStore,
): Promise<MatrixApp> {
  const gauges = Object.fromEntries(ALL_GAUGES.map((name) => [name, gaugeConfig(cell.kind)]));
  const interceptors =
    cell.variant === 'global'
      ? [
          { provide: APP_INTERCEPTOR, useExisting: BackpressureInterceptor },
          { provide: APP_INTERCEPTOR, useClass: GlobalTimeout },
        ]
      : [{ provide: APP_INTERCEPTOR, useClass: GlobalTimeout }];
  const module: Type = moduleOf({
    imports: [BackpressureModule.forRoot({ gauges, ...(store ? { store } : {}) })],
    controllers: [...HTTP_CONTROLLERS, ...RPC_CONTROLLERS],
    providers: [{ provide: Work, useValue: work }, MatrixGateway, ...interceptors],
  });
  const adapter = cell.platform === 'express' ? new ExpressAdapter() : new FastifyAdapter();
  // forceCloseConnections: a leaked request must not hang close().
  const app = await NestFactory.create(module, adapter, {
    logger: log,
    forceCloseConnections: true,
  });
  app.useWebSocketAdapter(new WsAdapter(app));
  const rpcPort = await freePort();
  app.connectMicroservice<MicroserviceOptions>(
    { transport: Transport.TCP, options: { host: '127.0.0.1', port: rpcPort } },
    { inheritAppConfig: true },
  );
  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  const registry = app.get(GaugeRegistry);
  return {
    app,
    url,
    wsUrl: url.replace(/^http/, 'ws') + WS_PATH,
    rpcPort,
    gauge: (name) => registry.get(name),
    close: () => app.close(),
  };
}
