import 'reflect-metadata';
import {
  Controller,
  Get,
  StreamableFile,
  UseInterceptors,
  type CallHandler,
  type NestInterceptor,
} from '@nestjs/common';
import { retry, take, timeout } from 'rxjs';
import { BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { settle, until } from '../support/wait';

/** Runs the route again once if it fails, as a retry interceptor around `@Limited` would. */
class RetryOnce implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler) {
    return next.handle().pipe(retry(1));
  }
}

/** Stops waiting for the handler after 30 ms (answers 500), as a timeout interceptor would. */
class GiveUpQuickly implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler) {
    return next.handle().pipe(timeout({ first: 30 }));
  }
}

/** Answers with a stream's first value and unsubscribes from the rest. */
class FirstOnly implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler) {
    return next.handle().pipe(take(1));
  }
}

@Controller('retried')
@UseInterceptors(RetryOnce)
class RetriedController {
  constructor(private readonly probe: Probe) {}

  @Get()
  @Limited('outer')
  async flaky() {
    const attempt = `try${this.probe.entered.length + 1}`;
    await this.probe.enter(attempt);
    return attempt;
  }
}

@Controller('impatient')
@UseInterceptors(GiveUpQuickly)
class ImpatientController {
  constructor(private readonly probe: Probe) {}

  @Get()
  @Limited('outer')
  async slow() {
    await this.probe.enter('slow');
    return 'slow';
  }

  @Get('file')
  @Limited('outer')
  async file() {
    await this.probe.enter('file');
    return new StreamableFile(this.probe.body);
  }
}

@Controller('first')
@UseInterceptors(FirstOnly)
class FirstController {
  constructor(private readonly probe: Probe) {}

  @Get()
  @Limited('outer')
  stream() {
    return this.probe.events;
  }
}

describe.each(PLATFORMS)('outer interceptors around @Limited on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;

  beforeEach(async () => {
    probe = new Probe();
    const module = moduleOf({
      imports: [BackpressureModule.forRoot({ gauges: { outer: { limit: 1 } } })],
      controllers: [RetriedController, ImpatientController, FirstController],
      providers: [{ provide: Probe, useValue: probe }],
    });
    running = await startApp(platform, module);
  });

  afterEach(async () => {
    probe.openAll();
    probe.body.destroy();
    await running.close();
  });

  it('a retry takes a slot again: the second attempt is limited too', async () => {
    const call = send(running.url, '/retried');
    await until(() => probe.entered.length === 1, 'the first attempt runs');
    probe.fail('try1', new Error('flaky'));
    await until(() => probe.entered.length === 2, 'the retry runs');

    expect(running.gauge('outer')).toMatchObject({ inFlight: 1, admitted: 2 });
    expect((await send(running.url, '/impatient').reply).status).toBe(429);

    probe.pass('try2');
    expect(await call.reply).toMatchObject({ status: 200, body: 'try2' });
    expect(running.gauge('outer').inFlight).toBe(0);
  });

  it('a retry after a 429 is refused again, not let through', async () => {
    const holder = send(running.url, '/first');
    await until(() => running.gauge('outer').inFlight === 1, 'the stream holds the slot');

    expect((await send(running.url, '/retried').reply).status).toBe(429);
    expect(probe.entered).toEqual([]);
    expect(running.gauge('outer')).toMatchObject({ inFlight: 1, admitted: 1, rejected: 2 });

    probe.events.next('done');
    expect((await holder.reply).status).toBe(200);
  });

  it('an outer timeout does not free the slot while the handler still runs', async () => {
    const call = send(running.url, '/impatient');
    expect((await call.reply).status).toBe(500); // rxjs TimeoutError: not an HttpException
    expect(probe.entered).toEqual(['slow']);
    await settle();
    expect(running.gauge('outer').inFlight).toBe(1);
    expect((await send(running.url, '/first').reply).status).toBe(429);

    probe.pass('slow');
    await until(() => running.gauge('outer').inFlight === 0, 'the slot is free');
  });

  it('a StreamableFile returned after an outer timeout is destroyed, and its slot freed', async () => {
    expect((await send(running.url, '/impatient/file').reply).status).toBe(500);
    expect(running.gauge('outer').inFlight).toBe(1);
    probe.pass('file');
    await until(() => running.gauge('outer').inFlight === 0, 'the slot is free');
    await until(() => probe.body.destroyed, 'the unsent stream is destroyed');
  });

  it('a stream unsubscribed after its first value stops and frees the slot', async () => {
    const call = send(running.url, '/first');
    await until(() => probe.events.observed, 'the stream is subscribed');
    probe.events.next('one');
    expect(await call.reply).toMatchObject({ status: 200, body: 'one' });
    await until(() => running.gauge('outer').inFlight === 0, 'the slot is free');
    expect(probe.events.observed).toBe(false);
  });
});
