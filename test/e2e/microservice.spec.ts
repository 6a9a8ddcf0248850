import 'reflect-metadata';
import { Controller, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ClientProxyFactory,
  MessagePattern,
  RpcException,
  Transport,
  type ClientProxy,
} from '@nestjs/microservices';
import { createServer } from 'node:net';
import { firstValueFrom } from 'rxjs';
import { BackpressureModule, GaugeRegistry, Limited, type Gauge } from '../../src';
import { moduleOf } from './support/apps';
import { Probe } from './support/probe';
import { until } from '../support/wait';

/** A free loopback port: listen on 0, read the port, close. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

@Controller()
class WorkHandler {
  constructor(private readonly probe: Probe) {}

  @MessagePattern('work')
  @Limited('rpc')
  async work(id: string) {
    await this.probe.enter(id);
    return `done ${id}`;
  }

  @MessagePattern('fail')
  @Limited('rpc')
  async fail() {
    await this.probe.enter('fail');
    throw new RpcException({ status: 'error', message: 'failed' });
  }
}

describe('a @MessagePattern handler under @Limited (TCP microservice)', () => {
  let probe: Probe;
  let service: INestMicroservice;
  let client: ClientProxy;
  let gauge: Gauge;

  beforeEach(async () => {
    probe = new Probe();
    const port = await freePort();
    const module = moduleOf({
      imports: [BackpressureModule.forRoot({ gauges: { rpc: { limit: 1 } } })],
      controllers: [WorkHandler],
      providers: [{ provide: Probe, useValue: probe }],
    });
    service = await NestFactory.createMicroservice(module, {
      transport: Transport.TCP,
      options: { host: '127.0.0.1', port },
      logger: false,
    });
    await service.listen();
    gauge = service.get(GaugeRegistry).get('rpc');
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

  /** Sends `work`; a call left pending when a test fails is rejected at close, not unhandled. */
  const call = (id: string) => {
    const answer = firstValueFrom(client.send<string>('work', id));
    answer.catch(() => undefined);
    return answer;
  };

  it('answers an RPC error with statusCode 429 when full, and keeps serving', async () => {
    const first = call('a');
    await until(() => probe.entered.length === 1, 'the handler runs');

    await expect(call('b')).rejects.toEqual({
      status: 'error',
      statusCode: 429,
      error: 'Too Many Requests',
      message: 'Too many requests',
      retryAfterSeconds: 1,
      reason: 'full',
    });
    expect(probe.entered).toEqual(['a']);
    expect(gauge).toMatchObject({ inFlight: 1, rejected: 1 });

    probe.pass('a');
    expect(await first).toBe('done a');
    await until(() => gauge.inFlight === 0, 'the slot is free');

    const next = call('c');
    await until(() => probe.entered.length === 2, 'the next handler runs');
    probe.pass('c');
    expect(await next).toBe('done c');
    expect(gauge).toMatchObject({ inFlight: 0, admitted: 2, rejected: 1 });
  });

  it('a handler that fails frees its slot', async () => {
    const failing = firstValueFrom(client.send('fail', {}));
    failing.catch(() => undefined);
    await until(() => probe.entered.length === 1, 'the handler runs');
    expect(gauge.inFlight).toBe(1);
    probe.pass('fail');
    await expect(failing).rejects.toEqual({ status: 'error', message: 'failed' });
    await until(() => gauge.inFlight === 0, 'the slot is free');
    const next = call('a');
    await until(() => probe.entered.length === 2, 'the next handler runs');
    probe.pass('a');
    expect(await next).toBe('done a');
  });
});

describe('an onRefusal hook on a @MessagePattern handler (TCP microservice)', () => {
  it('sees the RefusalPayload and reshapes what the RPC client receives', async () => {
    const probe = new Probe();
    const seen: unknown[] = [];
    const port = await freePort();
    const module = moduleOf({
      imports: [
        BackpressureModule.forRoot({
          gauges: {
            rpc: {
              limit: 1,
              onRefusal: (refusal, context) => {
                seen.push([context.getType(), refusal.body]);
                return { status: 503, message: 'busy' };
              },
            },
          },
        }),
      ],
      controllers: [WorkHandler],
      providers: [{ provide: Probe, useValue: probe }],
    });
    const service = await NestFactory.createMicroservice(module, {
      transport: Transport.TCP,
      options: { host: '127.0.0.1', port },
      logger: false,
    });
    await service.listen();
    const client = ClientProxyFactory.create({
      transport: Transport.TCP,
      options: { host: '127.0.0.1', port },
    });
    try {
      await client.connect();
      const first = firstValueFrom(client.send<string>('work', 'a'));
      await until(() => probe.entered.length === 1, 'the handler runs');
      await expect(firstValueFrom(client.send<string>('work', 'b'))).rejects.toEqual({
        status: 'error',
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'busy',
        retryAfterSeconds: 1,
        reason: 'full',
      });
      expect(seen).toEqual([['rpc', expect.objectContaining({ statusCode: 429, reason: 'full' })]]);
      probe.pass('a');
      expect(await first).toBe('done a');
    } finally {
      probe.openAll();
      client.close();
      await service.close();
    }
  });
});
