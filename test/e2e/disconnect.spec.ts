import 'reflect-metadata';
import { Controller, Get, Param, Res } from '@nestjs/common';
import { BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { settle, until } from '../support/wait';

type RawResponse = { closed?: boolean };

@Controller()
class HeldController {
  constructor(private readonly probe: Probe) {}

  @Get('held/:id')
  @Limited('one')
  async held(
    @Param('id') id: string,
    @Res({ passthrough: true }) res: { raw?: RawResponse } & RawResponse,
  ) {
    this.probe.responses.set(id, res.raw ?? res);
    await this.probe.enter(id);
    return id;
  }
}

describe.each(PLATFORMS)(
  'a client that disconnects while its handler runs, on %s',
  (platform: Platform) => {
    let probe: Probe;
    let running: Running;

    beforeEach(async () => {
      probe = new Probe();
      const module = moduleOf({
        imports: [BackpressureModule.forRoot({ gauges: { one: { limit: 1 } } })],
        controllers: [HeldController],
        providers: [{ provide: Probe, useValue: probe }],
      });
      running = await startApp(platform, module);
    });

    afterEach(async () => {
      probe.openAll();
      await running.close();
    });

    it('does not free the slot: it is freed when the handler ends', async () => {
      const gone = send(running.url, '/held/a');
      await until(() => probe.entered.length === 1, 'the handler runs');
      gone.abort();
      await until(
        () => probe.responses.get('a')?.closed === true,
        'the server sees the client leave',
      );
      await settle();

      // The handler still runs, so it still counts: a second one would exceed the limit.
      expect(running.gauge('one').inFlight).toBe(1);
      expect((await send(running.url, '/held/b').reply).status).toBe(429);
      expect(probe.entered).toEqual(['a']);

      probe.pass('a');
      await until(() => running.gauge('one').inFlight === 0, 'the slot is free');
      const next = send(running.url, '/held/c');
      await until(() => probe.entered.length === 2, 'the next handler runs');
      probe.pass('c');
      expect((await next.reply).status).toBe(200);
      expect(running.gauge('one')).toMatchObject({ inFlight: 0, admitted: 2, rejected: 1 });
    });
  },
);
