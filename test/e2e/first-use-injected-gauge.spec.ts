import 'reflect-metadata';
import {
  ArgumentsHost,
  Catch,
  Controller,
  Get,
  Injectable,
  UseFilters,
  type ExceptionFilter,
  type INestApplication,
  type INestMicroservice,
} from '@nestjs/common';
import { APP_FILTER, NestFactory } from '@nestjs/core';
import {
  ClientProxyFactory,
  MessagePattern,
  Transport,
  type ClientProxy,
} from '@nestjs/microservices';
import { WsAdapter } from '@nestjs/platform-ws';
import { SubscribeMessage, WebSocketGateway, type OnGatewayConnection } from '@nestjs/websockets';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { firstValueFrom } from 'rxjs';
import WebSocket from 'ws';
import {
  BackpressureModule,
  GaugeErrorFilter,
  GaugeUnavailableError,
  InjectGauge,
  Limited,
  PressureGauge,
  type Gauge,
  type GaugeStore,
  type ResolvedGaugeOptions,
} from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';

/**
 * The README's first steps: a service limits its work with an injected gauge, and a refusal is a
 * 429 (503 when the store is down) without the application registering any filter.
 */

@Injectable()
class ExportService {
  constructor(
    @InjectGauge('exports') private readonly gauge: Gauge,
    private readonly probe: Probe,
  ) {}

  run(label = 'export'): Promise<string> {
    return this.gauge.process(async () => {
      await this.probe.enter(label);
      return 'exported';
    });
  }
}

@Controller()
class ExportController {
  constructor(private readonly service: ExportService) {}

  @Get('export')
  export() {
    return this.service.run();
  }

  @Get('boom')
  boom() {
    throw new Error('boom');
  }
}

/** A store whose gauges are "down": every acquire fails as an unreachable shared store does. */
class DownStore implements GaugeStore {
  createGauge(options: ResolvedGaugeOptions): Gauge {
    const gauge = new PressureGauge(options);
    const unavailable = () => {
      throw new GaugeUnavailableError(options.name, 'the store is down', 4);
    };
    return Object.assign(gauge, { acquire: unavailable, process: async () => unavailable() });
  }
}

/** A user's own catch-all filter: answers 418 naming what it caught. */
@Catch()
class CatchAll implements ExceptionFilter {
  catch(error: unknown, host: ArgumentsHost) {
    const response = host.switchToHttp().getResponse<{
      status?: (code: number) => { send: (body: unknown) => void };
      code?: (code: number) => { send: (body: unknown) => void };
    }>();
    const body = { caughtBy: 'CatchAll', error: (error as Error).constructor.name };
    // Express's response has status(), Fastify's reply has code().
    (response.code ?? response.status)!.call(response, 418).send(body);
  }
}

