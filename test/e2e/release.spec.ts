import 'reflect-metadata';
import {
  BadRequestException,
  ConflictException,
  Controller,
  ForbiddenException,
  Get,
} from '@nestjs/common';
import { throwError } from 'rxjs';
import { BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { CountingStore, type CountingGauge } from './support/counting-store';
import { send } from './support/http';
import { Probe } from './support/probe';
import { settle, until } from '../support/wait';

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
    probe.openAll();
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
});
