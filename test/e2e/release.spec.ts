import 'reflect-metadata';
import {
  BadRequestException,
  ConflictException,
  Controller,
  ForbiddenException,
  Get,
  Res,
  Sse,
  StreamableFile,
  type MessageEvent,
} from '@nestjs/common';
import { map, throwError, type Observable } from 'rxjs';
import { BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { CountingStore, type CountingGauge } from './support/counting-store';
import { send } from './support/http';
import { Probe } from './support/probe';
import { settle, until } from './support/wait';

type RawResponse = { closed?: boolean };

@Controller()
@Limited('end')
class EndingsController {
  constructor(private readonly probe: Probe) {}

  @Get('value')
  value() {
    return 'value';
  }

  @Get('async-value')
  async asyncValue() {
    await this.probe.enter('async');
    return 'async';
  }

  @Get('sync-throw')
  syncThrow() {
    throw new BadRequestException('bad');
  }

  @Get('sync-crash')
  syncCrash() {
    throw new Error('crash');
  }

  @Get('async-reject')
  async asyncReject() {
    await this.probe.enter('reject');
    throw new ConflictException();
  }

  @Get('observable-error')
  observableError() {
    return throwError(() => new ForbiddenException());
  }

  @Get('observable')
  observable() {
    return this.probe.events;
  }

  @Get('file')
  file() {
    return new StreamableFile(this.probe.body);
  }

  @Get('late-file')
  async lateFile(@Res({ passthrough: true }) res: { raw?: RawResponse } & RawResponse) {
    this.probe.responses.set('late', res.raw ?? res);
    await this.probe.enter('late');
    return new StreamableFile(this.probe.body);
  }

  @Sse('sse')
  sse(): Observable<MessageEvent> {
    return this.probe.events.pipe(map((data) => ({ data })));
  }
}

describe.each(PLATFORMS)('the slot is released exactly once on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;
  let gauge: CountingGauge;

  beforeEach(async () => {
    probe = new Probe();
    const module = moduleOf({
      imports: [
        BackpressureModule.forRoot({ gauges: { end: { limit: 2 } }, store: new CountingStore() }),
      ],
      controllers: [EndingsController],
      providers: [{ provide: Probe, useValue: probe }],
    });
    running = await startApp(platform, module);
    gauge = running.gauge('end') as CountingGauge;
  });

  afterEach(async () => {
    probe.passAll();
    probe.body.destroy();
    await running.close();
  });

  /** The slot is free, and freed by one call: none late (a stream's 'close' after its 'end'). */
  async function expectReleasedOnce(admitted = 1) {
    await until(() => gauge.inFlight === 0, 'the slot is free');
    await settle();
    expect(gauge).toMatchObject({ inFlight: 0, admitted, releaseCalls: admitted });
  }

  it.each([
    ['a value', '/value', 200],
    ['a synchronous throw', '/sync-throw', 400],
    ['a synchronous crash', '/sync-crash', 500],
    ['an Observable error', '/observable-error', 403],
  ])('%s', async (_ending, path, status) => {
    expect((await send(running.url, path).reply).status).toBe(status);
    await expectReleasedOnce();
  });

  it('an async value: held until the promise resolves', async () => {
    const call = send(running.url, '/async-value');
    await until(() => probe.entered.length === 1, 'the handler runs');
    expect(gauge.inFlight).toBe(1);
    probe.pass('async');
    expect((await call.reply).body).toBe('async');
    await expectReleasedOnce();
  });

  it('an async rejection: error response, slot freed', async () => {
    const call = send(running.url, '/async-reject');
    await until(() => probe.entered.length === 1, 'the handler runs');
    expect(gauge.inFlight).toBe(1);
    probe.pass('reject');
    expect((await call.reply).status).toBe(409);
    await expectReleasedOnce();
  });

  it('an Observable that emits, then completes: held until it completes', async () => {
    const call = send(running.url, '/observable');
    await until(() => probe.events.observed, 'the handler is subscribed');
    probe.events.next('first');
    await settle();
    expect(gauge.inFlight).toBe(1);
    probe.events.next('last');
    probe.events.complete();
    expect((await call.reply).body).toBe('last');
    await expectReleasedOnce();
  });

  it('an Observable that emits, then errors', async () => {
    const call = send(running.url, '/observable');
    await until(() => probe.events.observed, 'the handler is subscribed');
    probe.events.next('first');
    await settle();
    expect(gauge.inFlight).toBe(1);
    probe.events.error(new ForbiddenException());
    expect((await call.reply).status).toBe(403);
    await expectReleasedOnce();
  });

  it('a StreamableFile: held until the whole body is sent', async () => {
    const call = send(running.url, '/file');
    probe.body.push('one,');
    await until(() => call.received() === 'one,', 'the first chunk arrives');
    expect(gauge.inFlight).toBe(1);
    probe.body.push('two');
    probe.body.push(null);
    const reply = await call.reply;
    expect(reply).toMatchObject({ status: 200, body: 'one,two' });
    await expectReleasedOnce();
  });

  it('a StreamableFile: freed when the client disconnects mid-stream', async () => {
    const call = send(running.url, '/file');
    probe.body.push('one,');
    await until(() => call.received() === 'one,', 'the first chunk arrives');
    call.abort();
    await expectReleasedOnce();
  });

  it('a StreamableFile returned after the client left: freed', async () => {
    const call = send(running.url, '/late-file');
    await until(() => probe.entered.length === 1, 'the handler runs');
    call.abort();
    await until(
      () => probe.responses.get('late')?.closed === true,
      'the server sees the client leave',
    );
    expect(gauge.inFlight).toBe(1);
    probe.pass('late');
    await expectReleasedOnce();
  });

  it('SSE: held while streaming, freed when the stream completes', async () => {
    const call = send(running.url, '/sse');
    await until(() => probe.events.observed, 'the stream is subscribed');
    probe.events.next('one');
    await until(() => call.received().includes('data: one'), 'the first event arrives');
    expect(gauge.inFlight).toBe(1);
    probe.events.complete();
    expect((await call.reply).status).toBe(200);
    await expectReleasedOnce();
  });

  it('SSE: freed when the client disconnects before the first event', async () => {
    const call = send(running.url, '/sse');
    await until(() => probe.events.observed, 'the stream is subscribed');
    await call.status; // the headers are out: the stream is open
    expect(gauge.inFlight).toBe(1);
    call.abort();
    await expectReleasedOnce();
    expect(probe.events.observed).toBe(false);
  });

  it('SSE: freed when the client disconnects', async () => {
    const call = send(running.url, '/sse');
    await until(() => probe.events.observed, 'the stream is subscribed');
    probe.events.next('one');
    await until(() => call.received().includes('data: one'), 'the first event arrives');
    expect(gauge.inFlight).toBe(1);
    call.abort();
    await expectReleasedOnce();
    expect(probe.events.observed).toBe(false);
  });
});