/** One raw HTTP answer: status, header names in the order sent, headers, body. */
function rawGet(baseUrl: string, path: string) {
  return new Promise<{
    status: number;
    headerNames: string[];
    headers: Record<string, unknown>;
    body: string;
  }>((resolve, reject) => {
    const req = httpRequest(new URL(path, baseUrl), { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headerNames: res.rawHeaders.filter((_, i) => i % 2 === 0).map((h) => h.toLowerCase()),
          headers: res.headers,
          body,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * The refusal the README's quick start shows, as sent: its first headers in order (Express's
 * X-Powered-By, Retry-After, Content-Type, Content-Length; ETag, Date, Connection follow) and
 * Nest's error body with its keys in the order Nest writes them.
 */
function expectReadmeRefusal(
  platform: string,
  reply: Awaited<ReturnType<typeof rawGet>>,
  retryAfter: string,
) {
  expect(reply.status).toBe(429);
  expect(reply.body).toBe(
    '{"message":"Too many requests","error":"Too Many Requests","statusCode":429,"reason":"full"}',
  );
  expect(reply.headers).toMatchObject({
    'retry-after': retryAfter,
    'content-type': 'application/json; charset=utf-8',
    'content-length': '92',
  });
  const head = platform === 'express' ? ['x-powered-by'] : [];
  const shown = [...head, 'retry-after', 'content-type', 'content-length'];
  expect(reply.headerNames.slice(0, shown.length)).toEqual(shown);
}

/** The README's quick start: `@Limited('reports')` under `BackpressureModule.forRoot()`. */
@Controller()
class ReportController {
  constructor(private readonly probe: Probe) {}

  @Get('report')
  @Limited('reports')
  async report() {
    await this.probe.enter('report');
    return 'report';
  }
}

describe.each(PLATFORMS)("the README's quick start on %s", (platform) => {
  it('the 11th concurrent request gets the 429 the README shows', async () => {
    const probe = new Probe();
    const running = await startApp(
      platform as Platform,
      moduleOf({
        imports: [BackpressureModule.forRoot()],
        controllers: [ReportController],
        providers: [{ provide: Probe, useValue: probe }],
      }),
    );
    try {
      const calls = Array.from({ length: 10 }, () => send(running.url, '/report'));
      await until(() => probe.entered.length === 10, 'ten reports run');
      expectReadmeRefusal(platform, await rawGet(running.url, '/report'), '1');
      probe.passAll();
      for (const call of calls) expect((await call.reply).status).toBe(200);
    } finally {
      probe.passAll();
      await running.close();
    }
  });
});

describe.each(PLATFORMS)('an injected gauge refused, no filter registered, on %s', (platform) => {
  let probe: Probe;
  let running: Running | undefined;

  async function start(
    options: Parameters<typeof BackpressureModule.forRoot>[0],
    extra: { providers?: unknown[]; setup?: (app: INestApplication) => void } = {},
  ): Promise<Running> {
    probe = new Probe();
    const module = moduleOf({
      imports: [BackpressureModule.forRoot(options)],
      controllers: [ExportController],
      providers: [
        ExportService,
        { provide: Probe, useValue: probe },
        ...((extra.providers ?? []) as []),
      ],
    });
    return (running = await startApp(platform as Platform, module, extra.setup));
  }

  afterEach(async () => {
    probe.openAll();
    await running?.close();
    running = undefined;
  });

  it('answers 429 with Retry-After and the body the README shows', async () => {
    const app = await start({ gauges: { exports: { limit: 1, retryAfterSeconds: 7 } } });
    const first = send(app.url, '/export');
    await until(() => probe.entered.length === 1, 'the first export runs');

    expectReadmeRefusal(platform, await rawGet(app.url, '/export'), '7');

    probe.passAll();
    expect((await first.reply).body).toBe('exported');
    expect(app.gauge('exports')).toMatchObject({ inFlight: 0, admitted: 1, rejected: 1 });
  });

  it('answers 503 with Retry-After when the store cannot decide', async () => {
    const app = await start({ gauges: { exports: { store: new DownStore() } } });
    const refused = await send(app.url, '/export').reply;
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('4');
    expect(JSON.parse(refused.body)).toEqual({
      statusCode: 503,
      message: 'Service unavailable',
      error: 'Service Unavailable',
      reason: 'unavailable',
    });
  });

  it('errorFilter: false leaves gauge errors to the application (Nest answers 500)', async () => {
    const app = await start({ gauges: { exports: { limit: 1 } }, errorFilter: false });
    const first = send(app.url, '/export');
    await until(() => probe.entered.length === 1, 'the first export runs');
    expect((await send(app.url, '/export').reply).status).toBe(500);
    probe.passAll();
    await first.reply;
  });

  it("a catch-all APP_FILTER of the root module keeps its own errors; gauge errors are the library's", async () => {
    const app = await start(
      { gauges: { exports: { limit: 1 } } },
      { providers: [{ provide: APP_FILTER, useClass: CatchAll }] },
    );
    const boom = await send(app.url, '/boom').reply;
    expect(boom.status).toBe(418);
    expect(JSON.parse(boom.body)).toEqual({ caughtBy: 'CatchAll', error: 'Error' });
    const missing = await send(app.url, '/nowhere').reply;
    expect(missing.status).toBe(418);
    expect(JSON.parse(missing.body)).toEqual({ caughtBy: 'CatchAll', error: 'NotFoundException' });

    const first = send(app.url, '/export');
    await until(() => probe.entered.length === 1, 'the first export runs');
    const refused = await send(app.url, '/export').reply;
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    probe.passAll();
    expect((await first.reply).status).toBe(200);
  });

  it.each([
    ['before', 429, undefined],
    ['after', 418, 'GaugeExhaustedError'],
  ])(
    'a catch-all APP_FILTER in a module imported %s BackpressureModule: a gauge refusal is a %d',
    async (order, status, caught) => {
      probe = new Probe();
      const filters = moduleOf({ providers: [{ provide: APP_FILTER, useClass: CatchAll }] });
      const backpressure = BackpressureModule.forRoot({ gauges: { exports: { limit: 1 } } });
      const module = moduleOf({
        imports: order === 'before' ? [filters, backpressure] : [backpressure, filters],
        controllers: [ExportController],
        providers: [ExportService, { provide: Probe, useValue: probe }],
      });
      const app = (running = await startApp(platform as Platform, module));
      expect(JSON.parse((await send(app.url, '/boom').reply).body)).toEqual({
        caughtBy: 'CatchAll',
        error: 'Error',
      });
      const first = send(app.url, '/export');
      await until(() => probe.entered.length === 1, 'the first export runs');
      const refused = await send(app.url, '/export').reply;
      expect(refused.status).toBe(status);
      if (caught) expect(JSON.parse(refused.body)).toEqual({ caughtBy: 'CatchAll', error: caught });
      probe.passAll();
      await first.reply;
    },
  );

  it('a catch-all from app.useGlobalFilters() is asked first: it sees its own errors and gauge errors', async () => {
    const app = await start(
      { gauges: { exports: { limit: 1 } } },
      { setup: (nest) => nest.useGlobalFilters(new CatchAll()) },
    );
    const boom = await send(app.url, '/boom').reply;
    expect(JSON.parse(boom.body)).toEqual({ caughtBy: 'CatchAll', error: 'Error' });

    const first = send(app.url, '/export');
    await until(() => probe.entered.length === 1, 'the first export runs');
    const refused = await send(app.url, '/export').reply;
    expect(refused.status).toBe(418);
    expect(JSON.parse(refused.body)).toEqual({
      caughtBy: 'CatchAll',
      error: 'GaugeExhaustedError',
    });
    probe.passAll();
    await first.reply;
  });
});

/** A free loopback port: listen on 0, read the port, close. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

@Controller()
class ExportHandler {
  constructor(private readonly service: ExportService) {}

  @MessagePattern('export')
  export(label: string) {
    return this.service.run(label);
  }
}

describe('an injected gauge refused in a @MessagePattern handler (TCP microservice)', () => {
  let probe: Probe;
  let service: INestMicroservice;
  let client: ClientProxy;

  beforeEach(async () => {
    probe = new Probe();
    const port = await freePort();
    service = await NestFactory.createMicroservice(
      moduleOf({
        imports: [BackpressureModule.forRoot({ gauges: { exports: { limit: 1 } } })],
        controllers: [ExportHandler],
        providers: [ExportService, { provide: Probe, useValue: probe }],
      }),
      { transport: Transport.TCP, options: { host: '127.0.0.1', port }, logger: false },
    );
    await service.listen();
    client = ClientProxyFactory.create({
      transport: Transport.TCP,
      options: { host: '127.0.0.1', port },
    });
    await client.connect();
  });

  afterEach(async () => {
    probe.openAll();
    client.close();
    await service.close();
  });

  it('the client gets the RefusalPayload a @Limited refusal sends', async () => {
    const first = firstValueFrom(client.send<string>('export', 'a'));
    await until(() => probe.entered.length === 1, 'the first export runs');
    await expect(firstValueFrom(client.send('export', 'b'))).rejects.toEqual({
      status: 'error',
      statusCode: 429,
      error: 'Too Many Requests',
      message: 'Too many requests',
      retryAfterSeconds: 1,
      reason: 'full',
    });
    probe.passAll();
    expect(await first).toBe('exported');
  });
});

/** Nest applies no global filter to gateways: one whose handlers use gauges names the filter. */
@WebSocketGateway({ path: '/ws' })
@UseFilters(GaugeErrorFilter)
class ExportGateway implements OnGatewayConnection {
  constructor(private readonly service: ExportService) {}

  /** NestJS 11 emits 'exception' on the server-side socket; forward it (see websocket.spec). */
  handleConnection(client: WebSocket) {
    client.on('exception', (data: unknown) =>
      client.send(JSON.stringify({ event: 'exception', data })),
    );
  }

  @SubscribeMessage('export')
  async export() {
    return { event: 'exported', data: await this.service.run() };
  }
}

describe.each(PLATFORMS)('an injected gauge refused in a gateway on %s', (platform) => {
  let probe: Probe;
  let running: Running;

  beforeEach(async () => {
    probe = new Probe();
    const module = moduleOf({
      imports: [BackpressureModule.forRoot({ gauges: { exports: { limit: 1 } } })],
      providers: [ExportGateway, ExportService, { provide: Probe, useValue: probe }],
    });
    running = await startApp(platform as Platform, module, (app) =>
      app.useWebSocketAdapter(new WsAdapter(app)),
    );
  });

  afterEach(async () => {
    probe.openAll();
    await running.close();
  });

  it("the client gets an 'exception' event with the RefusalPayload", async () => {
    const socket = new WebSocket(running.url.replace('http', 'ws') + '/ws');
    const received: unknown[] = [];
    socket.on('message', (raw) => received.push(JSON.parse(String(raw))));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));

    socket.send(JSON.stringify({ event: 'export' }));
    await until(() => probe.entered.length === 1, 'the first export runs');
    socket.send(JSON.stringify({ event: 'export' }));
    await until(() => received.length === 1, 'the refusal arrives');
    expect(received[0]).toEqual({
      event: 'exception',
      data: {
        status: 'error',
        statusCode: 429,
        error: 'Too Many Requests',
        message: 'Too many requests',
        retryAfterSeconds: 1,
        reason: 'full',
      },
    });
    probe.passAll();
    await until(() => received.length === 2, 'the first answer arrives');
    expect(received[1]).toEqual({ event: 'exported', data: 'exported' });
    socket.close();
  });
});
