import 'reflect-metadata';
import { Controller, Get } from '@nestjs/common';
import { BackpressureModule, GaugeRegistry, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';

@Controller('both')
@Limited('by-class')
class BothController {
  constructor(private readonly probe: Probe) {}

  @Get('method')
  @Limited('by-method')
  async method() {
    await this.probe.enter('method');
    return 'method';
  }

  @Get('class')
  async inherited() {
    await this.probe.enter('class');
    return 'class';
  }
}

@Controller('only-class')
@Limited('whole')
class ClassOnlyController {
  constructor(private readonly probe: Probe) {}

  @Get('a')
  async a() {
    await this.probe.enter('a');
    return 'a';
  }

  @Get('b')
  async b() {
    await this.probe.enter('b');
    return 'b';
  }
}

describe.each(PLATFORMS)('@Limited on class and method on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;

  beforeEach(async () => {
    probe = new Probe();
    const module = moduleOf({
      imports: [BackpressureModule.forRoot({ defaultLimit: 2, gauges: { whole: { limit: 1 } } })],
      controllers: [BothController, ClassOnlyController],
      providers: [{ provide: Probe, useValue: probe }],
    });
    running = await startApp(platform, module);
  });

  afterEach(async () => {
    probe.openAll();
    await running.close();
  });

  it("the method's gauge wins, and the request is counted once", async () => {
    const registry = running.app.get(GaugeRegistry);
    const call = send(running.url, '/both/method');
    await until(() => probe.entered.length === 1, 'the handler runs');
    expect(running.gauge('by-method')).toMatchObject({ inFlight: 1, admitted: 1 });
    // Built at bootstrap (every gauge a route names is), but never used for this handler.
    expect(registry.get('by-class')).toMatchObject({ inFlight: 0, admitted: 0 });
    probe.pass('method');
    expect((await call.reply).status).toBe(200);
    expect(running.gauge('by-method')).toMatchObject({ inFlight: 0, admitted: 1 });
  });

  it('a second request fills the method gauge (limit 2), a third is refused', async () => {
    const calls = [send(running.url, '/both/method'), send(running.url, '/both/method')];
    await until(() => probe.entered.length === 2, 'both handlers run');
    expect((await send(running.url, '/both/method').reply).status).toBe(429);
    expect(running.gauge('by-method')).toMatchObject({ inFlight: 2, admitted: 2, rejected: 1 });
    probe.passAll();
    for (const call of calls) expect((await call.reply).status).toBe(200);
  });

  it("a method without its own @Limited uses the class's gauge", async () => {
    const call = send(running.url, '/both/class');
    await until(() => probe.entered.length === 1, 'the handler runs');
    expect(running.gauge('by-class')).toMatchObject({ inFlight: 1, admitted: 1 });
    expect(running.gauge('by-method').admitted).toBe(0);
    probe.pass('class');
    expect((await call.reply).status).toBe(200);
  });

  it('class-only @Limited limits every handler of the controller, together', async () => {
    const first = send(running.url, '/only-class/a');
    await until(() => probe.entered.length === 1, 'the handler runs');
    expect((await send(running.url, '/only-class/b').reply).status).toBe(429);
    expect((await send(running.url, '/only-class/a').reply).status).toBe(429);
    probe.pass('a');
    expect((await first.reply).status).toBe(200);
    const second = send(running.url, '/only-class/b');
    await until(() => probe.entered.length === 2, 'the other handler runs');
    probe.pass('b');
    expect((await second.reply).status).toBe(200);
    expect(running.gauge('whole')).toMatchObject({ inFlight: 0, admitted: 2, rejected: 2 });
  });
});
