import 'reflect-metadata';
import { Controller, Get, Injectable, Query, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, MessagePattern, Transport } from '@nestjs/microservices';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import {
  BackpressureModule,
  GaugeConfigError,
  GaugeRegistry,
  InjectGauge,
  Limited,
  PressureGauge,
  type Gauge,
  type GaugeStore,
  type ResolvedGaugeOptions,
} from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform } from './support/apps';
import { get } from './support/http';

const MISSING_DRIVER = `Cannot find module 'ioredis'`;

/**
 * A store standing in for one whose driver is missing: `createGauge` throws for the names
 * `fails(name)` picks (each call is asked anew, so a store can fail once and then recover).
 * `@InjectGauge` names are provided in every app of the process, so each test picks its names.
 */
class BrokenStore implements GaugeStore {
  readonly created: string[] = [];
  constructor(private readonly fails: (name: string) => boolean) {}

  createGauge(options: ResolvedGaugeOptions): Gauge {
    this.created.push(options.name);
    if (this.fails(options.name)) throw new Error(MISSING_DRIVER);
    return new PressureGauge(options);
  }
}

@Controller('orders')
class OrdersController {
  @Get()
  @Limited('orders')
  list() {
    return 'orders';
  }
}

@Controller('invoices')
@Limited('invoices')
class InvoicesController {
  /** Discovery must never run a getter: it reads property descriptors. */
  get explosive(): never {
    throw new Error('a getter was run');
  }

  @Get()
  list() {
    return 'invoices';
  }
}

class BaseReports {
  @Get()
  @Limited('reports')
  list() {
    return 'reports';
  }
}

@Controller('reports')
class ReportsController extends BaseReports {}

@Controller()
class RpcHandlers {
  @MessagePattern('sum')
  @Limited('rpc-sum')
  sum(values: number[]) {
    return values.reduce((a, b) => a + b, 0);
  }

  @EventPattern('audit')
  @Limited('rpc-audit')
  audit(_event: unknown) {
    return undefined;
  }
}

@WebSocketGateway({ path: '/ws' })
class WorkGateway {
  @SubscribeMessage('work')
  @Limited('ws-work')
  work() {
    return 'done';
  }
}

@Injectable()
class PdfService {
  constructor(@InjectGauge('pdf-only-injected') readonly gauge: Gauge) {}
}

/** Builds the module with every gauge on `store`. */
function appModule(store: GaugeStore, parts: { controllers?: Type[]; providers?: Type[] }) {
  return moduleOf({ imports: [BackpressureModule.forRoot({ store })], ...parts });
}

async function failure(creating: Promise<unknown>): Promise<Error> {
  const error = await creating.then(
    () => new Error('the app started'),
    (caught: unknown) => caught as Error,
  );
  expect(error).toBeInstanceOf(GaugeConfigError);
  return error;
}

const ROUTES: Array<[string, Type, string, RegExp]> = [
  ['a method', OrdersController, 'orders', /@Limited\("orders"\) on OrdersController\.list: /],
  ['a class', InvoicesController, 'invoices', /@Limited\("invoices"\) on InvoicesController: /],
  [
    'an inherited method',
    ReportsController,
    'reports',
    /@Limited\("reports"\) on ReportsController\.list: /,
  ],
];

