import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  Param,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { json, send, type Call } from './support/http';
import { Probe } from './support/probe';
import { settle, until } from '../support/wait';

/** Holds a request before the interceptor (as a slow auth guard would), to let its client leave. */
@Injectable()
class SlowGuard implements CanActivate {
  constructor(private readonly probe: Probe) {}
  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const { id } = http.getRequest<{ params: { id: string } }>().params;
    const res = http.getResponse<{ raw?: { closed?: boolean }; closed?: boolean }>();
    this.probe.responses.set(id, res.raw ?? res);
    await this.probe.enter(`guard ${id}`);
    return true;
  }
}

@Controller()
class QueuedController {
  constructor(private readonly probe: Probe) {}

  @Get('line/:id')
  @Limited('line')
  async line(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('guarded/:id')
  @UseGuards(SlowGuard)
  @Limited('line')
  async guarded(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('brief/:id')
  @Limited('brief')
  async brief(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('tight/:id')
  @Limited('tight')
  async tight(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }
}

const TOO_MANY = { statusCode: 429, message: 'Too many requests', error: 'Too Many Requests' };

describe.each(PLATFORMS)('queue mode on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;

  beforeEach(async () => {
    probe = new Probe();
    const module = moduleOf({
      imports: [
        BackpressureModule.forRoot({
          gauges: {
            line: { limit: 1, queue: { size: 5, timeoutMs: 10_000 } },
            brief: { limit: 1, queue: { size: 1, timeoutMs: 50 } },
            tight: { limit: 1, queue: { size: 1, timeoutMs: 10_000 } },
          },
        }),
      ],
      controllers: [QueuedController],
      providers: [{ provide: Probe, useValue: probe }],
    });
    running = await startApp(platform, module);
  });

  afterEach(async () => {
    probe.openAll();
    await running.close();
  });

  /** Sends `/route/id` and waits until it runs (`expect: 'run'`) or waits in the queue. */
  async function arrive(route: string, id: string, expect: 'run' | 'queue'): Promise<Call> {
    const gauge = running.gauge(route);
    const [entered, queued] = [probe.entered.length, gauge.queued];
    const call = send(running.url, `/${route}/${id}`);
    if (expect === 'run') await until(() => probe.entered.length === entered + 1, `${id} runs`);
    else await until(() => gauge.queued === queued + 1, `${id} is queued`);
    return call;
  }

  it('starts queued handlers in arrival order (FIFO)', async () => {
    const calls = [await arrive('line', 'a', 'run')];
    for (const id of ['b', 'c', 'd']) calls.push(await arrive('line', id, 'queue'));
    for (const [i, id] of ['a', 'b', 'c'].entries()) {
      probe.pass(id);
      await until(() => probe.entered.length === i + 2, 'the next waiter runs');
    }
    probe.pass('d');
    expect(probe.entered).toEqual(['a', 'b', 'c', 'd']);
    for (const call of calls) expect((await call.reply).status).toBe(200);
    expect(running.gauge('line')).toMatchObject({ inFlight: 0, queued: 0, admitted: 4 });
  });

  it('answers 429 when the queue timeout passes first', async () => {
    await arrive('brief', 'a', 'run');
    const late = await send(running.url, '/brief/b').reply;
    expect(late.status).toBe(429);
    expect(late.headers['retry-after']).toBe('1');
    expect(json(late)).toStrictEqual({ ...TOO_MANY, reason: 'queue-timeout' });
    expect(probe.entered).toEqual(['a']);
    expect(running.gauge('brief')).toMatchObject({ inFlight: 1, queued: 0, timedOut: 1 });
  });

  it('answers 429 at once when the queue is full', async () => {
    await arrive('tight', 'a', 'run');
    const waiting = await arrive('tight', 'b', 'queue');
    const refused = await send(running.url, '/tight/c').reply;
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('10'); // the 10 s queue timeout, rounded up
    expect(json(refused)).toStrictEqual({ ...TOO_MANY, reason: 'queue-full' });
    expect(running.gauge('tight')).toMatchObject({ inFlight: 1, queued: 1, rejected: 1 });

    probe.pass('a');
    await until(() => probe.entered.length === 2, 'the waiter runs');
    probe.pass('b');
    expect((await waiting.reply).status).toBe(200);
    expect(probe.entered).toEqual(['a', 'b']);
  });

  it('drops a waiter whose client left: its handler never runs, the next waiter gets the slot', async () => {
    const first = await arrive('line', 'a', 'run');
    const gone = await arrive('line', 'b', 'queue');
    const next = await arrive('line', 'c', 'queue');
    gone.abort();
    const gauge = running.gauge('line');
    await until(() => gauge.queued === 1 && gauge.aborted === 1, 'the waiter leaves the queue');

    probe.pass('a');
    await until(() => probe.entered.length === 2, 'the next waiter runs');
    expect(probe.entered).toEqual(['a', 'c']);
    probe.pass('c');
    expect((await first.reply).status).toBe(200);
    expect((await next.reply).status).toBe(200);
    await settle();
    expect(probe.entered).toEqual(['a', 'c']);
    expect(gauge).toMatchObject({ inFlight: 0, queued: 0, admitted: 2, aborted: 1 });
  });

  it('does not queue a request whose client left before it reached the gauge', async () => {
    const first = await arrive('line', 'a', 'run');
    const gone = send(running.url, '/guarded/b');
    await until(() => probe.entered.includes('guard b'), 'the request is in the guard');
    gone.abort();
    await until(() => probe.responses.get('b')?.closed === true, 'the server sees it leave');
    probe.pass('guard b');
    const gauge = running.gauge('line');
    await until(() => gauge.aborted === 1, 'the request is turned away');
    expect(gauge.queued).toBe(0);

    probe.pass('a');
    expect((await first.reply).status).toBe(200);
    await settle();
    expect(probe.entered).toEqual(['a', 'guard b']);
    expect(gauge).toMatchObject({ inFlight: 0, admitted: 1 });
  });
});
