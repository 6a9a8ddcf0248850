import 'reflect-metadata';
import {
  BadRequestException,
  Body,
  Controller,
  Get,
  Param,
  ParseIntPipe,
  Post,
  type PipeTransform,
} from '@nestjs/common';
import { BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { json, send } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';

/** Stands in for ValidationPipe (class-validator is not installed): async, throws 400. */
class RequireName implements PipeTransform {
  async transform(value: { name?: unknown }) {
    await Promise.resolve();
    if (typeof value?.name !== 'string') throw new BadRequestException(['name must be a string']);
    return value;
  }
}

@Controller()
@Limited('parsed')
class ParsedController {
  constructor(private readonly probe: Probe) {}

  @Get('double/:n')
  double(@Param('n', ParseIntPipe) n: number) {
    return { n: n * 2 };
  }

  @Post('named')
  named(@Body(RequireName) body: { name: string }) {
    return { hello: body.name };
  }

  @Get('hold')
  async hold() {
    await this.probe.enter('hold');
    return 'held';
  }
}

// Nest runs guards, then interceptors, then pipes, then the handler: the slot is taken before
// the input is checked, so a bad input is counted as admitted, and a pipe failure must free it.
describe.each(PLATFORMS)('bad input on a limited route on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;

  beforeEach(async () => {
    probe = new Probe();
    const module = moduleOf({
      imports: [BackpressureModule.forRoot({ gauges: { parsed: { limit: 1 } } })],
      controllers: [ParsedController],
      providers: [{ provide: Probe, useValue: probe }],
    });
    running = await startApp(platform, module);
  });

  afterEach(async () => {
    probe.openAll();
    await running.close();
  });

  it('a ParseIntPipe failure answers 400 and frees the slot', async () => {
    const reply = await send(running.url, '/double/abc').reply;
    expect(reply.status).toBe(400);
    expect(running.gauge('parsed')).toMatchObject({ inFlight: 0, admitted: 1 });
    expect(json(await send(running.url, '/double/21').reply)).toEqual({ n: 42 });
  });

  it('an async validation pipe failure answers 400 and frees the slot', async () => {
    const reply = await send(running.url, '/named', { body: { name: 7 } }).reply;
    expect(reply.status).toBe(400);
    expect(json(reply)).toMatchObject({ message: ['name must be a string'] });
    expect(running.gauge('parsed')).toMatchObject({ inFlight: 0, admitted: 1 });
    const ok = await send(running.url, '/named', { body: { name: 'x' } }).reply;
    expect(json(ok)).toEqual({ hello: 'x' });
  });

  it('a full gauge answers 429 before the input is even checked', async () => {
    const held = send(running.url, '/hold');
    await until(() => probe.entered.length === 1, 'the handler runs');
    expect((await send(running.url, '/double/abc').reply).status).toBe(429);
    probe.pass('hold');
    expect((await held.reply).status).toBe(200);
    expect(running.gauge('parsed')).toMatchObject({ inFlight: 0, admitted: 1, rejected: 1 });
  });
});