describe.each(PLATFORMS)('a gauge only named by @Limited on %s', (platform: Platform) => {
  const create = (module: Type) =>
    NestFactory.create(
      module,
      platform === 'express' ? new ExpressAdapter() : new FastifyAdapter(),
      {
        logger: false,
        abortOnError: false,
      },
    );

  it.each(ROUTES)(
    'on %s: a store that cannot build it fails NestFactory.create, naming gauge and handler',
    async (_where, controller, name, location) => {
      const store = new BrokenStore((failing) => failing === name);
      const error = await failure(create(appModule(store, { controllers: [controller] })));
      expect(error.message).toMatch(location);
      expect(error.message).toContain(`Gauge "${name}": its store could not create it`);
      expect(error.message).toContain(MISSING_DRIVER);
    },
  );

  it('a WebSocket gateway handler: the same, at NestFactory.create', async () => {
    const store = new BrokenStore((name) => name === 'ws-work');
    const error = await failure(create(appModule(store, { providers: [WorkGateway] })));
    expect(error.message).toMatch(/@Limited\("ws-work"\) on WorkGateway\.work: Gauge "ws-work"/);
  });

  it('on a working store it exists before the first request, built once', async () => {
    const store = new BrokenStore(() => false);
    const running = await startApp(
      platform,
      appModule(store, { controllers: ROUTES.map((r) => r[1]) }),
    );
    try {
      const registry = running.app.get(GaugeRegistry);
      for (const name of ['orders', 'invoices', 'reports']) expect(registry.has(name)).toBe(true);
      expect((await get(running.url, '/orders')).status).toBe(200);
      for (const name of ['orders', 'invoices', 'reports']) {
        expect(store.created.filter((created) => created === name)).toHaveLength(1);
      }
    } finally {
      await running.close();
    }
  });
});

describe('gauges named outside HTTP controllers are built at bootstrap too', () => {
  it.each([
    [
      '@MessagePattern',
      (name: string) => name === 'rpc-sum',
      /on RpcHandlers\.sum: Gauge "rpc-sum"/,
    ],
    [
      '@EventPattern',
      (name: string) => name === 'rpc-audit',
      /on RpcHandlers\.audit: Gauge "rpc-audit"/,
    ],
  ])('%s: NestFactory.createMicroservice fails', async (_kind, fails, message) => {
    const module = appModule(new BrokenStore(fails), { controllers: [RpcHandlers] });
    const error = await failure(
      NestFactory.createMicroservice(module, {
        transport: Transport.TCP,
        options: { host: '127.0.0.1', port: 0 },
        logger: false,
        abortOnError: false,
      }),
    );
    expect(error.message).toMatch(message);
  });

  it('@InjectGauge: compile() fails naming the gauge', async () => {
    const compiling = Test.createTestingModule({
      imports: [
        BackpressureModule.forRoot({
          store: new BrokenStore((name) => name === 'pdf-only-injected'),
        }),
      ],
      providers: [PdfService],
    }).compile();
    const error = await failure(compiling);
    expect(error.message).toMatch(/Gauge "pdf-only-injected": its store could not create it/);
  });

  it('a gauge configured on its own broken store fails compile(), naming it', async () => {
    const compiling = Test.createTestingModule({
      imports: [
        BackpressureModule.forRoot({ gauges: { api: { store: new BrokenStore(() => true) } } }),
      ],
    }).compile();
    const error = await failure(compiling);
    expect(error.message).toMatch(/^Gauge "api": its store could not create it: Cannot find/);
  });
});

@Controller()
class LookupController {
  constructor(private readonly registry: GaugeRegistry) {}

  @Get('run')
  run(@Query('name') name: string) {
    return this.registry.get(name).process(() => 'ran');
  }
}

describe.each(PLATFORMS)('a store failing at run time on %s', (platform: Platform) => {
  it('fails that request only: a later one that the store can serve gets 200, never 429', async () => {
    const attempts = new Map<string, number>();
    const store = new BrokenStore((name) => {
      const attempt = (attempts.get(name) ?? 0) + 1;
      attempts.set(name, attempt);
      return name === 'broken' || (name === 'flaky' && attempt === 1);
    });
    const running = await startApp(platform, appModule(store, { controllers: [LookupController] }));
    try {
      const registry = running.app.get(GaugeRegistry);
      expect((await get(running.url, '/run?name=flaky')).status).toBe(500);
      expect(registry.has('flaky')).toBe(false);
      expect((await get(running.url, '/run?name=flaky')).status).toBe(200);
      expect((await get(running.url, '/run?name=flaky')).status).toBe(200);

      const statuses = [];
      for (let i = 0; i < 3; i++)
        statuses.push((await get(running.url, '/run?name=broken')).status);
      expect(statuses).toEqual([500, 500, 500]);
      expect(registry.has('broken')).toBe(false);
    } finally {
      await running.close();
    }
  });
});
